"""The event publisher: outbox rows → sinks, at least once, in order per resource.

One loop per sink, each on a dedicated connection: wait for "notify | poll timeout | stop",
claim a batch (FOR UPDATE SKIP LOCKED, oldest pending version per resource — the ordering
argument is in store/outbox.py), deliver it, and in the same transaction delete the delivered
rows and schedule retries (exponential backoff with jitter, honouring Retry-After) or dead-letter
events that ran out of attempts or age. A dedicated LISTEN connection wakes the loops the moment
a write commits; polling covers a lost notification and due retries. Any number of publishers
(in `serve` replicas or `scim-service publisher` processes) may run against one database.

Stopping: the loops finish the batch in hand (its transaction commits) or, past the deadline,
are cancelled — their transaction aborts and the batch stays pending. Nothing is lost either
way; at worst an event is delivered again with the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg

from scim_service.config import Settings
from scim_service.events.sinks.base import Outbound, Outcome, Sink
from scim_service.logs import get_logger
from scim_service.store import outbox
from scim_service.store.db import connect

log = get_logger("scim_service.publisher")

CHANNEL = "scim_outbox"
RETENTION_EVERY = 600.0  # seconds between retention passes
MAX_RETRY_AFTER = 86400.0
_RECONNECT_MAX = 10.0


class PublisherMetrics(Protocol):
    """What the publisher reports; the metrics module implements it (no-op by default)."""

    def delivered(self, sink: str, count: int) -> None: ...
    def failed(self, sink: str, count: int) -> None: ...
    def dead_lettered(self, sink: str, count: int) -> None: ...


class _NoMetrics:
    def delivered(self, sink: str, count: int) -> None:
        pass

    def failed(self, sink: str, count: int) -> None:
        pass

    def dead_lettered(self, sink: str, count: int) -> None:
        pass


def retry_delay(schedule: Sequence[float], attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: the schedule's entry for this attempt, ±20% jitter, and
    never sooner than the receiver's Retry-After."""
    base = schedule[min(attempts, len(schedule) - 1)]
    delay = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


class Publisher:
    def __init__(
        self,
        settings: Settings,
        sinks: Mapping[str, Sink],
        *,
        metrics: PublisherMetrics | None = None,
    ) -> None:
        assert settings.database_url is not None
        self.settings = settings
        self.sinks = dict(sinks)
        self.metrics: PublisherMetrics = metrics or _NoMetrics()
        # Several workers per sink: while one waits for its receiver, another claims the next
        # batch. Per-resource order still holds: a claimed event's row exists (locked) until
        # it is delivered, so no worker can claim that resource's next event meanwhile.
        self.workers = max(1, settings.publisher_workers)
        self._wake = {
            (name, i): asyncio.Event() for name in self.sinks for i in range(self.workers)
        }
        self._opened: dict[str, asyncio.Lock] = {name: asyncio.Lock() for name in self.sinks}
        self._open: set[str] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_task: asyncio.Future[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for name, sink in self.sinks.items():
            for i in range(self.workers):
                self._tasks.append(
                    asyncio.create_task(
                        self._sink_loop(name, sink, i), name=f"publisher:{name}:{i}"
                    )
                )
        self._tasks.append(asyncio.create_task(self._listen_loop(), name="publisher:listen"))
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="publisher:retention"))
        log.info("publisher_started", sinks=list(self.sinks))

    async def stop(self, deadline: float) -> None:
        """Finish the batches in hand within `deadline` seconds, else abandon them (they stay
        pending and will be delivered again). Safe to call more than once: later calls wait for
        the first."""
        self.begin_stop(deadline)
        assert self._stop_task is not None
        await asyncio.shield(self._stop_task)

    def begin_stop(self, deadline: float) -> None:
        """Start stopping without waiting (shutdown overlaps it with draining HTTP requests)."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop(deadline))

    async def _stop(self, deadline: float) -> None:
        self._stopping.set()
        for ev in self._wake.values():
            ev.set()
        done, pending = (
            await asyncio.wait(self._tasks, timeout=deadline) if self._tasks else (set(), set())
        )
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error(
                    "publisher_task_failed", task=task.get_name(), error=repr(task.exception())
                )
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()
        log.info("publisher_stopped", abandoned=len(pending))

    def wake(self) -> None:
        for ev in self._wake.values():
            ev.set()

    # --- loops -------------------------------------------------------------------------------
    async def _connect(self) -> asyncpg.Connection:
        assert self.settings.database_url is not None
        conn = await connect(self.settings.database_url, timeout=self.settings.db_connect_timeout)
        # Re-plan every claim: a plan cached while the outbox was empty keeps scanning badly
        # once it grows (measured: the publisher fell 300k rows behind).
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        return conn

    async def _listen_loop(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_: self.wake())
                delay = 0.5
                self.wake()  # whatever committed while we were not listening
                stop = asyncio.create_task(self._stopping.wait())
                gone = asyncio.create_task(lost.wait())
                await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                gone.cancel()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("publisher_listen_failed", error=type(exc).__name__, retry_in=delay)
                await self._sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)

    async def _open_sink(self, name: str, sink: Sink) -> None:
        async with self._opened[name]:
            if name not in self._open:
                await sink.open()
                self._open.add(name)

    async def _sink_loop(self, name: str, sink: Sink, worker: int) -> None:
        delay = 0.5
        conn: asyncpg.Connection | None = None
        try:
            while not self._stopping.is_set():
                try:
                    await self._open_sink(name, sink)
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                    handled = await self.cycle(conn, name, sink)
                    delay = 0.5
                    if handled:
                        continue  # there may be more right away
                    await self._wait((name, worker))
                except (
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    TimeoutError,
                ) as exc:
                    log.warning(
                        "publisher_cycle_failed",
                        sink=name,
                        error=type(exc).__name__,
                        retry_in=delay,
                    )
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.terminate()
                        conn = None
                    await self._sleep(delay)
                    delay = min(delay * 2, _RECONNECT_MAX)
                except Exception as exc:  # a sink that cannot open (bad config, NATS down, ...)
                    log.error("publisher_sink_error", sink=name, error=repr(exc), retry_in=delay)
                    await self._sleep(delay)
                    delay = min(delay * 2, _RECONNECT_MAX)
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    async def cycle(self, conn: asyncpg.Connection, name: str, sink: Sink) -> int:
        """Claim, deliver and record one batch; return how many events it held."""
        settings = self.settings
        async with conn.transaction():
            claimed = await outbox.claim(conn, name, settings.publisher_batch_size)
            if not claimed:
                return 0
            batch = [
                Outbound(
                    seq=c.seq,
                    id=str(c.id),
                    type=c.type,
                    org_id=str(c.org_id),
                    subject=str(c.subject),
                    payload=c.payload,
                    attempts=c.attempts,
                )
                for c in claimed
            ]
            started = time.perf_counter()
            outcomes = await sink.deliver(batch)
            elapsed = time.perf_counter() - started
            delivered, failures = self._judge(claimed, outcomes)
            await outbox.mark_delivered(conn, name, delivered)
            await outbox.mark_failed(conn, name, failures)
        dead = [f for f in failures if f[3]]
        self.metrics.delivered(name, len(delivered))
        if failures:
            self.metrics.failed(name, len(failures) - len(dead))
            log.warning(
                "publisher_batch_failures",
                sink=name,
                failed=len(failures),
                dead_lettered=len(dead),
                event_ids=[str(c.id) for c, o in zip(claimed, outcomes, strict=True) if not o.ok][
                    :20
                ],
                error=next((o.error for o in outcomes if not o.ok), None),
            )
        if dead:
            self.metrics.dead_lettered(name, len(dead))
            log.error("publisher_dead_lettered", sink=name, count=len(dead))
        log.debug(
            "publisher_batch",
            sink=name,
            size=len(claimed),
            delivered=len(delivered),
            seconds=round(elapsed, 4),
        )
        return len(claimed)

    def _judge(
        self, claimed: Sequence[outbox.Claimed], outcomes: Sequence[Outcome]
    ) -> tuple[list[int], list[tuple[int, float, str, bool]]]:
        settings = self.settings
        if len(outcomes) != len(claimed):  # a broken sink must not lose events
            outcomes = [Outcome(ok=False, error="sink returned a wrong number of outcomes")] * len(
                claimed
            )
        now = datetime.now(UTC)
        max_age = timedelta(hours=settings.events_max_age_hours)
        delivered: list[int] = []
        failures: list[tuple[int, float, str, bool]] = []
        for c, o in zip(claimed, outcomes, strict=True):
            if o.ok:
                delivered.append(c.seq)
                continue
            attempts = c.attempts + 1
            dead = (
                o.permanent
                or attempts >= settings.events_max_attempts
                or now - c.created_at > max_age
            )
            delay = (
                0.0
                if dead
                else retry_delay(settings.events_retry_schedule, c.attempts, o.retry_after)
            )
            failures.append((c.seq, delay, o.error or "failed", dead))
        return delivered, failures

    async def _wait(self, key: tuple[str, int]) -> None:
        ev = self._wake[key]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout=self.settings.publisher_poll_interval)
        ev.clear()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _retention_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.purge_once()
                await self._warn_orphans()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("publisher_retention_failed", error=type(exc).__name__)
            await self._sleep(RETENTION_EVERY)

    async def _warn_orphans(self) -> None:
        """Events waiting for a sink this publisher does not serve usually mean the API
        replicas and the publishers were given different sink settings."""
        conn = await self._connect()
        try:
            found = await outbox.stats(conn)
        finally:
            await conn.close()
        for s in found:
            if s.sink not in self.sinks and s.pending:
                log.warning(
                    "outbox_sink_not_served",
                    sink=s.sink,
                    pending=s.pending,
                    hint="give every serve and publisher process the same sink settings",
                )

    async def purge_once(self) -> int:
        """Delete delivered events older than the retention horizon; return how many."""
        horizon = datetime.now(UTC) - timedelta(days=self.settings.events_retention_days)
        conn = await self._connect()
        total = 0
        try:
            while not self._stopping.is_set():
                n = await outbox.purge_delivered(conn, horizon)
                total += n
                if n == 0:
                    break
        finally:
            await conn.close()
        if total:
            log.info("events_purged", count=total, older_than=horizon.isoformat())
        return total


def build_sinks(settings: Settings) -> dict[str, Sink]:
    """The sinks the settings name (`Settings.sinks`), ready to open."""
    from scim_service.events.signing import Signer
    from scim_service.events.sinks.log import LogSink
    from scim_service.events.sinks.nats import NatsSink
    from scim_service.events.sinks.webhook import WebhookSink

    sinks: dict[str, Any] = {}
    for name in settings.sinks:
        if name == "webhook":
            assert settings.webhook_url is not None
            signer = (
                Signer(list(settings.webhook_secrets), settings.webhook_signing_key)
                if settings.webhook_secrets or settings.webhook_signing_key
                else None
            )
            sinks[name] = WebhookSink(
                settings.webhook_url, signer, timeout=settings.webhook_timeout
            )
        elif name == "nats":
            assert settings.nats_url is not None
            sinks[name] = NatsSink(
                settings.nats_url,
                subject_prefix=settings.nats_subject_prefix,
                stream=settings.nats_stream,
            )
        else:
            sinks[name] = LogSink()
    return sinks
