"""Reading events in one total order (the pull API) and snapshots of a directory (bootstrap).

Why no event ever appears behind a position already handed out:

Event sequence numbers (bigserial) are taken before commit, and transactions commit out of
order, so "seq > last seen" would skip an event whose transaction commits after a later one.
Every event records the id of the transaction that wrote it (`xid`, migration 0008; raised
to the previous event of the same resource's when that is larger, so each resource's events
stay in version order even when a transaction got its id before it waited for a younger one's
row lock), and events are ordered by (xid, seq). A read serves only events with xid below its
snapshot's xmin: every transaction below xmin has finished (committed or rolled back), and
every transaction still running or yet to start has an id of at least xmin, so the set of
events below xmin is final. A position handed out is always below the xmin of the read that
produced it, and xmin never goes back, so any event that becomes visible later sorts after it.
The price: an event becomes readable only
once every transaction older than its own has finished (normally milliseconds; a transaction
left open anywhere on the PostgreSQL server holds the stream back until it ends, which
`db_idle_in_transaction_timeout` and `db_statement_timeout` bound for the service's own).

Retention deletes old events (publisher `purge_once`); the highest position it deleted is kept
in `events_purged`, and a read from an older position is refused (`Expired`) with that position
as the oldest one still complete, never a silent jump. Everything is read in one REPEATABLE
READ transaction so the check and the page share one snapshot.

A snapshot page (users, groups, members) is a keyset page by id; `head()` taken before the
first page gives the position after which every change not in the pages is found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from scim_service.store.db import QUERIES as Q


class Position(msgspec.Struct, frozen=True, order=True):
    """A place in the event order: after every event of (xid, seq) or before."""

    xid: int
    seq: int


START = Position(0, 0)


class Expired(Exception):
    """The requested position is older than retention; `oldest` is the oldest complete one."""

    def __init__(self, oldest: Position) -> None:
        super().__init__(f"position older than {oldest}")
        self.oldest = oldest


class Page(msgspec.Struct, frozen=True, kw_only=True):
    payloads: list[bytes]
    """The events, encoded exactly as they are pushed (CloudEvents JSON)."""
    next: Position
    """Where to continue: the last event's position, or past everything read when the page
    is not full (so filtered-out events are not scanned again)."""
    full: bool
    held_back: bool
    """Committed events exist that a still-running older transaction holds back."""
    xmin: int
    """The read's snapshot xmin: held-back events become readable once it has moved on."""


async def _head(conn: asyncpg.Connection) -> tuple[int, Position | None, bool]:
    row = await conn.fetchrow(Q["pull_head"])
    assert row is not None
    purged = (
        Position(int(row["purged_xid"]), row["purged_seq"])
        if row["purged_xid"] is not None
        else None
    )
    return int(row["xmin"]), purged, bool(row["held_back"])


async def read(
    conn: asyncpg.Connection,
    after: Position | None,
    limit: int,
    *,
    org_id: uuid.UUID | None = None,
    types: Sequence[str] | None = None,
    until: Position | None = None,
) -> Page:
    """Events after `after` (None: from the oldest available) in (xid, seq) order, none past
    `until` (a position handed out earlier: the page then ends exactly there)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        xmin, purged, held_back = await _head(conn)
        if after is None:
            after = purged or START
        elif purged is not None and after < purged:
            raise Expired(purged)
        args: list[Any] = [
            str(after.xid),
            after.seq,
            str(xmin),
            limit,
            list(types) if types else None,
            str(until.xid) if until is not None else None,
            until.seq if until is not None else None,
        ]
        if org_id is None:
            rows = await conn.fetch(Q["pull_events"], *args)
        else:
            rows = await conn.fetch(Q["pull_org_events"], *args, org_id)
    full = len(rows) >= limit
    if full:
        nxt = Position(int(rows[-1]["xid"]), rows[-1]["seq"])
    else:
        end = Position(xmin, 0) if until is None else min(Position(xmin, 0), until)
        nxt = max(after, end)
    return Page(
        payloads=[r["payload"] for r in rows], next=nxt, full=full, held_back=held_back, xmin=xmin
    )


async def current_xmin(conn: asyncpg.Connection) -> int:
    xmin, _purged, _held = await _head(conn)
    return xmin


async def head(conn: asyncpg.Connection) -> Position:
    """The current end of the readable order: every event after it is of a transaction that
    had not finished when this was asked, so every change not yet visible now comes after it."""
    xmin, _purged, _held = await _head(conn)
    return Position(xmin, 0)


class Digest(msgspec.Struct, frozen=True, kw_only=True):
    digest: str
    users: int
    groups: int
    position: Position
    """Every event at or before it is reflected in `digest`, none after it."""


async def digest(conn: asyncpg.Connection, org_id: uuid.UUID) -> Digest | None:
    """The organization's state digest and the position it is exact at, read in one REPEATABLE
    READ snapshot; None when that snapshot sees committed events above its xmin (a younger
    transaction committed while an older one still runs), so no position describes it: the
    caller reads again. Otherwise the events it sees are exactly those below xmin."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        xmin, _purged, held_back = await _head(conn)
        if held_back:
            return None
        row = await conn.fetchrow(Q["org_digest"], org_id, None, org_id, None)
    assert row is not None
    return Digest(
        digest=row["digest"], users=row["users"], groups=row["groups"], position=Position(xmin, 0)
    )


async def users_page(
    conn: asyncpg.Connection, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["snapshot_users"], org_id, after, limit))


async def groups_page(
    conn: asyncpg.Connection, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["snapshot_groups"], org_id, after, limit))


async def members_page(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[int, list[uuid.UUID]] | None:
    """The group's current resourceversion and one page of member ids (None: no such group),
    read in one snapshot; a group the guard holds as it was before its held changes."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        group = await conn.fetchrow(Q["snapshot_group"], org_id, group_id)
        if group is None:
            return None
        query = "snapshot_held_members" if group["held"] else "snapshot_members"
        rows = await conn.fetch(Q[query], group_id, after, limit)
    return group["event_seq"], [r["user_id"] for r in rows]
