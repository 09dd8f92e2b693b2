"""Settings, read once from the environment and validated with one message per bad value.

Each setting is declared once, as a field of `Settings`: its type and default, and in an
`Env` beside it the variable's name, how its text is parsed and bounded, whether it is a
secret, and the line the README's settings table shows. Loading (`load_settings`), masking
(`effective`, `SECRET_FIELDS`) and that table (`settings_table`, checked by
tests/repo/test_readme.py; `python -m scim_service.config README.md` rewrites it) all come
from these declarations."""

from __future__ import annotations

import functools
import math
import os
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from scim_service.redact import mask_url

LogFormat = Literal["json", "console"]
Capture = Literal["off", "errors", "all"]
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


# --- parsers: each takes (variable name, raw text, problems) and returns the value, or appends
# --- a message (never echoing a secret) and returns None ----------------------------------------

Parser = Callable[[str, str, list[str]], Any]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def boolean(name: str, raw: str, problems: list[str]) -> bool | None:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    problems.append(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")
    return None


def _number(convert: Callable[[str], Any], noun: str, lo: float, hi: float) -> Parser:
    def parse(name: str, raw: str, problems: list[str]) -> Any:
        try:
            value = convert(raw.strip())
        except ValueError:
            problems.append(f"{name}={raw!r} is not {noun}")
            return None
        if not lo <= value <= hi:
            problems.append(f"{name}={value} is out of range ({lo}..{hi})")
            return None
        return value

    return parse


def ints(lo: int, hi: int) -> Parser:
    return _number(int, "an integer", lo, hi)


def floats(lo: float, hi: float) -> Parser:
    return _number(float, "a number", lo, hi)


def choice(*options: str, aliases: Mapping[str, str] | None = None) -> Parser:
    def parse(name: str, raw: str, problems: list[str]) -> str | None:
        value = raw.strip().lower()
        value = (aliases or {}).get(value, value)
        if value not in options:
            quoted = [f"'{o}'" for o in options]
            listed = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(options) < 4 else ""
            problems.append(
                f"{name}={value!r} must be {listed}"
                if listed
                else f"{name}={value!r} must be one of {', '.join(options)}"
            )
            return None
        return value

    return parse


def text(name: str, raw: str, problems: list[str]) -> str:
    return raw.strip()


def path(name: str, raw: str, problems: list[str]) -> Path:
    return Path(raw.strip())


def auto_or_count(name: str, raw: str, problems: list[str]) -> int | None:
    if raw.strip().lower() == "auto":
        return None  # the default: the CPUs this process may use
    return ints(1, 256)(name, raw, problems)  # type: ignore[no-any-return]


def http_url(name: str, raw: str, problems: list[str]) -> str | None:
    parts = urlsplit(raw.strip())
    shown = mask_url(raw)  # never echo credentials (userinfo, query) back
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{name}={shown!r} must be an absolute http(s) URL")
        return None
    if parts.query or parts.fragment:
        problems.append(f"{name}={shown!r} must not carry a query or fragment")
        return None
    return raw.strip().rstrip("/")


def dsn(name: str, raw: str, problems: list[str]) -> str | None:
    # Never echo the DSN back: it may carry a password.
    if urlsplit(raw.strip()).scheme not in ("postgres", "postgresql"):
        problems.append(
            f"{name} must be a postgresql:// URL (the value is not shown: it may hold a password)"
        )
        return None
    return raw.strip()


def nats_servers(name: str, raw: str, problems: list[str]) -> str | None:
    parts = urlsplit(raw.strip().split(",")[0])
    if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.netloc:
        problems.append(f"{name} must be a nats:// URL (comma-separated for a cluster)")
        return None
    return raw.strip()


def subject_prefix(name: str, raw: str, problems: list[str]) -> str | None:
    value = raw.strip()
    if not value or any(c in value for c in " *>\t") or value[0] == "." or value[-1] == ".":
        problems.append(f"{name}={raw!r} is not a valid NATS subject prefix")
        return None
    return value


def stream_name(name: str, raw: str, problems: list[str]) -> str | None:
    value = raw.strip()
    if not value or any(c in value for c in " .*>/\\"):
        problems.append(f"{name}={raw!r} is not a valid JetStream stream name")
        return None
    return value


def schedule(name: str, raw: str, problems: list[str]) -> tuple[float, ...] | None:
    try:
        values = tuple(float(x) for x in raw.replace(" ", "").split(",") if x)
    except ValueError:
        problems.append(f"{name} must be comma-separated seconds, e.g. 5,30,120")
        return None
    if not values or any(v < 0 for v in values):
        problems.append(f"{name} must list at least one non-negative delay")
        return None
    return values


def token(least: int) -> Parser:
    """A bearer token of at least `least` characters (never echoed)."""

    def parse(name: str, raw: str, problems: list[str]) -> str | None:
        if len(raw) < least:
            problems.append(f"{name} is too short (at least {least} characters; value not shown)")
            return None
        return raw

    return parse


def secret_list(name: str, raw: str, problems: list[str]) -> tuple[str, ...]:
    """Several secrets, space or comma separated (a rotation); checked with the signing key
    once both are read (`_check_webhook_keys`)."""
    return tuple(x for x in raw.replace(",", " ").split() if x)


def cidr_list(name: str, raw: str, problems: list[str]) -> tuple[str, ...] | None:
    """Networks in CIDR notation, space or comma separated."""
    import ipaddress

    out: list[str] = []
    for item in raw.replace(",", " ").split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            problems.append(f"{name}: {item[:64]!r} is not a network in CIDR notation")
            return None
    return tuple(out)


@dataclass(frozen=True)
class Env:
    """How one setting is read: its variable, its parser, its README line."""

    name: str
    parse: Parser
    doc: str
    default: str | None = None
    """The README's default column, where the field's default does not say it."""
    secret: bool = False
    """Never printed: `config check` shows `<set>`."""


def _e(name: str, parse: Parser, doc: str, **kw: Any) -> Any:
    return Env(name, parse, doc, **kw)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration of one process.

    Frozen: built once by `load_settings` (or by tests with `msgspec.structs.replace`) and
    shared read-only by everything the app creates. Each field is one setting (module
    docstring); the README's settings table is made from the `Env` beside it.
    """

    database_url: Annotated[
        str | None,
        _e(
            "DATABASE_URL",
            dsn,
            "PostgreSQL 14+ DSN (`postgresql://user:pass@host:5432/db`). Unset: the embedded "
            "PostgreSQL (Unix socket only), data in `SCIM_DATA_DIR`, started and stopped with "
            "the process.",
        ),
    ] = None
    data_dir: Annotated[
        Path, _e("SCIM_DATA_DIR", path, "where the embedded PostgreSQL keeps its data")
    ] = Path(".scim-data")
    host: Annotated[str, _e("SCIM_HOST", text, "listen address (`0.0.0.0` in a container)")] = (
        "127.0.0.1"
    )
    port: Annotated[int, _e("SCIM_PORT", ints(0, 65535), "listen port")] = 8080
    # Worker processes of `serve` (each its own event loop and pool of db_pool_max, sharing the
    # port); None: as many as the CPUs this process may use (affinity and cgroup quota). 1: one
    # process doing everything, publisher included, as before SCIM_WORKERS existed.
    workers: Annotated[
        int | None,
        _e(
            "SCIM_WORKERS",
            auto_or_count,
            "worker processes of `serve`, each with its own event loop and pool, sharing the "
            'port; with more than one, the publisher runs in a process of its own ("Worker '
            'processes"). `1`: one process doing everything',
            default="the CPUs the process may use (`auto`)",
        ),
    ] = None
    public_url_override: Annotated[
        str | None,
        _e(
            "SCIM_PUBLIC_URL",
            http_url,
            "external base URL used in `meta.location`, `Location` and printed URLs",
            default="`http://SCIM_HOST:SCIM_PORT`",
        ),
    ] = None
    admin_token: Annotated[
        str | None,
        _e(
            "SCIM_ADMIN_TOKEN",
            token(16),
            "bearer token of the admin API (at least 16 characters). Unset: the admin API "
            "answers 404.",
            secret=True,
        ),
    ] = None
    # Revocations still apply at once: see scim_service/auth.py.
    auth_cache_seconds: Annotated[
        float,
        _e(
            "SCIM_AUTH_CACHE_SECONDS",
            floats(0, 3600),
            "seconds a token lookup is cached per process (`0`: off); revocations and SCIM "
            "switches still apply at once on every replica (PostgreSQL NOTIFY empties the "
            "caches)",
        ),
    ] = 10.0
    log_format: Annotated[
        LogFormat,
        _e(
            "SCIM_LOG_FORMAT",
            choice("json", "console"),
            "log renderer",
            default="`console` on a terminal, else `json`",
        ),
    ] = "json"
    log_level: Annotated[
        str,
        _e(
            "SCIM_LOG_LEVEL",
            choice(*LOG_LEVELS, aliases={"warn": "warning"}),
            "`debug`, `info`, `warning`, `error`",
        ),
    ] = "info"
    migrate_on_start: Annotated[
        bool,
        _e(
            "SCIM_MIGRATE_ON_START",
            boolean,
            "`serve` and `publisher` apply pending migrations at start (under an advisory "
            "lock); `false` when you run `scim-service migrate` separately. The other CLI "
            "commands that use the database apply pending migrations first whatever this says, "
            "so run them with the image of the release the database is on",
        ),
    ] = True
    db_pool_min: Annotated[
        int,
        _e(
            "SCIM_DB_POOL_MIN",
            ints(0, 1000),
            "connections the pool keeps open, per worker process (at most `SCIM_DB_POOL_MAX`)",
        ),
    ] = 2
    db_pool_max: Annotated[
        int,
        _e(
            "SCIM_DB_POOL_MAX",
            ints(1, 1000),
            "connection pool bound, per worker process (`config check` prints "
            "`database_connections`, the most one `serve` holds in all)",
        ),
    ] = 10
    db_connect_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_CONNECT_TIMEOUT",
            floats(0.1, 3600),
            "seconds to keep retrying an unreachable database at start before exiting 1",
        ),
    ] = 10.0
    # Bounds on every transaction of ours (request pool and publisher), in seconds; 0 = none.
    db_statement_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_STATEMENT_TIMEOUT",
            floats(0, 86400),
            "seconds any one statement of ours may run (PostgreSQL `statement_timeout`, set on "
            "every pooled connection, request and publisher); past it the request answers 503 "
            "with `Retry-After`. `0`: no bound",
        ),
    ] = 30.0
    db_lock_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_LOCK_TIMEOUT",
            floats(0, 86400),
            "seconds a statement waits for a row or table lock (`lock_timeout`) before the "
            "request answers 503",
        ),
    ] = 10.0
    db_idle_in_transaction_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_IDLE_IN_TRANSACTION_TIMEOUT",
            floats(0, 86400),
            "seconds a transaction may sit idle before PostgreSQL ends it "
            "(`idle_in_transaction_session_timeout`); ours never wait on the network inside a "
            "transaction",
        ),
    ] = 60.0
    # The lock wait of an API request (request pool): a locked resource holds its
    # organization's slot this long at most.
    db_request_lock_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_REQUEST_LOCK_TIMEOUT",
            floats(0, 86400),
            "seconds an API request waits for a lock (a SCIM write for the row of the user or "
            "group it changes, held by another writer or session) before answering `503` with "
            "`Retry-After: 1`; the API pool's `lock_timeout` is the smaller of this and "
            '`SCIM_DB_LOCK_TIMEOUT` (`0`: only that one) ("Fair shares")',
        ),
    ] = 1.0
    # Slow clients (scim_service/http/connections.py), per listener of a worker process.
    http_head_timeout: Annotated[
        float,
        _e(
            "SCIM_HTTP_HEAD_TIMEOUT",
            floats(0, 86400),
            "seconds a client has to send a whole request head (request line and headers), "
            "from its first byte, or from the connection for the first request; then `408` and "
            "the connection is closed (`0`: no bound)",
        ),
    ] = 10.0
    http_body_min_rate: Annotated[
        float,
        _e(
            "SCIM_HTTP_BODY_MIN_RATE",
            floats(0, 1_000_000_000),
            "bytes per second a request body must average once `SCIM_HTTP_BODY_GRACE` has "
            "passed (Kestrel's rule); a slower body is cut off with `408` (`0`: no bound)",
        ),
    ] = 240.0
    http_body_grace: Annotated[
        float,
        _e(
            "SCIM_HTTP_BODY_GRACE",
            floats(0, 86400),
            "seconds a body may take before `SCIM_HTTP_BODY_MIN_RATE` applies",
        ),
    ] = 5.0
    http_keepalive_timeout: Annotated[
        float,
        _e(
            "SCIM_HTTP_KEEPALIVE_TIMEOUT",
            floats(0, 86400),
            "seconds an idle keep-alive connection stays open between requests",
        ),
    ] = 75.0
    http_max_connections: Annotated[
        int,
        _e(
            "SCIM_HTTP_MAX_CONNECTIONS",
            ints(0, 1_000_000),
            "open client connections per worker process and listener; one more is answered "
            "`503` with `Retry-After` and closed (`0`: no cap)",
        ),
    ] = 1000
    # Fair shares (scim_service/fairness.py).
    db_acquire_timeout: Annotated[
        float,
        _e(
            "SCIM_DB_ACQUIRE_TIMEOUT",
            floats(0.05, 600),
            "seconds a request waits, in all, for its organization's slot and a pooled "
            "connection: then `429` (no slot) or `503` (no connection), with `Retry-After` "
            '("Fair shares")',
        ),
    ] = 5.0
    # None: half of db_pool_max (at least 1). See `org_concurrency`.
    org_max_concurrency: Annotated[
        int | None,
        _e(
            "SCIM_ORG_MAX_CONCURRENCY",
            ints(1, 1000),
            "requests of one organization holding or waiting for a pooled connection at once, "
            "per process; more wait their turn within `SCIM_DB_ACQUIRE_TIMEOUT`, then `429`",
            default="half of `SCIM_DB_POOL_MAX` (at least 1)",
        ),
    ] = None
    token_rate_limit: Annotated[
        float,
        _e(
            "SCIM_TOKEN_RATE_LIMIT",
            floats(0, 100_000),
            "requests per second per SCIM token, per process (token bucket); over it `429` with "
            "`Retry-After`",
            default="`0` (off)",
        ),
    ] = 0.0
    token_rate_burst: Annotated[
        int | None,
        _e(
            "SCIM_TOKEN_RATE_BURST",
            ints(1, 1_000_000),
            "requests a token may send at once before `SCIM_TOKEN_RATE_LIMIT` applies",
            default="the rate rounded up (at least 1)",
        ),
    ] = None
    max_body_bytes: int = 1024 * 1024  # not a setting: the SCIM limits (README "Limits")
    shutdown_grace: Annotated[
        float,
        _e(
            "SCIM_SHUTDOWN_GRACE",
            floats(0, 3600),
            "seconds in-flight requests (and the publisher's batch in hand) get after SIGTERM",
        ),
    ] = 20.0
    shutdown_drain_delay: Annotated[
        float,
        _e(
            "SCIM_SHUTDOWN_DRAIN_DELAY",
            floats(0, 600),
            "seconds `/readyz` answers 503 before the listener closes, so load balancers stop "
            "routing first",
        ),
    ] = 0.0

    # Events (transactional outbox + publisher)
    publisher_enabled: Annotated[
        bool,
        _e(
            "SCIM_PUBLISHER_ENABLED",
            boolean,
            "`serve` also runs the event publisher; `false` when `scim-service publisher` runs "
            "apart",
        ),
    ] = True
    webhook_url: Annotated[
        str | None,
        _e(
            "SCIM_WEBHOOK_URL",
            http_url,
            "deliver events by HTTP POST (Standard Webhooks) to this URL",
        ),
    ] = None
    webhook_secrets: Annotated[
        tuple[str, ...],
        _e(
            "SCIM_WEBHOOK_SECRET",
            secret_list,
            "`whsec_...` HMAC secret(s) for `v1` signatures; several (space or comma "
            "separated) during a rotation",
            default="unset",
            secret=True,
        ),
    ] = ()
    webhook_signing_key: Annotated[
        str | None,
        _e(
            "SCIM_WEBHOOK_SIGNING_KEY",
            text,
            "Ed25519 key (`whsk_...` or PKCS#8 PEM) for `v1a` signatures; receivers verify with "
            "the public key",
            secret=True,
        ),
    ] = None
    webhook_timeout: Annotated[
        float, _e("SCIM_WEBHOOK_TIMEOUT", floats(0.1, 300), "seconds per webhook request")
    ] = 15.0
    webhook_concurrency: Annotated[
        int,
        _e(
            "SCIM_WEBHOOK_CONCURRENCY",
            ints(1, 4096),
            "webhook requests in flight at most, per publisher process: with receivers "
            "answering in `t` seconds, delivery keeps up with up to `64 / t` events per second",
        ),
    ] = 64
    webhook_batch_max: Annotated[
        int,
        _e(
            "SCIM_WEBHOOK_BATCH_MAX",
            ints(1, 1000),
            "CloudEvents batch mode for `SCIM_WEBHOOK_URL`: up to this many consecutive versions "
            "of one resource in one request (`application/cloudevents-batch+json`, a JSON array "
            "in version order); 1: one event per request",
        ),
    ] = 1
    webhook_endpoint_key: Annotated[
        str | None,
        _e(
            "SCIM_WEBHOOK_ENDPOINT_KEY",
            token(32),
            "server key from which each webhook endpoint's `whsec_` secret is derived "
            "(HMAC-SHA256 of the endpoint id; nothing else is stored); needed to create or "
            "deliver endpoints (`POST /admin/v1/endpoints`); changing it changes every "
            "endpoint's secret",
            secret=True,
        ),
    ] = None
    webhook_endpoint_disable_after_hours: Annotated[
        float,
        _e(
            "SCIM_WEBHOOK_ENDPOINT_DISABLE_AFTER_HOURS",
            floats(0, 24 * 365),
            "a webhook endpoint whose every attempt has failed for this long is paused "
            "automatically (its position and owed events kept; `PATCH` `paused: false` resumes "
            "it where it stopped); 0: never",
        ),
    ] = 72.0
    webhook_allowed_networks: Annotated[
        tuple[str, ...],
        _e(
            "SCIM_WEBHOOK_ALLOWED_NETWORKS",
            cidr_list,
            "CIDRs (space or comma separated, e.g. `10.1.0.0/16`) that webhook endpoints may "
            "reach although they are loopback, link-local, private or unspecified (refused "
            "otherwise, at creation and at each delivery)",
            default="none",
        ),
    ] = ()
    nats_url: Annotated[
        str | None,
        _e(
            "SCIM_NATS_URL",
            nats_servers,
            "deliver events to NATS JetStream (`nats://host:4222`, comma-separated for a cluster)",
        ),
    ] = None
    nats_subject_prefix: Annotated[
        str,
        _e("SCIM_NATS_SUBJECT_PREFIX", subject_prefix, "subjects are `<prefix>.<orgid>.<type>`"),
    ] = "scim"
    nats_stream: Annotated[
        str,
        _e(
            "SCIM_NATS_STREAM",
            stream_name,
            "JetStream stream, created (subjects `<prefix>.>`) if missing",
        ),
    ] = "SCIM_EVENTS"
    event_source_override: Annotated[
        str | None,
        _e("SCIM_EVENT_SOURCE", text, "CloudEvents `source`", default="the SCIM base URL"),
    ] = None
    events_max_attempts: Annotated[
        int,
        _e(
            "SCIM_EVENTS_MAX_ATTEMPTS",
            ints(1, 1000),
            "attempts before an event is dead-lettered",
        ),
    ] = 12
    events_max_age_hours: Annotated[
        float,
        _e(
            "SCIM_EVENTS_MAX_AGE_HOURS",
            floats(0.001, 24 * 365),
            "age after which a failing event is dead-lettered",
        ),
    ] = 72.0
    # Standard Webhooks' schedule, shortened at the start; jittered.
    events_retry_schedule: Annotated[
        tuple[float, ...],
        _e(
            "SCIM_EVENTS_RETRY_SCHEDULE",
            schedule,
            "seconds before each retry (±20% jitter; `Retry-After` honoured)",
        ),
    ] = (5, 30, 120, 300, 1800, 3600, 7200, 18000, 36000, 50400, 72000, 86400)
    events_retention_days: Annotated[
        float,
        _e(
            "SCIM_EVENTS_RETENTION_DAYS",
            floats(0.0001, 3650),
            "delivered events are deleted after this many days (replay window)",
        ),
    ] = 7.0
    publisher_batch_size: Annotated[
        int, _e("SCIM_PUBLISHER_BATCH_SIZE", ints(1, 5000), "events claimed per batch")
    ] = 1000
    publisher_poll_interval: Annotated[
        float,
        _e(
            "SCIM_PUBLISHER_POLL_INTERVAL",
            floats(0.01, 3600),
            "seconds between polls when no notification arrives",
        ),
    ] = 1.0
    publisher_workers: Annotated[
        int,
        _e(
            "SCIM_PUBLISHER_WORKERS",
            ints(1, 32),
            "claim loops per sink (one database connection each; deliveries run apart from them)",
        ),
    ] = 2
    publisher_lease_seconds: Annotated[
        float,
        _e(
            "SCIM_PUBLISHER_LEASE_SECONDS",
            floats(1, 86400),
            "how long a claimed event stays leased to its publisher; if that publisher dies, "
            "another one delivers the event (same id) once the lease runs out. Must exceed "
            "`SCIM_WEBHOOK_TIMEOUT` by 5 s",
        ),
    ] = 60.0

    # A publisher of a multi-worker `serve` whose claim loops have not gone round for this long
    # is stalled (stopped, wedged): the supervisor kills and replaces it.
    publisher_stall_seconds: Annotated[
        float,
        _e(
            "SCIM_PUBLISHER_STALL_SECONDS",
            floats(1, 86400),
            "a publisher whose claim loops have not gone round for this long is hung: with "
            "`SCIM_WORKERS` > 1 the supervisor kills and replaces its process (log event "
            "`publisher_stalled`); a process that runs the publisher itself (`SCIM_WORKERS=1`, "
            "`scim-service publisher`) answers `/healthz` with 503 `publisher_stalled`, so its "
            "liveness probe restarts it; the metric `scim_publisher_heartbeat_timestamp_seconds` "
            "shows the last round in every mode",
        ),
    ] = 60.0

    # The SCIM activity log (activity.py).
    activity_log: Annotated[
        Capture,
        _e(
            "SCIM_ACTIVITY_LOG",
            choice("off", "errors", "all"),
            'which SCIM requests the activity log records ("SCIM activity log"): `off`, '
            "`errors` (status 400 and up, failed authentications included), `all`",
        ),
    ] = "all"
    activity_bodies: Annotated[
        Capture,
        _e(
            "SCIM_ACTIVITY_BODIES",
            choice("off", "errors", "all"),
            "which entries keep their request and response bodies (secrets masked): `off`, "
            "`errors`, `all`",
        ),
    ] = "errors"
    activity_retention_days: Annotated[
        float,
        _e(
            "SCIM_ACTIVITY_RETENTION_DAYS",
            floats(0.001, 3650),
            "entries older than this are pruned (in the background, every minute)",
        ),
    ] = 7.0
    activity_max_per_org: Annotated[
        int,
        _e(
            "SCIM_ACTIVITY_MAX_PER_ORG",
            ints(1, 10_000_000),
            "an organization keeps at most its newest this many entries (unverified failed "
            "authentications apart: see the activity log)",
        ),
    ] = 10_000

    # The mass-deprovisioning guard (provisioning/guard.py): defaults for every organization,
    # each may override them (admin API / `scim-service org guard set`).
    deprovision_guard: Annotated[
        bool,
        _e(
            "SCIM_DEPROVISION_GUARD",
            boolean,
            'the mass-deprovisioning guard ("A guard against mass deprovisioning"); each '
            "organization may override this and the three below",
        ),
    ] = True
    deprovision_guard_percent: Annotated[
        float,
        _e(
            "SCIM_DEPROVISION_GUARD_PERCENT",
            floats(0.01, 100),
            "the guard trips when the users who lost access (deprovisioned, or removed from a "
            "group) within the window reach this share of the organization's active users ...",
        ),
    ] = 25.0
    deprovision_guard_min_users: Annotated[
        int,
        _e(
            "SCIM_DEPROVISION_GUARD_MIN_USERS",
            ints(1, 10_000_000),
            "... and at least this many users ...",
        ),
    ] = 20
    deprovision_guard_window_minutes: Annotated[
        float,
        _e(
            "SCIM_DEPROVISION_GUARD_WINDOW_MINUTES",
            floats(0.01, 7 * 24 * 60),
            "... within this many minutes",
        ),
    ] = 15.0
    deprovision_guard_staging_seconds: Annotated[
        float,
        _e(
            "SCIM_DEPROVISION_GUARD_STAGING_SECONDS",
            floats(0, 24 * 3600),
            "hold every access-reducing change this long before any consumer sees it, so a "
            "burst that trips the guard is held whole (0: changes before the trip flow; see "
            '"A guard against mass deprovisioning")',
        ),
    ] = 0.0

    # Metrics: /metrics on the main port, or only on a separate one (SCIM_METRICS_PORT).
    metrics_enabled: Annotated[
        bool,
        _e("SCIM_METRICS_ENABLED", boolean, "serve `GET /metrics` (Prometheus text format)"),
    ] = True
    metrics_port: Annotated[
        int | None,
        _e(
            "SCIM_METRICS_PORT",
            ints(1, 65535),
            "serve `/metrics` only on this separate port",
        ),
    ] = None
    metrics_host: Annotated[
        str | None,
        _e(
            "SCIM_METRICS_HOST",
            text,
            "the address of that separate listener",
            default="`SCIM_HOST`",
        ),
    ] = None
    metrics_token: Annotated[
        str | None,
        _e(
            "SCIM_METRICS_TOKEN",
            token(16),
            "require `Authorization: Bearer <token>` to scrape",
            secret=True,
        ),
    ] = None

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


@functools.cache
def declared() -> tuple[tuple[str, Env], ...]:
    """(field, Env) of every setting, in declaration order (the README table's order)."""
    hints = typing.get_type_hints(Settings, include_extras=True)
    out = []
    for field in msgspec.structs.fields(Settings):
        meta = getattr(hints[field.name], "__metadata__", ())
        env = next((m for m in meta if isinstance(m, Env)), None)
        if env is not None:
            out.append((field.name, env))
    return tuple(out)


def _check_together(values: dict[str, Any], problems: list[str]) -> None:
    """The rules that involve two settings."""
    pool_min = values.get("db_pool_min", _DEFAULTS.db_pool_min)
    pool_max = values.get("db_pool_max", _DEFAULTS.db_pool_max)
    if pool_min > pool_max:
        problems.append(f"SCIM_DB_POOL_MIN={pool_min} is larger than SCIM_DB_POOL_MAX={pool_max}")
    lease = values.get("publisher_lease_seconds", _DEFAULTS.publisher_lease_seconds)
    hook_timeout = values.get("webhook_timeout", _DEFAULTS.webhook_timeout)
    if lease < hook_timeout + 5:
        problems.append(
            f"SCIM_PUBLISHER_LEASE_SECONDS={lease:g} must exceed SCIM_WEBHOOK_TIMEOUT="
            f"{hook_timeout:g} by at least 5 seconds (a lease must outlast a delivery)"
        )
    secrets = values.get("webhook_secrets", ())
    key = values.get("webhook_signing_key")
    if secrets or key is not None:  # their values are never echoed
        from scim_service.signing import Signer

        try:
            Signer(list(secrets), key)
        except ValueError as exc:
            problems.append(f"SCIM_WEBHOOK_SECRET/SCIM_WEBHOOK_SIGNING_KEY: {exc}")


def load_settings(
    environ: Mapping[str, str] | None = None, *, isatty: bool | None = None
) -> Settings:
    """Build Settings from the environment; raise ConfigError listing every bad value."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    for field, setting in declared():
        raw = env.get(setting.name)
        if raw is None or raw.strip() == "":
            continue
        value = setting.parse(setting.name, raw, problems)
        if value is not None:
            values[field] = value
    if "log_format" not in values:
        tty = sys.stdout.isatty() if isatty is None else isatty
        values["log_format"] = "console" if tty else "json"
    _check_together(values, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


SECRET_FIELDS = frozenset(field for field, setting in declared() if setting.secret)


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


# --- the README's settings table --------------------------------------------------------------

TABLE_START = "<!-- settings: generated from scim_service/config.py -->"
TABLE_END = "<!-- /settings -->"


def _shown(value: object) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return "`" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "`"
    return f"`{value}`"


def settings_table() -> str:
    """The README's settings table: one row per declared setting."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for field, setting in declared():
        default = setting.default or _shown(getattr(_DEFAULTS, field))
        lines.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(lines)


def rewrite_readme(readme: str) -> str:
    """`readme` with the table between TABLE_START and TABLE_END made anew."""
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{settings_table()}\n{TABLE_END}{tail}"


if __name__ == "__main__":  # python -m scim_service.config README.md
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    target.write_text(rewrite_readme(target.read_text("utf-8")), "utf-8")
