"""The mass-deprovisioning guard's rows: the organization's guard columns, the reductions it
counts, the holds (a resource's held versions and its image before them) and the decisions
(see provisioning/guard.py for the rules, sql/queries/guard.sql for the lock order).
Functions take a connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from scim_service.store.db import QUERIES as Q

_json = msgspec.json.Encoder()


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """A held resource, as a decision reads it (locked)."""

    subject: uuid.UUID
    resource_type: str
    first_version: int
    image: dict[str, Any]
    held_events: int


async def lock_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    """The organization's guard settings and state, under its row lock (NO KEY UPDATE)."""
    return await conn.fetchrow(Q["guard_lock_org"], org_id)


async def record_reductions(
    conn: asyncpg.Connection, org_id: uuid.UUID, users: Sequence[tuple[uuid.UUID, bool]]
) -> None:
    """One row per (user who lost access, deprovisioned or only removed from a group)."""
    if users:
        await conn.execute(
            Q["guard_record_reductions"], org_id, [u for u, _ in users], [d for _, d in users]
        )


async def count_reductions(
    conn: asyncpg.Connection, org_id: uuid.UUID, since: datetime
) -> tuple[int, int]:
    """(distinct users who lost access, of whom deprovisioned) since `since`."""
    row = await conn.fetchrow(Q["guard_count_reductions"], org_id, since)
    assert row is not None
    return int(row["affected"]), int(row["deprovisioned"])


async def count_active(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    return int(await conn.fetchval(Q["guard_count_active"], org_id))


async def hold(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    holds: Sequence[tuple[uuid.UUID, str, int, dict[str, Any]]],
    release_at: datetime | None,
) -> set[uuid.UUID]:
    """Hold (subject, resource type, first version, image) resources not yet held; the
    subjects newly held."""
    rows = await conn.fetch(
        Q["guard_hold"],
        org_id,
        [h[0] for h in holds],
        [h[1] for h in holds],
        [h[2] for h in holds],
        [_json.encode(h[3]).decode() for h in holds],
        release_at,
    )
    return {r["subject"] for r in rows}


async def hold_members(
    conn: asyncpg.Connection,
    group_id: uuid.UUID,
    added: Sequence[uuid.UUID],
    removed: Sequence[uuid.UUID],
) -> None:
    """Keep a newly held group's members as they were before this transaction."""
    await conn.execute(Q["guard_hold_members"], group_id, list(added), list(removed))
    await conn.execute(Q["guard_hold_member_count"], group_id)


async def hold_outbox(conn: asyncpg.Connection, event_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(Q["guard_hold_outbox"], list(event_ids))


async def trip(
    conn: asyncpg.Connection, org_id: uuid.UUID, affected: int, base: int
) -> asyncpg.Record:
    """Mark the guard tripped (staged holds now wait for a decision); the organization's next
    event version and the trip time."""
    row = await conn.fetchrow(Q["guard_trip"], org_id, affected, base)
    assert row is not None
    return row


async def state(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(Q["guard_state"], org_id)


async def held(conn: asyncpg.Connection, org_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """The held events, in delivery order."""
    return list(await conn.fetch(Q["guard_held"], org_id, limit))


async def held_count(conn: asyncpg.Connection, org_id: uuid.UUID) -> tuple[int, int]:
    """(held events, held resources)."""
    row = await conn.fetchrow(Q["guard_held_count"], org_id)
    assert row is not None
    return int(row["events"]), int(row["resources"])


async def lock_held_resources(conn: asyncpg.Connection, org_id: uuid.UUID) -> set[uuid.UUID]:
    """A decision's first step: the row locks of every held resource that still exists (groups
    in id order, then users: the writers' order); the subjects held when it looked."""
    rows = await conn.fetch(Q["guard_peek_holds"], org_id)
    groups = [r["subject"] for r in rows if r["resource_type"] == "Group"]
    users = [r["subject"] for r in rows if r["resource_type"] == "User"]
    if groups:
        await conn.fetch(Q["guard_lock_groups"], groups)
    if users:
        await conn.fetch(Q["guard_lock_users"], users)
    return {r["subject"] for r in rows}


async def lock_holds(
    conn: asyncpg.Connection, org_id: uuid.UUID, due_by: datetime | None = None
) -> list[Hold]:
    """The holds a decision takes (all, or the staged ones due by `due_by`), locked."""
    rows = await conn.fetch(Q["guard_lock_holds"], org_id, due_by)
    return [
        Hold(
            subject=r["subject"],
            resource_type=r["resource_type"],
            first_version=r["first_version"],
            image=r["image"],  # jsonb: decoded by the pool's codec (store/db.py)
            held_events=int(r["held_events"]),
        )
        for r in rows
    ]


def _columns(holds: Sequence[Hold]) -> tuple[list[uuid.UUID], list[int]]:
    return [h.subject for h in holds], [h.first_version for h in holds]


async def release(conn: asyncpg.Connection, holds: Sequence[Hold]) -> int:
    """Give the held events their new place in the pull order, hand their deliveries back,
    drop the holds; the deliveries handed back."""
    subjects, versions = _columns(holds)
    await conn.execute(Q["guard_release_events"], subjects, versions)
    handed = await conn.fetch(Q["guard_release_outbox"], subjects)
    await conn.execute(Q["guard_drop_holds"], subjects)
    return len(handed)


async def name_conflicts(
    conn: asyncpg.Connection, org_id: uuid.UUID, holds: Sequence[Hold]
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["guard_name_conflicts"], org_id, [h.subject for h in holds]))


async def restore(conn: asyncpg.Connection, org_id: uuid.UUID, holds: Sequence[Hold]) -> int:
    """Restore the held resources to their images, delete their held events and deliveries,
    drop the holds; the events deleted."""
    for kind, query in (("User", "guard_restore_users"), ("Group", "guard_restore_groups")):
        part = [h for h in holds if h.resource_type == kind]
        if part:
            await conn.execute(
                Q[query],
                org_id,
                [h.subject for h in part],
                [_json.encode(h.image).decode() for h in part],
                [h.first_version for h in part],
                [h.held_events for h in part],
            )
    groups = [h.subject for h in holds if h.resource_type == "Group"]
    if groups:
        await conn.execute(Q["guard_clear_members"], groups)
        await conn.execute(Q["guard_restore_members"], groups)
    subjects, versions = _columns(holds)
    dropped = await conn.fetch(Q["guard_drop_events"], subjects, versions)
    await conn.execute(Q["guard_drop_holds"], subjects)
    return len(dropped)


async def reset(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    """Re-arm (the caller holds the organization's row lock)."""
    await conn.execute(Q["guard_reset"], org_id)


async def decided(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    action: str,
    tripped_at: datetime | None,
    resources: int,
    events: int,
) -> asyncpg.Record:
    """Record a decision; the organization's next event version and the decision's time."""
    row = await conn.fetchrow(Q["guard_decided"], org_id, action, tripped_at, resources, events)
    assert row is not None
    return row


async def release_due(conn: asyncpg.Connection, limit: int = 100) -> int:
    """Staging: release the staged holds that are due, of organizations whose guard has not
    tripped (the publisher calls this every second); the events released. Changes no resource
    row, so it takes the organization's lock and the holds only (guard.sql)."""
    total = 0
    for r in await conn.fetch(Q["guard_due_orgs"], limit):
        async with conn.transaction():
            row = await lock_org(conn, r["org_id"])
            if row is None or row["guard_tripped_at"] is not None:
                continue  # tripped meanwhile: the holds wait for a decision
            holds = await lock_holds(conn, r["org_id"], datetime.now(UTC))
            if holds:
                await release(conn, holds)
                total += sum(h.held_events for h in holds)
    return total


async def prune_reductions(conn: asyncpg.Connection) -> int:
    status: str = await conn.execute(Q["guard_prune_reductions"])
    return int(status.split()[-1])


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
