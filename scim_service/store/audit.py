"""The admin audit trail's rows (issue 22). Functions take a connection; no HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from scim_service.store.db import QUERIES as Q


async def insert(
    conn: asyncpg.Connection,
    *,
    actor: str,
    credential_id: uuid.UUID | None,
    action: str,
    org_id: uuid.UUID | None,
    target: str | None,
    outcome: str,
    status: int,
    detail: str | None,
    request_id: str | None,
) -> None:
    await conn.execute(
        Q["audit_insert"],
        actor,
        credential_id,
        action,
        org_id,
        target,
        outcome,
        status,
        detail,
        request_id,
    )


async def page(
    conn: asyncpg.Connection, org_id: uuid.UUID | None, after: int, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["audit_list"], org_id, after, limit))


async def prune_old(conn: asyncpg.Connection, horizon: datetime, batch: int) -> int:
    return int((await conn.execute(Q["audit_prune_old"], horizon, batch)).split()[-1])
