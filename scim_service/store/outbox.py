"""The transactional outbox: writing events with a change, and claiming them for delivery.

Ordering — why each resource's events are delivered in order, with any number of publishers:

1. Every writer of a resource (user or group) holds that resource's row lock while it writes
   the change and its events, and numbers the events from the resource's own counter
   (`event_seq`, stored in the same row). So version n of a resource is committed before the
   transaction that creates version n+1 can even start writing: when n+1 is visible, n is too.
2. A delivery (sink, event) is a row of `outbox` until it is delivered (then the row is deleted).
   A publisher claims only rows for which no row of an *earlier* version of the same resource
   exists for that sink (`claim` in sql/queries/outbox.sql). Rows being delivered by another
   publisher are locked, not invisible, so they still block their successors; rows waiting for a
   retry or dead-lettered also block them ("later events wait behind it").
3. A claim is one short statement: it locks candidate rows (FOR UPDATE ... SKIP LOCKED, so two
   claims never take the same row), counts the attempt and writes a lease (owner, until) on
   them, and commits. Delivery then runs with no transaction open. A second short transaction
   records each outcome: delivered rows are deleted, failed ones get their next attempt time
   (or are dead-lettered) and lose their lease. A leased row is not claimable until its lease
   runs out, and it still exists, so it holds back its resource's later versions. A publisher
   that dies mid-delivery leaves leases that expire; the rows are then claimed again and re-sent
   with the same event id (at-least-once). Because the attempt is counted when the lease is
   taken, an event whose delivery kills the publisher every time is still dead-lettered after
   the maximum attempts (by the claim that would have exceeded them).

4. Rows held by the mass-deprovisioning guard (`held`, provisioning/guard.py) are not claimed
   until an administrator releases them; they exist, so like every row above they hold back
   their resource's later versions, and a release hands them back in version order.

So no global cursor is needed, and ids taken out of commit order (bigserial) cannot make a
publisher skip or reorder anything: the per-resource version is the only order that matters.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from scim_service.store.db import QUERIES as Q

CHANNEL = "scim_outbox"
"""The outbox trigger's NOTIFY channel (migration 0004): the publisher and the pull API's long
polls LISTEN on it to wake when events commit."""


class EventRows(msgspec.Struct, frozen=True, kw_only=True):
    """A change's events as the outbox stores them: encoded, with their ids, resource
    versions, time and sinks (built by events/emitter.py). They are written by the change's
    own statement (each write-with-events query ends with outbox.sql's `event_rows`) or, for a
    change that touched several resources, by `insert_events`."""

    ids: list[uuid.UUID]
    org_id: uuid.UUID
    subjects: list[uuid.UUID]
    resource_types: list[str]
    versions: list[int]
    types: list[str]
    time: datetime
    payloads: list[bytes]
    sinks: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.ids)

    def params(self) -> list[Any]:
        """The nine parameters of `event_rows`, in its order."""
        n = len(self.ids)
        return [
            self.ids,
            [self.org_id] * n,
            self.subjects,
            self.resource_types,
            self.versions,
            self.types,
            [self.time] * n,
            self.payloads,
            list(self.sinks),
        ]


class Outbound(msgspec.Struct, frozen=True, kw_only=True):
    """One event handed to a sink (events/sinks/base.py): its identity plus the exact bytes to
    send."""

    seq: int
    """Outbox/event sequence number (internal)."""
    id: str
    """CloudEvents `id` (a UUID string); also the `webhook-id` and the `Nats-Msg-Id`."""
    type: str
    """CloudEvents `type`, e.g. "user.provisioned"."""
    org_id: str
    subject: str
    """CloudEvents `subject`: the resource id."""
    payload: bytes
    """The exact JSON bytes of the CloudEvent (structured mode) to send."""
    attempts: int = 0
    """Previous delivery attempts."""


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery leased by `claim`: the event for the sink and the outbox's bookkeeping."""

    event: Outbound
    attempts: int
    """Attempts counted so far, this one included (counted when the lease was taken)."""
    created_at: datetime
    dead: bool = False
    """Dead-lettered by this claim: its attempts were used up without an outcome recorded."""

    @property
    def seq(self) -> int:
        return self.event.seq


class Failure(msgspec.Struct, frozen=True):
    """A failed delivery to record: retry after `delay` seconds, or dead-letter."""

    seq: int
    delay: float
    error: str
    dead: bool


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    sink: str
    id: uuid.UUID
    type: str
    org_id: uuid.UUID
    subject: uuid.UUID
    resource_version: int
    attempts: int
    last_error: str | None
    dead_at: datetime | None
    time: datetime


class SinkStats(msgspec.Struct, frozen=True, kw_only=True):
    sink: str
    pending: int
    oldest_age: float
    dead: int
    leased: int = 0
    """Being delivered right now (a live lease)."""
    held: int = 0
    """Held by the mass-deprovisioning guard until an administrator releases them."""
    configured: bool = True
    """False: no process of this configuration serves the sink (set by the service layer)."""


async def insert_events(conn: asyncpg.Connection, rows: EventRows) -> None:
    """Insert events and one outbox row per sink, in one statement on the caller's
    connection — inside the caller's transaction."""
    if rows.count:
        await conn.execute(Q["insert_events"], *rows.params())


FIRST_SUBJECT = uuid.UUID(int=0)


def next_start(claimed: Sequence[Claimed]) -> uuid.UUID:
    """Where the next claim of this sink starts: just past the last subject this one took."""
    if not claimed:
        return FIRST_SUBJECT
    last = max(uuid.UUID(c.event.subject) for c in claimed)
    return uuid.UUID(int=(last.int + 1) % (1 << 128))


async def claim(
    conn: asyncpg.Connection,
    sink: str,
    limit: int,
    *,
    owner: str,
    lease_seconds: float,
    max_attempts: int,
    start: uuid.UUID = FIRST_SUBJECT,
    per_resource: int = 1,
) -> list[Claimed]:
    """Lease up to `limit` claimable events of `sink` for `owner`: the heads of the resources'
    queues from subject `start` on, then (if that found fewer) from the first subject; one
    short statement each. The caller moves `start` on (`next_start`) so every resource's turn
    comes.

    With `per_resource` > 1 (batch mode), `limit` counts resources, and each claimed head
    brings the versions right behind it that could be claimed, up to `per_resource` events of
    the resource in all (a run: see `claim` in outbox.sql); the result is in event order, so a
    resource's run is in version order."""
    args = (sink, limit, owner, lease_seconds, max_attempts)
    rows = await conn.fetch(Q["claim"], *args, start, per_resource)
    heads = len({r["subject"] for r in rows})
    if heads < limit and start != FIRST_SUBJECT:
        more = await conn.fetch(
            Q["claim"], sink, limit - heads, *args[2:], FIRST_SUBJECT, per_resource
        )
        seen = {r["event_seq"] for r in rows}
        rows = sorted(
            [*rows, *(r for r in more if r["event_seq"] not in seen)], key=lambda r: r["event_seq"]
        )
    return [
        Claimed(
            event=Outbound(
                seq=r["event_seq"],
                id=str(r["id"]),
                type=r["type"],
                org_id=str(r["org_id"]),
                subject=str(r["subject"]),
                payload=r["payload"],
                attempts=r["attempts"] - 1,
            ),
            attempts=r["attempts"],
            created_at=r["created_at"],
            dead=r["dead"],
        )
        for r in rows
    ]


async def record(
    conn: asyncpg.Connection,
    sink: str,
    owner: str,
    delivered: Sequence[int],
    failures: Sequence[Failure],
) -> None:
    """Record outcomes in one short transaction: delete delivered rows, schedule or dead-letter
    failed ones (only those `owner` still leases)."""
    async with conn.transaction():
        if delivered:
            await conn.execute(Q["delivered"], sink, list(delivered))
        if failures:
            await conn.execute(
                Q["failed"],
                sink,
                [f.seq for f in failures],
                [f.delay for f in failures],
                [f.error[:500] for f in failures],
                [f.dead for f in failures],
                owner,
            )


async def release_leases(
    conn: asyncpg.Connection, sink: str, owner: str, seqs: Sequence[int]
) -> None:
    if seqs:
        await conn.execute(Q["release_leases"], sink, owner, list(seqs))


async def dead_letters(
    conn: asyncpg.Connection, sink: str | None, limit: int = 500
) -> list[DeadLetter]:
    return [DeadLetter(**dict(r)) for r in await conn.fetch(Q["dead_letters"], sink, limit)]


async def retry_dead(
    conn: asyncpg.Connection, sink: str | None, event_ids: Sequence[uuid.UUID] | None
) -> list[uuid.UUID]:
    rows = await conn.fetch(
        Q["retry_dead"], sink, list(event_ids) if event_ids is not None else None
    )
    return [r["id"] for r in rows]


async def event_exists(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    return await conn.fetchval(Q["event_seq_of"], event_id) is not None


async def replay(
    conn: asyncpg.Connection,
    sinks: Sequence[str],
    *,
    since: datetime | None,
    from_event: uuid.UUID | None,
    org_id: uuid.UUID | None = None,
) -> int:
    rows = await conn.fetch(Q["replay"], since, from_event, list(sinks), org_id)
    return len(rows)


async def purge_delivered(conn: asyncpg.Connection, before: datetime, batch: int = 5000) -> int:
    return int(await conn.fetchval(Q["purge_delivered"], before, batch))


async def stats(conn: asyncpg.Connection) -> list[SinkStats]:
    return [
        SinkStats(
            sink=r["sink"],
            pending=r["pending"],
            oldest_age=float(r["oldest_age"]),
            dead=r["dead"],
            leased=r["leased"],
            held=r["held"],
        )
        for r in await conn.fetch(Q["outbox_stats"])
    ]


async def discard_sink(conn: asyncpg.Connection, sink: str) -> int:
    status = await conn.execute(Q["discard_sink"], sink)
    return int(status.split()[-1])


async def move_sink(conn: asyncpg.Connection, source: str, target: str) -> int:
    status = await conn.execute(Q["move_sink"], source, target)
    return int(status.split()[-1])
