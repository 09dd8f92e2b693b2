"""Prometheus metrics (`GET /metrics`, text exposition format).

One registry per app (tests run many apps in one process). Labels are route templates
(`/scim/v2/Users/{id}`), never raw paths with ids. Gauges that describe the database (outbox
backlog, pool) are read when Prometheus scrapes, so they are never stale and cost nothing
between scrapes.

Several worker processes (SCIM_WORKERS > 1, scim_service/supervisor.py): the supervisor sets
PROMETHEUS_MULTIPROC_DIR for its children, so prometheus-client keeps every counter, histogram
and gauge in per-process files there, and a scrape, answered by whichever worker the kernel
picks, reports across all of them: counters and histograms summed, this process's pool gauges
summed over the live workers, the loop lag the worst of the live workers (over the last ~10 s),
the database gauges as the scraping worker just read them. The `process_*`/`python_*` series
describe one process and are left out in that mode (container metrics cover the pod).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal

import asyncpg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from scim_service import errors, restarts
from scim_service.provisioning import guard, status
from scim_service.store import outbox

# Route template prefix → SCIM resource label.
_RESOURCES = {
    "/scim/v2/Users": "User",
    "/scim/v2/Groups": "Group",
    "/scim/v2/.search": "Search",
}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def scim_operation(method: str, route: str) -> tuple[str, str] | None:
    """(resource, operation) of a SCIM route, or None for other routes."""
    for prefix, resource in _RESOURCES.items():
        if route == prefix or route.startswith(prefix + "/"):
            rest = route[len(prefix) :]
            if rest.endswith(".search") or prefix.endswith(".search"):
                return resource, "search"
            if rest == "":
                return resource, {"GET": "list", "POST": "create"}.get(method, method.lower())
            return resource, {
                "GET": "get",
                "PUT": "replace",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(method, method.lower())
    return None


CLIENT_CLOSED = 499  # errors.ClientClosed: the client hung up mid-request


def outcome_of(status: int) -> str:
    if status == CLIENT_CLOSED:
        return "client_closed"
    if status < 400:
        return "success"
    return "client_error" if status < 500 else "server_error"


# Set by the supervisor for its publisher process (scim_service/supervisor.py).
ENV_HEARTBEAT_FILE = "SCIM_PUBLISHER_HEARTBEAT_FILE"

_LAG_BLOCK = 5.0  # seconds; with several workers the lag gauge is the worst of two blocks


def multiprocess_dir() -> str | None:
    """The directory of a multi-worker `serve`'s metric files, when this is one of its
    processes (prometheus-client reads the same variable when it is first imported)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# Label values known in advance: their series exist (zero-valued) from the first scrape, so a
# rule such as `rate(scim_event_deliveries_total[5m])` or an `absent()` has data on a fresh pod.
DELIVERY_OUTCOMES = ("delivered", "failed", "dead_lettered")
AUTH_FAILURE_REASONS = (
    "missing",
    "malformed",
    "invalid",
    "revoked",
    "expired",
    "disabled",
    "admin",
)
REJECTIONS = (
    ("429", "org_concurrency"),
    ("429", "token_rate"),
    ("503", "pool_timeout"),
    ("503", "lock_timeout"),
)
_GaugeMode = Literal["mostrecent", "max", "livesum", "livemax"]
_DB_MODE: _GaugeMode = "mostrecent"


class Metrics:
    """The service's metric families, one registry. Families are declared by group below
    (`_http_families`, `_database_families`, ...): adding one is one entry in its group."""

    def __init__(self, sinks: tuple[str, ...] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.shared_dir = multiprocess_dir()
        restarts.register(self.registry, self.shared_dir)
        if self.shared_dir is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self._http_families()
        self._delivery_families()
        self._database_families()
        self._process_families()
        self._label_known(sinks)
        # In a supervised publisher process: a file whose mtime the supervisor watches.
        self._beat_file = os.environ.get(ENV_HEARTBEAT_FILE) or None
        self._beats: dict[str, float] = {}  # sink -> time.monotonic() of its last round
        self._beat_touched = 0.0
        self._lag_window = 0.0
        self._lag_blocks = (time.monotonic(), 0.0, 0.0)  # (block start, its worst, previous's)
        self._pool: asyncpg.Pool | None = None
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(
        self, name: str, doc: str, labels: tuple[str, ...] = (), *, mode: _GaugeMode = _DB_MODE
    ) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode)

    def _http_families(self) -> None:
        self.requests = self._counter(
            "scim_http_requests", "HTTP requests", ("method", "route", "status")
        )
        self.latency = Histogram(
            "scim_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.operations = self._counter(
            "scim_operations", "SCIM operations", ("resource", "operation", "outcome")
        )
        self.auth_failures = self._counter(
            "scim_auth_failures",
            "Rejected credentials (missing, malformed, invalid, revoked, expired, disabled, admin)",
            ("reason",),
        )
        self.rejections = self._counter(
            "scim_rejected_requests",
            "Requests turned away to keep shares fair, by status and reason (429 org_concurrency,"
            " 429 token_rate, 503 pool_timeout, 503 resource_busy, 503 lock_timeout; slow"
            " clients: 408 head_timeout, 408 body_too_slow, 503 over_capacity)",
            ("status", "reason"),
        )

    def _delivery_families(self) -> None:
        self.deliveries = self._counter(
            "scim_event_deliveries",
            "Event delivery attempts by sink and outcome (delivered, failed, dead_lettered)",
            ("sink", "outcome"),
        )
        self.heartbeat_gauge = self._gauge(
            "scim_publisher_heartbeat_timestamp_seconds",
            "Unix time at which a claim loop of this sink's publisher last went round (claimed,"
            " found nothing, or waited for a free delivery slot); 0 before the first round",
            ("sink",),
            mode="max",
        )

    def _database_families(self) -> None:
        """Read from the database at scrape time: with workers, the most recent read wins
        (what the database says is the same whoever read it)."""
        sink = ("sink",)
        g = self._gauge
        self.outbox_pending = g(
            "scim_outbox_pending_events", "Events not yet delivered (not dead-lettered)", sink
        )
        self.outbox_oldest = g(
            "scim_outbox_oldest_pending_age_seconds", "Age of the oldest undelivered event", sink
        )
        self.outbox_unconfigured = g(
            "scim_outbox_unconfigured_sink_events",
            "Events (pending and dead) queued for a sink this process is not configured with: "
            "a sink removed from the settings; hand them on or discard them (events orphans)",
            sink,
        )
        self.outbox_dead = g(
            "scim_outbox_dead_letters", "Dead-lettered events waiting for an operator", sink
        )
        self.outbox_held = g(
            "scim_outbox_held_events",
            "Deliveries held by the mass-deprovisioning guard until an administrator acts",
            sink,
        )
        self.guard_tripped = g(
            "scim_deprovision_guard_tripped_organizations",
            "Organizations whose mass-deprovisioning guard is tripped (deprovisions held)",
        )
        self.tokens_expiring = g(
            "scim_tokens_expiring_soon",
            "Active SCIM tokens (all organizations) that expire within 7 days",
        )

    def _process_families(self) -> None:
        """This process's own state: pool sizes add up over the live workers, the loop lag is
        the worst of them."""
        self.pool_size = self._gauge(
            "scim_db_pool_connections",
            "Database pool size (summed over the worker processes)",
            mode="livesum",
        )
        self.pool_in_use = self._gauge(
            "scim_db_pool_connections_in_use", "Pool connections in use", mode="livesum"
        )
        self.loop_lag = self._gauge(
            "scim_event_loop_lag_seconds",
            "Worst lateness of the event loop since the previous scrape (a 0.1 s timer "
            "sampled): how long one request's computation kept every other request waiting",
            mode="livemax",
        )

    def _label_known(self, sinks: tuple[str, ...]) -> None:
        """Series that exist from the start (at 0), so a rate() sees their first increase."""
        outbox_gauges = (
            self.outbox_pending,
            self.outbox_oldest,
            self.outbox_dead,
            self.outbox_unconfigured,
            self.outbox_held,
        )
        for sink in sinks:
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(sink, outcome)
            self.heartbeat_gauge.labels(sink)
            for gauge in outbox_gauges:
                gauge.labels(sink)
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)
        for status_code, why in REJECTIONS:
            self.rejections.labels(status_code, why)

    # --- HTTP ------------------------------------------------------------------------------
    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children of one (method, route, status) are looked up once: labels()
        # on every request was a measurable share of a GET's cost.
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            op = scim_operation(method, route)
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
                None if op is None else self.operations.labels(op[0], op[1], outcome_of(status)),
            )
            self._children[key] = children
        count, latency, operation = children
        count.inc()
        latency.observe(seconds)
        if operation is not None:
            operation.inc()

    def loop_lag_sample(self, seconds: float) -> None:
        self._lag_window = max(self._lag_window, seconds)
        if self.shared_dir is not None:
            # Another worker may answer the scrape: keep this one's gauges current in its
            # file (the worst lag of the last one or two blocks; the pool's size and use).
            start, worst, previous = self._lag_blocks
            now = time.monotonic()
            if now - start >= _LAG_BLOCK:
                start, worst, previous = now, 0.0, worst
            worst = max(worst, seconds)
            self._lag_blocks = (start, worst, previous)
            self.loop_lag.set(max(worst, previous))
            if self._pool is not None:
                self._pool_gauges(self._pool)

    def watch_pool(self, pool: asyncpg.Pool | None) -> None:
        """The pool whose size the gauges report (refreshed between scrapes with workers)."""
        self._pool = pool

    def _pool_gauges(self, pool: asyncpg.Pool) -> None:
        self.pool_size.set(pool.get_size())
        self.pool_in_use.set(pool.get_size() - pool.get_idle_size())

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def rejected(self, status: int, reason: str) -> None:
        """A request refused by the fair-share gate (implements fairness.RejectionMetrics)."""
        self.rejections.labels(str(status), reason).inc()

    # --- publisher (implements events.publisher.PublisherMetrics) ----------------------------
    def delivered(self, sink: str, count: int) -> None:
        if count:
            self.deliveries.labels(sink, "delivered").inc(count)

    def failed(self, sink: str, count: int) -> None:
        if count:
            self.deliveries.labels(sink, "failed").inc(count)

    def dead_lettered(self, sink: str, count: int) -> None:
        if count:
            self.deliveries.labels(sink, "dead_lettered").inc(count)

    def heartbeat(self, sink: str) -> None:
        now = time.time()
        self._beats[sink] = time.monotonic()
        self.heartbeat_gauge.labels(sink).set(now)
        if self._beat_file is not None and now - self._beat_touched >= 1.0:
            self._beat_touched = now
            with contextlib.suppress(OSError):
                Path(self._beat_file).touch()

    def publisher_silence(self) -> float:
        """Seconds since the quietest sink's claim loops last went round in this process (0
        before the publisher's first round, or without a publisher here)."""
        if not self._beats:
            return 0.0
        return time.monotonic() - min(self._beats.values())

    # --- scrape ----------------------------------------------------------------------------
    async def render(
        self,
        pool: asyncpg.Pool | None,
        sinks: tuple[str, ...],
        acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]] | None = None,
    ) -> bytes:
        """The exposition. `acquire` (the app's fair-share gate) bounds the wait for the outbox
        query's connection: with the pool exhausted a scrape still answers, with the process's
        own counters (rejections included) and the outbox gauges' previous values."""
        if self.shared_dir is None:
            self.loop_lag.set(self._lag_window)  # the worst since the previous scrape
        self._lag_window = 0.0
        if pool is not None:
            self._pool_gauges(pool)
            try:
                async with (acquire or pool.acquire)() as conn:
                    found = {s.sink: s for s in await outbox.stats(conn)}
                    tripped = await guard.tripped_orgs(conn)
                    expiring = await status.tokens_expiring(conn)
            except errors.Unavailable:
                return self._exposition()
            for sink in set(sinks) | set(found):
                s = found.get(sink)
                self.outbox_pending.labels(sink).set(s.pending if s else 0)
                self.outbox_oldest.labels(sink).set(s.oldest_age if s else 0)
                self.outbox_dead.labels(sink).set(s.dead if s else 0)
                orphaned = (
                    (s.pending + s.dead + s.held) if s is not None and sink not in sinks else 0
                )
                self.outbox_unconfigured.labels(sink).set(orphaned)
                self.outbox_held.labels(sink).set(s.held if s else 0)
            self.guard_tripped.set(tripped)
            self.tokens_expiring.set(expiring)
        return self._exposition()

    def _exposition(self) -> bytes:
        if self.shared_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, self.shared_dir)  # type: ignore[no-untyped-call]
        restarts.register(merged, self.shared_dir)
        return generate_latest(merged)


class LoopLagMonitor:
    """Samples the event loop's lateness: sleeps `interval` seconds and records how much later
    than asked it woke up (the time the loop spent running something else without yielding).
    Owned by the app (app.cleanup_ctx): `start()` after the loop runs, `await stop()` at the end.
    `worst` is the largest lateness seen since `reset()`; tests read it."""

    def __init__(self, metrics: Metrics, interval: float = 0.1) -> None:
        self.metrics = metrics
        self.interval = interval
        self.worst = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics:loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reset(self) -> None:
        self.worst = 0.0
        self.samples = 0

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            asked = clock() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, clock() - asked)
            self.samples += 1
            self.worst = max(self.worst, lag)
            self.metrics.loop_lag_sample(lag)


# The classic text format (what generate_latest writes), which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
