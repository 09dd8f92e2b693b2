"""Role mappings per organization in PostgreSQL (see provisioning/roles.py). Functions take a
connection and the org id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from scim_service.store.db import QUERIES as Q


async def settings(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(Q["role_settings"], org_id)


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


async def effective_roles(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """Each user's effective role (one statement for any number of users)."""
    rows = await conn.fetch(Q["effective_roles"], org_id, list(user_ids))
    return {r["user_id"]: r["role"] for r in rows}
