"""Webhook endpoints in the database (issue 26): settings, positions and the events each one
still owes (sql/queries/endpoints.sql). Delivery is events/endpoints.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from scim_service.logs import get_logger
from scim_service.store.db import QUERIES as Q
from scim_service.store.pull import Position

log = get_logger("scim_service.endpoints")


class EndpointRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str] | None
    org_ids: list[uuid.UUID] | None
    paused: bool
    position: Position
    """Every event up to it is delivered, filtered out, or owed (`pending`, `dead`)."""
    failing_since: datetime | None = None
    disabled_reason: str | None = None
    pending: int = 0
    dead: int = 0
    created_at: datetime
    updated_at: datetime


class Leased(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    url: str
    event_types: tuple[str, ...] | None
    org_ids: frozenset[uuid.UUID] | None
    position: Position


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """An event to attempt at an endpoint: new (after its position) or owed."""

    seq: int
    id: uuid.UUID
    subject: uuid.UUID
    version: int
    payload: bytes
    attempts: int = 0
    """Attempts made before this one (owed events)."""
    created_at: datetime | None = None
    org_id: uuid.UUID | None = None
    type: str = ""
    position: Position | None = None


class Owed(msgspec.Struct, frozen=True):
    event: Event
    attempts: int
    delay: float
    dead: bool
    error: str | None


class Failed(msgspec.Struct, frozen=True):
    seq: int
    delay: float
    dead: bool
    error: str


def _info(row: asyncpg.Record) -> EndpointRow:
    keys = set(row.keys())
    return EndpointRow(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        event_types=list(row["event_types"]) if row["event_types"] is not None else None,
        org_ids=list(row["org_ids"]) if row["org_ids"] is not None else None,
        paused=row["paused"],
        position=Position(int(row["cursor_xid"]), row["cursor_seq"]),
        failing_since=row["failing_since"] if "failing_since" in keys else None,
        disabled_reason=row["disabled_reason"] if "disabled_reason" in keys else None,
        pending=row["pending"] if "pending" in keys else 0,
        dead=row["dead"] if "dead" in keys else 0,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    url: str,
    description: str,
    event_types: Sequence[str] | None,
    org_ids: Sequence[uuid.UUID] | None,
    start: Position,
) -> EndpointRow:
    row = await conn.fetchrow(
        Q["endpoint_insert"],
        url,
        description,
        list(event_types) if event_types is not None else None,
        list(org_ids) if org_ids is not None else None,
        str(start.xid),
        start.seq,
    )
    assert row is not None
    return _info(row)


async def list_all(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID | None = None
) -> list[EndpointRow]:
    return [_info(r) for r in await conn.fetch(Q["endpoint_list"], endpoint_id)]


async def update(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    all_types: bool = False,
    org_ids: Sequence[uuid.UUID] | None = None,
    all_orgs: bool = False,
    paused: bool | None = None,
) -> bool:
    found = await conn.fetchval(
        Q["endpoint_update"],
        endpoint_id,
        url,
        description,
        list(event_types) if event_types is not None else None,
        list(org_ids) if org_ids is not None else None,
        all_types,
        all_orgs,
        paused,
    )
    return found is not None


async def delete(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> bool:
    return await conn.fetchval(Q["endpoint_delete"], endpoint_id) is not None


async def retry_dead(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> int:
    status = await conn.execute(Q["endpoint_retry_dead"], endpoint_id)
    return int(status.split()[-1])


async def active_ids(conn: asyncpg.Connection) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(Q["endpoint_ids"])]


async def lease(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, owner: str, seconds: float
) -> Leased | None:
    row = await conn.fetchrow(Q["endpoint_lease"], endpoint_id, owner, seconds)
    if row is None:
        return None
    return Leased(
        id=row["id"],
        url=row["url"],
        event_types=tuple(row["event_types"]) if row["event_types"] is not None else None,
        org_ids=frozenset(row["org_ids"]) if row["org_ids"] is not None else None,
        position=Position(int(row["cursor_xid"]), row["cursor_seq"]),
    )


async def release(conn: asyncpg.Connection, endpoint_id: uuid.UUID, owner: str) -> None:
    await conn.execute(Q["endpoint_release"], endpoint_id, owner)


async def events_after(
    conn: asyncpg.Connection, after: Position, limit: int
) -> tuple[list[Event], Position]:
    """Events after `after` in the pull API's order, and where the next read starts: the last
    event's position when the page is full, else past everything finished (the read's xmin).
    One REPEATABLE READ snapshot, as store/pull.py `read` (its docstring has the argument)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow(Q["pull_head"])
        assert head is not None
        xmin = int(head["xmin"])
        if head["purged_xid"] is not None and after < Position(
            int(head["purged_xid"]), head["purged_seq"]
        ):
            log.error(
                "endpoint_behind_retention",
                position=f"{after.xid}.{after.seq}",
                hint="events older than SCIM_EVENTS_RETENTION_DAYS were purged before delivery",
            )
        rows = await conn.fetch(
            Q["endpoint_events_after"], str(after.xid), after.seq, str(xmin), limit
        )
    events = [
        Event(
            seq=r["seq"],
            id=r["id"],
            subject=r["subject"],
            version=r["resource_version"],
            payload=bytes(r["payload"]),
            org_id=r["org_id"],
            type=r["type"],
            position=Position(int(r["xid"]), r["seq"]),
        )
        for r in rows
    ]
    if len(rows) >= limit:
        assert events[-1].position is not None
        return events, events[-1].position
    return events, max(after, Position(xmin, 0))


async def waiting_subjects(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, subjects: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    if not subjects:
        return set()
    rows = await conn.fetch(Q["endpoint_waiting_subjects"], endpoint_id, list(subjects))
    return {r["subject"] for r in rows}


async def due(conn: asyncpg.Connection, endpoint_id: uuid.UUID, limit: int) -> list[Event]:
    rows = await conn.fetch(Q["endpoint_due"], endpoint_id, limit)
    return [
        Event(
            seq=r["seq"],
            id=r["event_id"],
            subject=r["subject"],
            version=r["resource_version"],
            payload=bytes(r["payload"]),
            attempts=r["attempts"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def record(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    owner: str,
    *,
    position: Position,
    delivered: Sequence[int],
    failed: Sequence[Failed],
    owed: Sequence[Owed],
) -> bool:
    """One transaction: owed events settled or rescheduled, new ones owed, the position moved.
    False (nothing written) when this publisher no longer holds the endpoint."""
    async with conn.transaction():
        if await conn.fetchval(Q["endpoint_held"], endpoint_id, owner) is None:
            return False
        await conn.execute(
            Q["endpoint_advance"], endpoint_id, owner, str(position.xid), position.seq
        )
        if delivered:
            await conn.execute(Q["endpoint_settle"], endpoint_id, list(delivered))
        if failed:
            await conn.execute(
                Q["endpoint_failed"],
                endpoint_id,
                [f.seq for f in failed],
                [f.delay for f in failed],
                [f.dead for f in failed],
                [f.error for f in failed],
            )
        if owed:
            await conn.execute(
                Q["endpoint_owe"],
                endpoint_id,
                [o.event.seq for o in owed],
                [o.event.id for o in owed],
                [o.event.subject for o in owed],
                [o.event.version for o in owed],
                [o.event.payload for o in owed],
                [o.attempts for o in owed],
                [o.delay for o in owed],
                [o.dead for o in owed],
                [o.error for o in owed],
            )
    return True


async def health(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    succeeded: bool,
    failed: bool,
    disable_after: float | None,
) -> bool:
    """Track since when every attempt failed; True when this call paused the endpoint."""
    return bool(
        await conn.fetchval(Q["endpoint_health"], endpoint_id, succeeded, failed, disable_after)
    )
