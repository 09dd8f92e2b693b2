"""Role mappings per organization in PostgreSQL (see provisioning/roles.py). Functions take a
connection and the org id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from scim_service.store.db import QUERIES as Q
from scim_service.store.db import fetch_batched

# Rows decoded per round trip of a big answer (a mapping change reads every user's role): the
# driver parses each batch on the event loop, so other requests run in between.
BATCH = 2_000


async def settings(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(Q["role_settings"], org_id)


async def effective_role_row(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> asyncpg.Record | None:
    """One user's role, rank, the organization's role source and default role."""
    return await conn.fetchrow(Q["effective_roles"], org_id, [user_id], None, False)


async def mappings(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """The mappings in order, each with the group it names now (group_id NULL: none)."""
    return list(await conn.fetch(Q["role_mappings"], org_id))


async def lock(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """Lock the organization's role settings (created if absent); False: no such org."""
    return await conn.fetchval(Q["lock_role_settings"], org_id) is not None


async def replace(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    default_role: str | None,
    source: str,
    rows: Sequence[tuple[str, str, str, int]],
) -> None:
    """The whole configuration (the caller holds `lock` in its transaction): (kind, value,
    role, priority) per mapping, in order; three statements whatever their number."""
    await conn.execute(Q["update_role_settings"], org_id, default_role, source)
    await conn.execute(Q["delete_role_mappings"], org_id)
    if rows:
        kinds, values, roles, priorities = (list(c) for c in zip(*rows, strict=True))
        await conn.execute(
            Q["insert_role_mappings"],
            org_id,
            list(range(len(rows))),
            kinds,
            values,
            roles,
            priorities,
        )


class Role(NamedTuple):
    role: str | None
    rank: int | None  # the priority of the mapping that gave it; None: the default (lowest)


async def effective_roles(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    group_id: uuid.UUID | None = None,
    *,
    everyone: bool = False,
) -> dict[uuid.UUID, Role]:
    """The effective role of each user in `user_ids`, of each member of `group_id`, or of every
    user of the organization (one statement for any number of users)."""
    args = (org_id, list(user_ids), group_id, everyone)
    if everyone or group_id is not None or len(user_ids) > BATCH:
        rows = await fetch_batched(conn, Q["effective_roles"], args, BATCH)
    else:
        rows = await conn.fetch(Q["effective_roles"], *args)
    return {r["user_id"]: Role(r["role"], r["rank"]) for r in rows}


async def group_is_mapped(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    names: Sequence[dict[str, Any]],
) -> bool:
    """Whether some mapping names this group under any of its attrs `names` (before and after
    a change), in an organization whose roles come from groups."""
    display = sorted({str(a["displayName"]).lower() for a in names if a.get("displayName")})
    external = sorted({str(a["externalId"]) for a in names if a.get("externalId")})
    return bool(await conn.fetchval(Q["group_is_mapped"], org_id, str(group_id), display, external))


async def bump_user_events(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    """One more event number for each user (row-locked by the statement), in one statement;
    then their rows, in id order (through a cursor: thousands of users)."""
    await conn.execute(Q["bump_user_events"], org_id, list(user_ids))
    return await fetch_batched(conn, Q["users_by_id"], (org_id, list(user_ids)), BATCH)
