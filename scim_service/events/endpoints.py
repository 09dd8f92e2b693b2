"""Delivery to webhook endpoints managed at run time (issue 26), an owned task of the publisher.

Nothing is written per endpoint on the write path: each endpoint reads the events table in the
pull API's total order (xid, seq; store/pull.py has the argument that no event ever appears
behind a position handed out) from its own position. One task per endpoint, so a dead or slow
endpoint delays no other. Each round, holding the endpoint's lease (one publisher at a time):

1. read the owed events that are due (per resource only the lowest version) and the next page
   of events after the position, keeping those the endpoint's filters select;
2. deliver with no transaction open, signed with the endpoint's own secret (the webhook sink's
   code: Standard Webhooks headers, no redirects, 2xx only; its resolver refuses forbidden
   addresses, events/ssrf.py). Per resource, events go one after the other; a resource that
   already owes an event at this endpoint, or whose event just failed, has its later events
   queued behind it (owed, not attempted), while other resources go on;
3. record in one transaction: owed events delivered are deleted, failed ones rescheduled on
   the retry schedule (or dead: attempts or age used up, a permanent refusal, a forbidden
   address), new failures and queued events owed, and the position moved past the page.

At least once: a publisher stopped between 2 and 3 leaves the position where it was, so the
events are sent again with the same ids. A paused endpoint keeps its position and owed events;
a deleted one's go with it (ON DELETE CASCADE). An endpoint that falls further behind than
event retention (SCIM_EVENTS_RETENTION_DAYS) loses the purged events (logged).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from scim_service.config import Settings
from scim_service.events import ssrf
from scim_service.events.retry import RetryPolicy
from scim_service.events.sinks.base import Outcome
from scim_service.events.sinks.webhook import WebhookSink
from scim_service.logs import get_logger
from scim_service.signing import SECRET_PREFIX, Signer
from scim_service.store import endpoints as store
from scim_service.store.db import DB_ERRORS, create_pool, session_settings
from scim_service.store.endpoints import Event, Failed, Leased, Owed
from scim_service.store.outbox import Outbound

log = get_logger("scim_service.endpoints")

PAGE = 100  # events read per round, and owed events attempted per round at most
REFRESH = 0.5  # seconds between looks for new, paused and deleted endpoints
_DB_ERRORS = DB_ERRORS


def endpoint_secret(key: str, endpoint_id: uuid.UUID) -> str:
    """The endpoint's `whsec_` secret: HMAC-SHA256 of its id under SCIM_WEBHOOK_ENDPOINT_KEY
    (so nothing secret is stored; the same key and id always give the same secret)."""
    raw = hmac.new(
        key.encode(), b"scim-service webhook endpoint " + endpoint_id.bytes, hashlib.sha256
    ).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def selects(event_types: Sequence[str] | None, org_ids: Any, event: Event) -> bool:
    """Whether an endpoint's filters take the event: organizations (None: all), and types
    exact or `user.*`-style prefixes (None: all)."""
    if org_ids is not None and event.org_id not in org_ids:
        return False
    if event_types is None:
        return True
    return any(
        event.type == t or (t.endswith(".*") and event.type.startswith(t[:-1])) for t in event_types
    )


class Metrics(Protocol):
    def delivered(self, sink: str, count: int) -> None: ...
    def failed(self, sink: str, count: int) -> None: ...
    def dead_lettered(self, sink: str, count: int) -> None: ...


class EndpointDelivery:
    """Every endpoint's delivery in this publisher process."""

    def __init__(self, settings: Settings, owner: str, metrics: Metrics) -> None:
        self.settings = settings
        self.owner = owner
        self.metrics = metrics
        self.policy = RetryPolicy.of(settings)
        self.allowed = ssrf.networks(settings.webhook_allowed_networks)
        self._pool: asyncpg.Pool | None = None
        self._stopping = asyncio.Event()
        self._manager: asyncio.Task[None] | None = None
        self._runners: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wakes: dict[uuid.UUID, asyncio.Event] = {}

    def wake(self) -> None:
        """A change committed (the publisher's NOTIFY): every idle endpoint reads at once."""
        for ev in self._wakes.values():
            ev.set()

    def start(self) -> None:
        self._manager = asyncio.create_task(self._manage(), name="publisher:endpoints")

    async def stop(self, deadline: float) -> None:
        """Rounds in hand get `deadline` seconds to record; past it they are cancelled (their
        events go out again, same ids). Leases are handed back."""
        self._stopping.set()
        tasks = [t for t in [self._manager, *self._runners.values()] if t is not None]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=max(0.1, deadline))
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=2)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            assert self.settings.database_url is not None
            self._pool = await create_pool(
                self.settings.database_url,
                min_size=0,
                max_size=2,
                timeout=max(1.0, min(10.0, self.settings.db_connect_timeout)),
                extra={"plan_cache_mode": "force_custom_plan", **session_settings(self.settings)},
            )
        return self._pool

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _manage(self) -> None:
        while not self._stopping.is_set():
            try:
                pool = await self._get_pool()
                async with pool.acquire() as conn:
                    ids = set(await store.active_ids(conn))
            except _DB_ERRORS as exc:
                log.warning("endpoints_list_failed", error=type(exc).__name__)
                await self._sleep(2.0)
                continue
            for endpoint_id in ids - set(self._runners):
                self._runners[endpoint_id] = asyncio.create_task(
                    self._run(endpoint_id), name=f"publisher:endpoint:{endpoint_id}"
                )
            for endpoint_id in set(self._runners) - ids:  # paused or deleted
                self._runners.pop(endpoint_id).cancel()
            for endpoint_id, task in list(self._runners.items()):
                if task.done():
                    self._runners.pop(endpoint_id)
            await self._sleep(REFRESH)

    async def _idle(self, wake: asyncio.Event, seconds: float) -> None:
        waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self._stopping.wait())}
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _run(self, endpoint_id: uuid.UUID) -> None:
        wake = self._wakes.setdefault(endpoint_id, asyncio.Event())
        sink: WebhookSink | None = None
        url = ""
        poll = min(1.0, self.settings.publisher_poll_interval)
        pool = await self._get_pool()
        try:
            while not self._stopping.is_set():
                try:
                    async with pool.acquire() as conn:
                        ep = await store.lease(
                            conn, endpoint_id, self.owner, self.settings.publisher_lease_seconds
                        )
                    if ep is None:
                        await self._sleep(poll)
                        continue
                    if sink is None or ep.url != url:
                        if sink is not None:
                            await sink.close()
                        sink, url = self._sink(ep), ep.url
                        await sink.open()
                    wake.clear()  # a change committing from now on wakes the next wait
                    busy = await self._round(pool, ep, sink)
                except _DB_ERRORS as exc:
                    log.warning(
                        "endpoint_round_failed", endpoint=str(endpoint_id), error=type(exc).__name__
                    )
                    await self._sleep(1.0)
                    continue
                if not busy:
                    await self._idle(wake, poll)
        finally:
            self._wakes.pop(endpoint_id, None)
            if sink is not None:
                with contextlib.suppress(Exception):
                    await sink.close()
            with contextlib.suppress(Exception):
                async with pool.acquire(timeout=2) as conn:
                    await store.release(conn, endpoint_id, self.owner)

    def _sink(self, ep: Leased) -> WebhookSink:
        key = self.settings.webhook_endpoint_key
        signer = Signer([endpoint_secret(key, ep.id)]) if key else None
        return WebhookSink(
            ep.url,
            signer,
            timeout=self.settings.webhook_timeout,
            concurrency=min(self.settings.webhook_concurrency, 16),
            resolver=ssrf.GuardedResolver(self.allowed),
        )

    async def _send(self, sink: WebhookSink, ep: Leased, event: Event) -> Outcome:
        refused = ssrf.check_host(sink_url(ep), self.allowed)
        if refused is not None:
            return Outcome(ok=False, permanent=True, error=refused)
        if self.settings.webhook_endpoint_key is None:
            return Outcome(ok=False, error="SCIM_WEBHOOK_ENDPOINT_KEY is not set: cannot sign")
        outbound = Outbound(
            seq=event.seq,
            id=str(event.id),
            type=event.type,
            org_id=str(event.org_id or ""),
            subject=str(event.subject),
            payload=event.payload,
            attempts=event.attempts,
        )
        outcomes = await sink.deliver([outbound])
        return outcomes[0] if outcomes else Outcome(ok=False, error="no outcome")

    def _judge(
        self, outcome: Outcome, attempts: int, created: datetime | None
    ) -> tuple[bool, float]:
        """(dead, seconds to the next attempt) after `attempts` failed attempts."""
        decision = self.policy.decide(outcome, attempts, created, datetime.now(UTC))
        return decision.dead, decision.delay

    async def _round(self, pool: asyncpg.Pool, ep: Leased, sink: WebhookSink) -> bool:
        """One round (module docstring); True when it found anything to do."""
        async with pool.acquire() as conn:
            due = await store.due(conn, ep.id, PAGE)
            page, nxt = await store.events_after(conn, ep.position, PAGE)
            fresh = [e for e in page if selects(ep.event_types, ep.org_ids, e)]
            waiting = await store.waiting_subjects(conn, ep.id, list({e.subject for e in fresh}))
            if not due and not fresh:
                # Nothing for this endpoint. Move past events it filtered out; with none read,
                # write nothing (the snapshot's xmin moves with every transaction anywhere,
                # this endpoint's own included: recording it would never let the loop idle).
                if page:
                    await store.record(
                        conn, ep.id, self.owner, position=nxt, delivered=(), failed=(), owed=()
                    )
                return len(page) >= PAGE
        chains: dict[uuid.UUID, list[Event]] = {}
        for e in fresh:
            chains.setdefault(e.subject, []).append(e)
        owed = [Owed(e, 0, 0.0, False, None) for s in waiting for e in chains.pop(s, [])]
        delivered: list[int] = []
        failed: list[Failed] = []
        started = time.monotonic()

        async def retry(e: Event) -> None:
            outcome = await self._send(sink, ep, e)
            if outcome.ok:
                delivered.append(e.seq)
                return
            dead, delay = self._judge(outcome, e.attempts + 1, e.created_at)
            failed.append(Failed(e.seq, delay, dead, outcome.error or "failed"))

        async def chain(events: list[Event]) -> None:
            for i, e in enumerate(events):
                outcome = await self._send(sink, ep, e)
                if outcome.ok:
                    continue
                dead, delay = self._judge(outcome, 1, None)
                owed.append(Owed(e, 1, delay, dead, outcome.error or "failed"))
                owed.extend(Owed(x, 0, 0.0, False, None) for x in events[i + 1 :])
                return

        await asyncio.gather(*(retry(e) for e in due), *(chain(c) for c in chains.values()))
        async with pool.acquire() as conn:
            kept = await store.record(
                conn, ep.id, self.owner, position=nxt, delivered=delivered, failed=failed, owed=owed
            )
        if not kept:
            log.warning("endpoint_lease_lost", endpoint=str(ep.id))
            return True
        succeeded = len(delivered) + len(fresh) - len(owed) > 0
        hours = self.settings.webhook_endpoint_disable_after_hours
        async with pool.acquire() as conn:
            disabled = await store.health(
                conn,
                ep.id,
                succeeded=succeeded,
                failed=bool(failed) or any(o.attempts for o in owed),
                disable_after=hours * 3600 if hours > 0 else None,
            )
        if disabled:  # the manager stops its runner (it is paused now)
            log.error(
                "endpoint_disabled",
                endpoint=str(ep.id),
                reason="every attempt failed for SCIM_WEBHOOK_ENDPOINT_DISABLE_AFTER_HOURS",
                hours=hours,
            )
        self._report(ep, len(fresh) + len(due), delivered, failed, owed, time.monotonic() - started)
        return True

    def _report(
        self,
        ep: Leased,
        attempted: int,
        delivered: Sequence[int],
        failed: Sequence[Failed],
        owed: Sequence[Owed],
        took: float,
    ) -> None:
        label = f"endpoint:{ep.id}"  # bounded: one per endpoint
        new_failures = [o for o in owed if o.attempts]
        ok = attempted - len(failed) - len(owed)
        self.metrics.delivered(label, max(0, ok))
        dead = sum(1 for f in failed if f.dead) + sum(1 for o in new_failures if o.dead)
        failures = len(failed) + len(new_failures)
        if failures:
            self.metrics.failed(label, failures - dead)
            log.warning(
                "endpoint_delivery_failures",
                endpoint=str(ep.id),
                failed=failures,
                dead_lettered=dead,
                queued=len(owed) - len(new_failures),
                error=next((f.error for f in failed), None)
                or next((o.error for o in new_failures), None),
                seconds=round(took, 3),
            )
        if dead:
            self.metrics.dead_lettered(label, dead)


def sink_url(ep: Leased) -> Any:
    from yarl import URL

    return URL(ep.url)
