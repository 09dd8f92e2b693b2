"""Settings, read once from the environment and validated with one message per bad value."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from scim_service.redact import mask_url

LogFormat = Literal["json", "console"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """The environment holds one or more bad values; `problems` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class StartupError(Exception):
    """The process cannot start (for instance the database stayed unreachable); the message
    is for an operator and holds no secret."""


def describe_dsn(dsn: str) -> str:
    """host:port/database of a DSN, without user or password (safe to print)."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    if not host:
        for item in parts.query.split("&"):
            if item.startswith("host="):
                host = item[5:]
    port = f":{parts.port}" if parts.port else ""
    return f"{host or 'localhost'}{port}{parts.path or ''}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration of one process.

    Frozen: built once by `load_settings` (or by tests with `msgspec.structs.replace`) and
    shared read-only by everything the app creates.
    """

    database_url: str | None = None
    data_dir: Path = Path(".scim-data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url_override: str | None = None
    admin_token: str | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    migrate_on_start: bool = True
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_connect_timeout: float = 10.0
    # Bounds on every transaction of ours (request pool and publisher), in seconds; 0 = none.
    # A statement past `db_statement_timeout` is cancelled (the request gets a 503); a lock
    # not granted within `db_lock_timeout` gives up (503); a transaction idle for longer than
    # `db_idle_in_transaction_timeout` is ended by the server.
    db_statement_timeout: float = 30.0
    db_lock_timeout: float = 10.0
    db_idle_in_transaction_timeout: float = 60.0
    # Fair shares (scim_service/fairness.py). Seconds a request waits, in all, for its
    # organization's slot and a pooled connection: then 429 (no slot) or 503 (no connection).
    db_acquire_timeout: float = 5.0
    # Requests of one organization holding or waiting for a pooled connection at once, per
    # process; None: half of db_pool_max (at least 1). See `org_concurrency`.
    org_max_concurrency: int | None = None
    # Requests per second per SCIM token (token bucket), per process; 0: no limit.
    token_rate_limit: float = 0.0
    # Bucket size (the burst a token may send at once); None: the rate rounded up, at least 1.
    token_rate_burst: int | None = None
    max_body_bytes: int = 1024 * 1024
    # Seconds a token lookup is cached per process (0: no cache). Revocations still apply at
    # once: see scim_service/auth.py.
    auth_cache_seconds: float = 10.0
    shutdown_grace: float = 20.0
    # Worker processes of `serve` (each its own event loop and pool of db_pool_max, sharing the
    # port); None: as many as the CPUs this process may use (affinity and cgroup quota). 1: one
    # process doing everything, publisher included, as before SCIM_WORKERS existed.
    workers: int | None = None

    # Events (transactional outbox + publisher)
    publisher_enabled: bool = True
    event_source_override: str | None = None
    webhook_url: str | None = None
    webhook_secrets: tuple[str, ...] = ()  # secrets: never logged, masked by `config check`
    webhook_signing_key: str | None = None
    webhook_timeout: float = 15.0
    webhook_concurrency: int = 64  # webhook requests in flight at most, per sink and process
    nats_url: str | None = None
    nats_subject_prefix: str = "scim"
    nats_stream: str = "SCIM_EVENTS"
    events_max_attempts: int = 12
    events_max_age_hours: float = 72.0
    events_retention_days: float = 7.0
    # Seconds before each retry (Standard Webhooks' schedule, shortened at the start); jittered.
    events_retry_schedule: tuple[float, ...] = (
        5,
        30,
        120,
        300,
        1800,
        3600,
        7200,
        18000,
        36000,
        50400,
        72000,
        86400,
    )
    publisher_batch_size: int = 1000
    publisher_poll_interval: float = 1.0
    publisher_workers: int = 2  # claim loops per sink (one database connection each)
    # Seconds a claimed event stays leased to its publisher; a publisher that dies mid-delivery
    # leaves leases that run out after this long, then any publisher claims the event again.
    publisher_lease_seconds: float = 60.0
    # A publisher process of a multi-worker `serve` whose claim loops have not gone round for
    # this long is stalled (stopped, wedged): the supervisor kills and replaces it.
    publisher_stall_seconds: float = 60.0

    # The SCIM activity log (activity.py): which requests are recorded, which keep their
    # (masked) bodies, for how long, and how many entries per organization at most.
    activity_log: Literal["off", "errors", "all"] = "all"
    activity_bodies: Literal["off", "errors", "all"] = "errors"
    activity_retention_days: float = 7.0
    activity_max_per_org: int = 10_000

    # The mass-deprovisioning guard (provisioning/guard.py): defaults for every organization,
    # each may override them (admin API / `scim-service org guard set`).
    deprovision_guard: bool = True
    deprovision_guard_percent: float = 25.0
    deprovision_guard_min_users: int = 20
    deprovision_guard_window_minutes: float = 15.0
    # Hold every access-reducing change this long before any consumer sees it, so the guard
    # sees a burst before it leaves (0: only once tripped). Released by the publisher.
    deprovision_guard_staging_seconds: float = 0.0

    # Metrics: /metrics on the main port, or only on a separate one (SCIM_METRICS_PORT).
    metrics_enabled: bool = True
    metrics_port: int | None = None
    metrics_host: str | None = None  # default: SCIM_HOST
    metrics_token: str | None = None  # secret: scrapes must send it as a bearer token
    # Seconds /readyz answers 503 before the listener closes on SIGTERM (load balancers notice).
    shutdown_drain_delay: float = 0.0

    @property
    def public_url(self) -> str:
        """Base of every URL we print or return (meta.location), without a trailing slash."""
        if self.public_url_override:
            return self.public_url_override.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - the wildcard means "this machine"
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def org_concurrency(self) -> int:
        """The effective per-organization limit: SCIM_ORG_MAX_CONCURRENCY, else half the pool."""
        if self.org_max_concurrency is not None:
            return self.org_max_concurrency
        return max(1, self.db_pool_max // 2)

    @property
    def worker_count(self) -> int:
        """The effective SCIM_WORKERS: the setting, else the CPUs this process may use."""
        return self.workers if self.workers is not None else available_cpus()

    @property
    def database_connections(self) -> int:
        """The most database connections one `serve` holds at once with these settings: per
        request worker its pool, the token cache's LISTEN (when caching) and the pull API's
        LISTEN; the publisher (in its own process, or in the single process) 1 LISTEN and
        SCIM_PUBLISHER_WORKERS per sink, plus its own one-connection pool when apart."""
        listens = (1 if self.auth_cache_seconds > 0 else 0) + 1
        workers = self.worker_count
        publisher = 0
        if self.publisher_enabled:
            publisher = 1 + self.publisher_workers * len(self.sinks) + (1 if workers > 1 else 0)
        return workers * (self.db_pool_max + listens) + publisher

    @property
    def token_burst(self) -> int:
        """The effective token-bucket size: SCIM_TOKEN_RATE_BURST, else the rate rounded up."""
        if self.token_rate_burst is not None:
            return self.token_rate_burst
        return max(1, math.ceil(self.token_rate_limit))

    @property
    def scim_base_url(self) -> str:
        return f"{self.public_url}/scim/v2"

    @property
    def event_source(self) -> str:
        """CloudEvents `source`: this service's SCIM base URL unless configured."""
        return self.event_source_override or self.scim_base_url

    @property
    def sinks(self) -> tuple[str, ...]:
        """Configured event sinks; the log sink when nothing else is configured."""
        out = tuple(
            name for name, url in (("webhook", self.webhook_url), ("nats", self.nats_url)) if url
        )
        return out or ("log",)


_DEFAULTS = Settings()


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup CPU quota (v2
    `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    """The cgroup CPU quota in CPUs, or None when there is none (or it cannot be read)."""
    try:
        fields = (root / "cpu.max").read_text().split()  # v2: "max 100000" or "150000 100000"
        if len(fields) == 2 and fields[0] != "max" and int(fields[1]) > 0:
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # v1: -1 means none
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


# --- parsing helpers: each returns the value or appends a message and returns None ----------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str, problems: list[str]) -> bool | None:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    problems.append(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")
    return None


def _parse_capture(name: str, raw: str, problems: list[str]) -> str | None:
    value = raw.strip().lower()
    if value not in ("off", "errors", "all"):
        problems.append(f"{name}={raw.strip()!r} must be 'off', 'errors' or 'all'")
        return None
    return value


def _parse_workers(name: str, raw: str, problems: list[str]) -> int | None:
    if raw.strip().lower() == "auto":
        return None  # the default: the CPUs this process may use
    return _parse_int(name, raw, problems, 1, 256)


def _parse_int(name: str, raw: str, problems: list[str], lo: int, hi: int) -> int | None:
    try:
        value = int(raw.strip())
    except ValueError:
        problems.append(f"{name}={raw!r} is not an integer")
        return None
    if not lo <= value <= hi:
        problems.append(f"{name}={value} is out of range ({lo}..{hi})")
        return None
    return value


def _parse_float(name: str, raw: str, problems: list[str], lo: float, hi: float) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        problems.append(f"{name}={raw!r} is not a number")
        return None
    if not lo <= value <= hi:
        problems.append(f"{name}={value} is out of range ({lo}..{hi})")
        return None
    return value


def _parse_http_url(name: str, raw: str, problems: list[str]) -> str | None:
    parts = urlsplit(raw.strip())
    shown = mask_url(raw)  # never echo credentials (userinfo, query) back
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{name}={shown!r} must be an absolute http(s) URL")
        return None
    if parts.query or parts.fragment:
        problems.append(f"{name}={shown!r} must not carry a query or fragment")
        return None
    return raw.strip().rstrip("/")


def _parse_dsn(name: str, raw: str, problems: list[str]) -> str | None:
    # Never echo the DSN back: it may carry a password.
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("postgres", "postgresql"):
        problems.append(
            f"{name} must be a postgresql:// URL (the value is not shown: it may hold a password)"
        )
        return None
    return raw.strip()


def _parse_nats_url(name: str, raw: str, problems: list[str]) -> str | None:
    parts = urlsplit(raw.strip().split(",")[0])
    if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.netloc:
        problems.append(f"{name} must be a nats:// URL (comma-separated for a cluster)")
        return None
    return raw.strip()


def _parse_subject_token(name: str, raw: str, problems: list[str]) -> str | None:
    value = raw.strip()
    if (
        not value
        or any(c in value for c in " *>\t")
        or value.startswith(".")
        or value.endswith(".")
    ):
        problems.append(f"{name}={raw!r} is not a valid NATS subject prefix")
        return None
    return value


def _parse_stream_name(name: str, raw: str, problems: list[str]) -> str | None:
    value = raw.strip()
    if not value or any(c in value for c in " .*>/\\"):
        problems.append(f"{name}={raw!r} is not a valid JetStream stream name")
        return None
    return value


def _parse_schedule(name: str, raw: str, problems: list[str]) -> tuple[float, ...] | None:
    try:
        values = tuple(float(x) for x in raw.replace(" ", "").split(",") if x)
    except ValueError:
        problems.append(f"{name} must be comma-separated seconds, e.g. 5,30,120")
        return None
    if not values or any(v < 0 for v in values):
        problems.append(f"{name} must list at least one non-negative delay")
        return None
    return values


def _take_webhook_keys(
    env: Mapping[str, str], values: dict[str, object], problems: list[str]
) -> None:
    """Webhook secrets (several allowed, for rotation) and the Ed25519 signing key. Their
    values are never echoed in messages."""
    raw_secrets = env.get("SCIM_WEBHOOK_SECRET", "")
    secrets = tuple(x for x in raw_secrets.replace(",", " ").split() if x)
    key = env.get("SCIM_WEBHOOK_SIGNING_KEY", "").strip() or None
    if not secrets and key is None:
        return
    try:
        from scim_service.signing import Signer

        Signer(list(secrets), key)
    except ValueError as exc:
        problems.append(f"SCIM_WEBHOOK_SECRET/SCIM_WEBHOOK_SIGNING_KEY: {exc}")
        return
    values["webhook_secrets"] = secrets
    values["webhook_signing_key"] = key


def load_settings(
    environ: Mapping[str, str] | None = None, *, isatty: bool | None = None
) -> Settings:
    """Build Settings from the environment; raise ConfigError listing every bad value."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, object] = {}

    def take(name: str, key: str, parse: Callable[[str, str, list[str]], object | None]) -> None:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return
        value = parse(name, raw, problems)
        if value is not None:
            values[key] = value

    take("DATABASE_URL", "database_url", _parse_dsn)
    take("SCIM_DATA_DIR", "data_dir", lambda n, r, p: Path(r.strip()))
    take("SCIM_HOST", "host", lambda n, r, p: r.strip())
    take("SCIM_PORT", "port", lambda n, r, p: _parse_int(n, r, p, 0, 65535))
    take("SCIM_PUBLIC_URL", "public_url_override", _parse_http_url)
    take("SCIM_MIGRATE_ON_START", "migrate_on_start", _parse_bool)
    take("SCIM_DB_POOL_MIN", "db_pool_min", lambda n, r, p: _parse_int(n, r, p, 0, 1000))
    take("SCIM_DB_POOL_MAX", "db_pool_max", lambda n, r, p: _parse_int(n, r, p, 1, 1000))
    take(
        "SCIM_DB_CONNECT_TIMEOUT",
        "db_connect_timeout",
        lambda n, r, p: _parse_float(n, r, p, 0.1, 3600),
    )
    take(
        "SCIM_DB_ACQUIRE_TIMEOUT",
        "db_acquire_timeout",
        lambda n, r, p: _parse_float(n, r, p, 0.05, 600),
    )
    take(
        "SCIM_ORG_MAX_CONCURRENCY",
        "org_max_concurrency",
        lambda n, r, p: _parse_int(n, r, p, 1, 1000),
    )
    take(
        "SCIM_TOKEN_RATE_LIMIT",
        "token_rate_limit",
        lambda n, r, p: _parse_float(n, r, p, 0, 100_000),
    )
    take(
        "SCIM_TOKEN_RATE_BURST",
        "token_rate_burst",
        lambda n, r, p: _parse_int(n, r, p, 1, 1_000_000),
    )

    for env_name, key in (
        ("SCIM_DB_STATEMENT_TIMEOUT", "db_statement_timeout"),
        ("SCIM_DB_LOCK_TIMEOUT", "db_lock_timeout"),
        ("SCIM_DB_IDLE_IN_TRANSACTION_TIMEOUT", "db_idle_in_transaction_timeout"),
    ):
        take(env_name, key, lambda n, r, p: _parse_float(n, r, p, 0, 86400))

    take(
        "SCIM_SHUTDOWN_GRACE",
        "shutdown_grace",
        lambda n, r, p: _parse_float(n, r, p, 0, 3600),
    )

    take(
        "SCIM_AUTH_CACHE_SECONDS",
        "auth_cache_seconds",
        lambda n, r, p: _parse_float(n, r, p, 0, 3600),
    )
    take("SCIM_WORKERS", "workers", _parse_workers)
    take("SCIM_PUBLISHER_ENABLED", "publisher_enabled", _parse_bool)
    take("SCIM_EVENT_SOURCE", "event_source_override", lambda n, r, p: r.strip())
    take("SCIM_WEBHOOK_URL", "webhook_url", _parse_http_url)
    take("SCIM_WEBHOOK_TIMEOUT", "webhook_timeout", lambda n, r, p: _parse_float(n, r, p, 0.1, 300))
    take(
        "SCIM_WEBHOOK_CONCURRENCY",
        "webhook_concurrency",
        lambda n, r, p: _parse_int(n, r, p, 1, 4096),
    )
    take("SCIM_NATS_URL", "nats_url", _parse_nats_url)
    take("SCIM_NATS_SUBJECT_PREFIX", "nats_subject_prefix", _parse_subject_token)
    take("SCIM_NATS_STREAM", "nats_stream", _parse_stream_name)
    take(
        "SCIM_EVENTS_MAX_ATTEMPTS",
        "events_max_attempts",
        lambda n, r, p: _parse_int(n, r, p, 1, 1000),
    )
    take(
        "SCIM_EVENTS_MAX_AGE_HOURS",
        "events_max_age_hours",
        lambda n, r, p: _parse_float(n, r, p, 0.001, 24 * 365),
    )
    take(
        "SCIM_EVENTS_RETENTION_DAYS",
        "events_retention_days",
        lambda n, r, p: _parse_float(n, r, p, 0.0001, 3650),
    )
    take("SCIM_EVENTS_RETRY_SCHEDULE", "events_retry_schedule", _parse_schedule)
    take(
        "SCIM_PUBLISHER_BATCH_SIZE",
        "publisher_batch_size",
        lambda n, r, p: _parse_int(n, r, p, 1, 5000),
    )
    take(
        "SCIM_PUBLISHER_WORKERS",
        "publisher_workers",
        lambda n, r, p: _parse_int(n, r, p, 1, 32),
    )
    take(
        "SCIM_PUBLISHER_LEASE_SECONDS",
        "publisher_lease_seconds",
        lambda n, r, p: _parse_float(n, r, p, 1, 86400),
    )
    take(
        "SCIM_PUBLISHER_STALL_SECONDS",
        "publisher_stall_seconds",
        lambda n, r, p: _parse_float(n, r, p, 1, 86400),
    )
    take(
        "SCIM_PUBLISHER_POLL_INTERVAL",
        "publisher_poll_interval",
        lambda n, r, p: _parse_float(n, r, p, 0.01, 3600),
    )
    _take_webhook_keys(env, values, problems)
    take("SCIM_ACTIVITY_LOG", "activity_log", _parse_capture)
    take("SCIM_ACTIVITY_BODIES", "activity_bodies", _parse_capture)
    take(
        "SCIM_ACTIVITY_RETENTION_DAYS",
        "activity_retention_days",
        lambda n, r, p: _parse_float(n, r, p, 0.001, 3650),
    )
    take(
        "SCIM_ACTIVITY_MAX_PER_ORG",
        "activity_max_per_org",
        lambda n, r, p: _parse_int(n, r, p, 1, 10_000_000),
    )
    take("SCIM_DEPROVISION_GUARD", "deprovision_guard", _parse_bool)
    take(
        "SCIM_DEPROVISION_GUARD_PERCENT",
        "deprovision_guard_percent",
        lambda n, r, p: _parse_float(n, r, p, 0.01, 100),
    )
    take(
        "SCIM_DEPROVISION_GUARD_MIN_USERS",
        "deprovision_guard_min_users",
        lambda n, r, p: _parse_int(n, r, p, 1, 10_000_000),
    )
    take(
        "SCIM_DEPROVISION_GUARD_WINDOW_MINUTES",
        "deprovision_guard_window_minutes",
        lambda n, r, p: _parse_float(n, r, p, 0.01, 7 * 24 * 60),
    )
    take(
        "SCIM_DEPROVISION_GUARD_STAGING_SECONDS",
        "deprovision_guard_staging_seconds",
        lambda n, r, p: _parse_float(n, r, p, 0, 24 * 3600),
    )
    take("SCIM_METRICS_ENABLED", "metrics_enabled", _parse_bool)
    take("SCIM_METRICS_PORT", "metrics_port", lambda n, r, p: _parse_int(n, r, p, 1, 65535))
    take("SCIM_METRICS_HOST", "metrics_host", lambda n, r, p: r.strip())
    take(
        "SCIM_SHUTDOWN_DRAIN_DELAY",
        "shutdown_drain_delay",
        lambda n, r, p: _parse_float(n, r, p, 0, 600),
    )
    metrics_token = env.get("SCIM_METRICS_TOKEN")
    if metrics_token:
        if len(metrics_token) < 16:
            problems.append(
                "SCIM_METRICS_TOKEN is too short (at least 16 characters; value not shown)"
            )
        else:
            values["metrics_token"] = metrics_token

    admin = env.get("SCIM_ADMIN_TOKEN")
    if admin is not None and admin != "":
        if len(admin) < 16:
            problems.append(
                "SCIM_ADMIN_TOKEN is too short (at least 16 characters; value not shown)"
            )
        else:
            values["admin_token"] = admin

    fmt = env.get("SCIM_LOG_FORMAT", "").strip().lower()
    if fmt:
        if fmt not in ("json", "console"):
            problems.append(f"SCIM_LOG_FORMAT={fmt!r} must be 'json' or 'console'")
        else:
            values["log_format"] = fmt
    else:
        tty = sys.stdout.isatty() if isatty is None else isatty
        values["log_format"] = "console" if tty else "json"

    level = env.get("SCIM_LOG_LEVEL", "").strip().lower()
    if level:
        if level == "warn":
            level = "warning"
        if level not in LOG_LEVELS:
            problems.append(f"SCIM_LOG_LEVEL={level!r} must be one of {', '.join(LOG_LEVELS)}")
        else:
            values["log_level"] = level

    pool_min = values.get("db_pool_min", _DEFAULTS.db_pool_min)
    pool_max = values.get("db_pool_max", _DEFAULTS.db_pool_max)
    if isinstance(pool_min, int) and isinstance(pool_max, int) and pool_min > pool_max:
        problems.append(f"SCIM_DB_POOL_MIN={pool_min} is larger than SCIM_DB_POOL_MAX={pool_max}")

    lease = values.get("publisher_lease_seconds", _DEFAULTS.publisher_lease_seconds)
    hook_timeout = values.get("webhook_timeout", _DEFAULTS.webhook_timeout)
    if isinstance(lease, float) and isinstance(hook_timeout, float) and lease < hook_timeout + 5:
        problems.append(
            f"SCIM_PUBLISHER_LEASE_SECONDS={lease:g} must exceed SCIM_WEBHOOK_TIMEOUT="
            f"{hook_timeout:g} by at least 5 seconds (a lease must outlast a delivery)"
        )

    if problems:
        raise ConfigError(problems)
    return Settings(**values)  # type: ignore[arg-type]


SECRET_FIELDS = frozenset(
    ("admin_token", "webhook_secrets", "webhook_signing_key", "metrics_token")
)


def mask_dsn(dsn: str) -> str:
    """A DSN with its password and query values (`?password=...`, `sslkey=...`) masked; the
    account name stays (operators need it)."""
    return mask_url(dsn, keep_user=True)


def effective(settings: Settings) -> dict[str, object]:
    """Every setting (and the values derived from them), secrets masked: `config check`."""
    out: dict[str, object] = {}
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        if field.name in SECRET_FIELDS:
            if isinstance(value, tuple):
                value = [f"<set: {len(value)} secret(s)>"] if value else []
            else:
                value = "<set>" if value else None
        elif field.name == "database_url" and isinstance(value, str):
            value = mask_dsn(value)
        elif isinstance(value, str) and "://" in value:
            value = mask_url(value)  # webhook, NATS (every server), public URL, event source
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[field.name] = value
    out["database"] = "external" if settings.database_url else f"embedded ({settings.data_dir}/pg)"
    out["public_url"] = mask_url(settings.public_url)
    out["scim_base_url"] = mask_url(settings.scim_base_url)
    out["event_source"] = mask_url(settings.event_source)
    out["sinks"] = list(settings.sinks)
    out["org_concurrency"] = settings.org_concurrency
    out["worker_count"] = settings.worker_count
    out["database_connections"] = settings.database_connections
    out["token_burst"] = settings.token_burst if settings.token_rate_limit > 0 else None
    return out
