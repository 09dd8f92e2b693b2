"""The mass-deprovisioning guard's rows: the organization's guard columns and the held outbox
deliveries (see provisioning/guard.py for the rules). Functions take a connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from scim_service.store.db import QUERIES as Q


async def lock_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    """The organization's guard settings and state, under its row lock (NO KEY UPDATE)."""
    return await conn.fetchrow(Q["guard_lock_org"], org_id)


async def hold_events(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    users: Sequence[uuid.UUID] | None,
    versions: Sequence[int] | None,
) -> None:
    """Hold the organization's queued user.deprovisioned deliveries: these (user, version)
    events, or all of them (None)."""
    await conn.execute(
        Q["guard_hold_events"],
        org_id,
        None if users is None else list(users),
        None if versions is None else list(versions),
    )


async def count_deprovisioned(conn: asyncpg.Connection, org_id: uuid.UUID, since: datetime) -> int:
    return int(await conn.fetchval(Q["guard_count_deprovisioned"], org_id, since))


async def count_active(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    return int(await conn.fetchval(Q["guard_count_active"], org_id))


async def trip(
    conn: asyncpg.Connection, org_id: uuid.UUID, deprovisioned: int, base: int
) -> asyncpg.Record:
    """Mark the guard tripped; the organization's next event version and the trip time."""
    row = await conn.fetchrow(Q["guard_trip"], org_id, deprovisioned, base)
    assert row is not None
    return row


async def state(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(Q["guard_state"], org_id)


async def held(conn: asyncpg.Connection, org_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """The held deliveries, one row per event, in delivery order."""
    return list(await conn.fetch(Q["guard_held"], org_id, limit))


async def held_count(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    return int(await conn.fetchval(Q["guard_held_count"], org_id))


async def reset(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """Re-arm (takes the organization's row lock); False: no such organization."""
    status: str = await conn.execute(Q["guard_reset"], org_id)
    return status.split()[-1] != "0"


async def release(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[int]:
    """Hand the held deliveries back to the publisher; their event numbers (one per sink)."""
    return [r["event_seq"] for r in await conn.fetch(Q["guard_release"], org_id)]


async def discard(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[int]:
    """Delete the held deliveries; their event numbers (one per sink)."""
    return [r["event_seq"] for r in await conn.fetch(Q["guard_discard"], org_id)]


async def configure(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    enabled: bool | None,
    percent: float | None,
    min_users: int | None,
    window_minutes: float | None,
    reset: bool,
) -> bool:
    """Store the organization's overrides (None keeps one; `reset` clears all); False: no
    such organization."""
    found = await conn.fetchval(
        Q["guard_configure"], org_id, enabled, percent, min_users, window_minutes, reset
    )
    return found is not None


async def tripped_orgs(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(Q["guard_tripped_orgs"]))
