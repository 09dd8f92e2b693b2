"""The event publisher: outbox rows → sinks, at least once, in order per resource.

Per sink, a *lane*: claim loops, delivery tasks and one recorder, sharing a small pool.

1. **Claim** (one short statement, store/outbox.py `claim`): lease up to as many events as the
   lane has free delivery slots, counting the attempt. No transaction stays open afterwards.
2. **Deliver** with no transaction open: each claimed unit (one event for the webhook sink, a
   whole batch for NATS and the log sink) is its own task, so the claim loop goes straight back
   to claiming while receivers answer, and a slow event never holds up events of other
   resources. In-flight events per sink are bounded (`SCIM_WEBHOOK_CONCURRENCY` for webhooks).
3. **Record** (a second short transaction, by the lane's recorder): outcomes that arrived
   meanwhile are written together: delivered rows are deleted; failures get their next attempt
   (the retry policy, events/retry.py: exponential backoff with jitter, honouring Retry-After)
   or are dead-lettered (attempts or age used up, or a permanent refusal such as HTTP 410).
   Then the claim loops are woken: the next versions of the delivered resources have become
   claimable.

Order per resource holds because a row exists until its event is delivered: leased, retrying
or dead, it keeps its resource's later versions from being claimed (the argument is in
store/outbox.py). A publisher that dies leaves leases that run out after
`SCIM_PUBLISHER_LEASE_SECONDS`; any publisher then claims those events again (same ids). A
database that goes away stops claims and recording; outcomes not yet recorded are kept and
written once it answers again (until then their leases may run out and the events be re-sent,
with the same ids). A dedicated LISTEN connection wakes the claim loops the moment a write
commits; polling covers a lost notification and due retries. Any number of publishers (in `serve`
replicas or `scim-service publisher` processes) may run against one database.

Owned beside the lanes: the LISTEN connection, retention (events/retention.py), the guard's
staged holds, and the webhook endpoints (events/endpoints.py). The sinks come from
events/sinks/factory.py. The loops retry only the errors they expect (the database's, a sink
that cannot open); anything else stops the publisher, logged, so its heartbeat stops and the
supervisor replaces the process.

Stopping: claim loops stop at once; deliveries in flight get the deadline to finish and their
outcomes are recorded; past it they are cancelled and their leases handed back (so another
publisher takes them at once). Nothing is lost either way; at worst an event is delivered
again with the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from scim_service.config import Settings
from scim_service.events.endpoints import EndpointDelivery
from scim_service.events.retention import Retention
from scim_service.events.retry import Decision, RetryPolicy
from scim_service.events.sinks.base import OPEN_ERRORS, Outcome, Sink
from scim_service.logs import get_logger
from scim_service.store import guard as guard_store
from scim_service.store import outbox
from scim_service.store.db import DB_ERRORS, create_pool, session_settings
from scim_service.store.listen import listen
from scim_service.store.outbox import CHANNEL, Claimed, Failure

log = get_logger("scim_service.publisher")

STAGING_EVERY = 1.0  # seconds between looks for the guard's staged holds that are due
_BACKOFF_FIRST = 0.25
_BACKOFF_MAX = 5.0


class PublisherMetrics(Protocol):
    """What the publisher reports; the metrics module implements it (no-op by default)."""

    def delivered(self, sink: str, count: int) -> None: ...
    def failed(self, sink: str, count: int) -> None: ...
    def dead_lettered(self, sink: str, count: int) -> None: ...
    def heartbeat(self, sink: str) -> None: ...


class _NoMetrics:
    def delivered(self, sink: str, count: int) -> None:
        pass

    def failed(self, sink: str, count: int) -> None:
        pass

    def dead_lettered(self, sink: str, count: int) -> None:
        pass

    def heartbeat(self, sink: str) -> None:
        pass


class _Lane:
    """One sink's delivery state in this process: its claim loops' wake-ups, the deliveries in
    flight, and the outcomes waiting for its recorder.

    The sink's shape is applied here, once: `unit` events per `deliver` call (the sink's
    `max_batch`, at most SCIM_PUBLISHER_BATCH_SIZE) and `capacity` events in flight at most
    (`unit` times the sink's `concurrency`); claims never ask for more than is free."""

    def __init__(self, name: str, sink: Sink, batch_size: int, workers: int) -> None:
        self.name = name
        self.sink = sink
        self.unit = max(1, min(batch_size, sink.max_batch))  # events per deliver() call
        self.capacity = self.unit * max(1, sink.concurrency)  # events in flight at most
        # Batch mode: each call is one resource's run of versions; claims count resources.
        self.per_resource = self.unit if sink.per_resource > 1 else 1
        self.in_flight = 0
        self.slot_freed = asyncio.Event()
        self.wake = [asyncio.Event() for _ in range(workers)]
        self.outcomes: list[tuple[Claimed, Outcome]] = []
        self.outcome_ready = asyncio.Event()
        self.deliveries: dict[asyncio.Task[None], list[Claimed]] = {}
        self.opened = False
        self.open_lock = asyncio.Lock()
        self.start = outbox.FIRST_SUBJECT  # where the next claim's skip scan begins

    def wake_all(self) -> None:
        for ev in self.wake:
            ev.set()


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
        # Who holds a lease: visible in the outbox, unique per process start.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workers = max(1, settings.publisher_workers)
        self.policy = RetryPolicy.of(settings)
        batch = settings.publisher_batch_size
        self.lanes = {
            name: _Lane(name, sink, batch, self.workers) for name, sink in self.sinks.items()
        }
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._recorders: list[asyncio.Task[None]] = []
        self._stop_task: asyncio.Future[None] | None = None
        # Webhook endpoints managed at run time (issue 26): their own tasks, positions, pool.
        self.endpoints = EndpointDelivery(settings, self.owner, self.metrics)
        self.retention = Retention(settings, self.sinks, self._acquire, self._stopping)
        self.failure: BaseException | None = None
        """The unexpected error that stopped this publisher, if one did (see `_watch`)."""

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for name, lane in self.lanes.items():
            for i in range(self.workers):
                self._loops.append(self._task(self._claim_loop(lane, i), f"publisher:{name}:{i}"))
            self._recorders.append(self._task(self._record_loop(lane), f"publisher:{name}:record"))
        self._loops.append(self._task(self.retention.run(), "publisher:retention"))
        self._loops.append(self._task(self._staging_loop(), "publisher:staging"))
        self._listener = asyncio.create_task(
            listen(
                self.settings.database_url or "",
                CHANNEL,
                self.wake,
                lambda up: self.wake() if up else None,
                connect_timeout=self.settings.db_connect_timeout,
            ),
            name="publisher:listen",
        )
        self.endpoints.start()
        log.info(
            "publisher_started",
            sinks=list(self.sinks),
            owner=self.owner,
            in_flight={n: lane.capacity for n, lane in self.lanes.items()},
            lease_seconds=self.settings.publisher_lease_seconds,
        )

    def _task(self, coro: Any, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._watch)
        return task

    def _watch(self, task: asyncio.Task[None]) -> None:
        """A loop that ended with an error it does not expect (only database and sink-open
        errors are retried): logged with its traceback, and the whole publisher stops, so its
        heartbeat stops too and the supervisor (or the liveness probe) replaces the process
        instead of leaving a lane half-running. Its events stay pending: nothing is lost."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("publisher_task_failed", task=task.get_name(), exc_info=exc)
        if self.failure is None:
            self.failure = exc
            self._stopping.set()
            self.wake()

    async def stop(self, deadline: float) -> None:
        """Finish the deliveries in hand within `deadline` seconds, else hand them back (they
        stay pending and will be delivered again). Safe to call more than once: later calls
        wait for the first."""
        self.begin_stop(deadline)
        assert self._stop_task is not None
        await asyncio.shield(self._stop_task)

    def begin_stop(self, deadline: float) -> None:
        """Start stopping without waiting (shutdown overlaps it with draining HTTP requests)."""
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._stop(deadline))

    async def _stop(self, deadline: float) -> None:
        ends = time.monotonic() + deadline
        self._stopping.set()
        self.wake()
        if self._listener is not None:  # listens until cancelled: nothing to finish
            self._listener.cancel()
        await _finish([*self._loops, *filter(None, [self._listener])], 1.0)
        ending = asyncio.ensure_future(self.endpoints.stop(max(0.0, ends - time.monotonic())))
        deliveries = [t for lane in self.lanes.values() for t in lane.deliveries]
        unfinished = await _finish(deliveries, max(0.0, ends - time.monotonic()), cancel=False)
        abandoned: dict[str, list[int]] = {}
        for lane in self.lanes.values():
            for task, claimed in list(lane.deliveries.items()):
                if task in unfinished:
                    abandoned.setdefault(lane.name, []).extend(c.seq for c in claimed)
        for task in unfinished:
            task.cancel()
        await _finish(list(unfinished), 1.0)
        for lane in self.lanes.values():
            lane.outcome_ready.set()
        # The recorders write what arrived (give them a moment even past the deadline).
        await _finish(self._recorders, max(2.0, ends - time.monotonic()))
        if abandoned:
            await self._release(abandoned)
        await ending
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=2)
        log.info("publisher_stopped", abandoned=sum(len(v) for v in abandoned.values()))

    async def _release(self, abandoned: dict[str, list[int]]) -> None:
        try:
            async with self._acquire(timeout=2.0) as conn:
                for name, seqs in abandoned.items():
                    await outbox.release_leases(conn, name, self.owner, seqs)
        except DB_ERRORS as exc:  # the leases run out by themselves
            log.warning("publisher_release_failed", error=type(exc).__name__)

    def wake(self) -> None:
        for lane in self.lanes.values():
            lane.wake_all()
        self.endpoints.wake()

    # --- the database --------------------------------------------------------------------------
    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                assert self.settings.database_url is not None
                # One connection per claim loop; recorders and retention share them (their
                # statements are short). min_size=0: nothing to connect until needed.
                self._pool = await create_pool(
                    self.settings.database_url,
                    min_size=0,
                    max_size=max(1, len(self.sinks) * self.workers),
                    timeout=max(1.0, min(10.0, self.settings.db_connect_timeout)),
                    # Re-plan every claim: a plan cached while the outbox was empty keeps
                    # scanning badly once it grows (measured: the publisher fell 300k behind).
                    extra={
                        "plan_cache_mode": "force_custom_plan",
                        **session_settings(self.settings),
                    },
                )
            return self._pool

    @contextlib.asynccontextmanager
    async def _acquire(self, timeout: float | None = None) -> Any:
        pool = await self._get_pool()
        async with pool.acquire(timeout=timeout or self.settings.db_connect_timeout) as conn:
            yield conn

    # --- claim --------------------------------------------------------------------------------
    async def _open_sink(self, lane: _Lane) -> None:
        async with lane.open_lock:
            if not lane.opened:
                await lane.sink.open()
                lane.opened = True

    async def _claim_loop(self, lane: _Lane, worker: int) -> None:
        delay = _BACKOFF_FIRST
        settings = self.settings
        while not self._stopping.is_set():
            self.metrics.heartbeat(lane.name)  # a hung loop (or process) stops beating
            try:
                await self._open_sink(lane)  # before the claim: OPEN_ERRORS are the sink's
                free = lane.capacity - lane.in_flight
                if free <= 0:
                    lane.slot_freed.clear()
                    await self._wait(lane.slot_freed)
                    continue
                limit = min(settings.publisher_batch_size, free // lane.per_resource)
                if limit <= 0:  # batch mode: not room for a whole run yet
                    lane.slot_freed.clear()
                    await self._wait(lane.slot_freed)
                    continue
                reserved = limit * lane.per_resource
                lane.in_flight += reserved  # while the claim runs (other workers see it)
                try:
                    async with self._acquire() as conn:
                        claimed = await outbox.claim(
                            conn,
                            lane.name,
                            limit,
                            owner=self.owner,
                            lease_seconds=settings.publisher_lease_seconds,
                            max_attempts=settings.events_max_attempts,
                            start=lane.start,
                            per_resource=lane.per_resource,
                        )
                    lane.start = outbox.next_start(claimed)
                finally:
                    lane.in_flight -= reserved
                delay = _BACKOFF_FIRST
                if not claimed:
                    lane.wake[worker].clear()
                    await self._wait(lane.wake[worker], settings.publisher_poll_interval)
                    continue
                self._dispatch(lane, claimed)
            except DB_ERRORS as exc:
                log.warning(
                    "publisher_claim_failed",
                    sink=lane.name,
                    error=type(exc).__name__,
                    retry_in=delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
            except OPEN_ERRORS as exc:  # a sink that cannot open (bad config, NATS down, ...)
                log.error(
                    "publisher_sink_error", sink=lane.name, error=type(exc).__name__, retry_in=delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)

    def _dispatch(self, lane: _Lane, claimed: list[Claimed]) -> None:
        dead = [c for c in claimed if c.dead]
        if dead:
            self.metrics.dead_lettered(lane.name, len(dead))
            log.error(
                "publisher_dead_lettered",
                sink=lane.name,
                count=len(dead),
                reason="attempts used up without an outcome (the publisher kept stopping)",
                event_ids=[c.event.id for c in dead[:20]],
            )
        live = [c for c in claimed if not c.dead]
        if lane.per_resource > 1:  # batch mode: one call per resource, its run in order
            runs: dict[str, list[Claimed]] = {}
            for c in live:
                runs.setdefault(c.event.subject, []).append(c)
            units = list(runs.values())
        else:
            units = [live[i : i + lane.unit] for i in range(0, len(live), lane.unit)]
        for unit in units:
            lane.in_flight += len(unit)
            task = asyncio.create_task(self._deliver(lane, unit), name=f"deliver:{lane.name}")
            lane.deliveries[task] = unit

    async def _deliver(self, lane: _Lane, unit: list[Claimed]) -> None:
        try:
            try:
                outcomes = await lane.sink.deliver([c.event for c in unit])
            except Exception as exc:  # a sink must not raise; if one does, nothing is lost
                outcomes = [Outcome(ok=False, error=f"sink error ({type(exc).__name__})")]
            if len(outcomes) != len(unit):  # a broken sink must not lose events
                outcomes = [Outcome(ok=False, error="sink returned a wrong number of outcomes")]
                outcomes *= len(unit)
            lane.outcomes.extend(zip(unit, outcomes, strict=True))
            lane.outcome_ready.set()
        finally:
            lane.in_flight -= len(unit)
            lane.slot_freed.set()
            current = asyncio.current_task()
            if current is not None:
                lane.deliveries.pop(current, None)

    # --- record -------------------------------------------------------------------------------
    async def _record_loop(self, lane: _Lane) -> None:
        delay = _BACKOFF_FIRST
        while True:
            if not lane.outcomes:
                if self._stopping.is_set() and not lane.deliveries:
                    return
                lane.outcome_ready.clear()
                await lane.outcome_ready.wait()
                continue
            items, lane.outcomes = lane.outcomes, []
            delivered, failures = self._judge(items)
            try:
                async with self._acquire() as conn:
                    await outbox.record(conn, lane.name, self.owner, delivered, failures)
            except DB_ERRORS as exc:
                lane.outcomes[:0] = items  # keep them: written once the database answers
                log.warning(
                    "publisher_record_failed",
                    sink=lane.name,
                    error=type(exc).__name__,
                    outcomes=len(items),
                    retry_in=delay,
                )
                if self._stopping.is_set() and not lane.deliveries:
                    return  # shutting down: their leases run out, the events go out again
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            delay = _BACKOFF_FIRST
            if delivered:
                lane.wake_all()  # the next versions of these resources are claimable now
            self._report(lane.name, items, delivered, failures)

    def _judge(self, items: Sequence[tuple[Claimed, Outcome]]) -> tuple[list[int], list[Failure]]:
        """Delivered seqs and failures to record. One failed outcome shared by a resource's
        events (a batch-mode run: one request) gets one decision, its first (oldest) event's,
        so the run stays together: retried after the same delay, or dead-lettered together."""
        now = datetime.now(UTC)
        delivered: list[int] = []
        failures: list[Failure] = []
        decided: dict[tuple[str, int], Decision] = {}
        for c, o in items:
            if o.ok:
                delivered.append(c.seq)
                continue
            key = (c.event.subject, id(o))
            decision = decided.get(key)
            if decision is None:
                decision = decided[key] = self.policy.decide(o, c.attempts, c.created_at, now)
            failures.append(Failure(c.seq, decision.delay, o.error or "failed", decision.dead))
        return delivered, failures

    def _report(
        self,
        name: str,
        items: Sequence[tuple[Claimed, Outcome]],
        delivered: Sequence[int],
        failures: Sequence[Failure],
    ) -> None:
        self.metrics.delivered(name, len(delivered))
        if not failures:
            return
        dead = sum(1 for f in failures if f.dead)
        self.metrics.failed(name, len(failures) - dead)
        log.warning(
            "publisher_batch_failures",
            sink=name,
            failed=len(failures),
            dead_lettered=dead,
            event_ids=[c.event.id for c, o in items if not o.ok][:20],
            error=next((o.error for _, o in items if not o.ok), None),
        )
        if dead:
            self.metrics.dead_lettered(name, dead)
            log.error("publisher_dead_lettered", sink=name, count=dead)

    # --- waiting ------------------------------------------------------------------------------
    async def _wait(self, ev: asyncio.Event, timeout: float | None = None) -> None:
        """Until `ev`, the poll interval (or `timeout`) or stop."""
        stop = asyncio.ensure_future(self._stopping.wait())
        other = asyncio.ensure_future(ev.wait())
        try:
            await asyncio.wait(
                {stop, other},
                timeout=timeout or self.settings.publisher_poll_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop.cancel()
            other.cancel()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- the guard's staged holds ----------------------------------------------------------
    async def _staging_loop(self) -> None:
        """The guard's staged holds (SCIM_DEPROVISION_GUARD_STAGING_SECONDS): released once due,
        unless their organization's guard tripped meanwhile (provisioning/guard.py)."""
        while not self._stopping.is_set():
            try:
                async with self._acquire() as conn:
                    released = await guard_store.release_due(conn)
            except DB_ERRORS as exc:
                log.warning("publisher_staging_failed", error=type(exc).__name__)
                await self._sleep(5.0)
                continue
            if released:
                log.info("guard_staged_released", events=released)
                self.wake()
            await self._sleep(STAGING_EVERY)

    async def purge_once(self) -> int:
        """One retention pass now (events/retention.py); how many events were deleted."""
        return await self.retention.purge_once()


async def _finish(
    tasks: Sequence[asyncio.Task[Any]], timeout: float, *, cancel: bool = True
) -> set[asyncio.Task[Any]]:
    """Wait for `tasks` up to `timeout`; cancel (and await) the rest unless `cancel` is False.
    Returns the unfinished ones. Failures are logged, never raised."""
    if not tasks:
        return set()
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    if cancel:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("publisher_task_failed", task=task.get_name(), error=repr(task.exception()))
    return set(pending)
