"""The SCIM activity log's rows (see scim_service/activity.py). Functions take a connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from scim_service.store.db import QUERIES as Q


async def insert(conn: asyncpg.Connection, rows: Sequence[Sequence[Any]]) -> list[uuid.UUID]:
    """A batch of rows (in the column order of `activity_insert`) in one statement; the
    organization of every row written (an unauthenticated row can land under several)."""
    columns = list(zip(*rows, strict=True))
    written = await conn.fetch(Q["activity_insert"], *[list(c) for c in columns])
    return [r["org_id"] for r in written]


async def prune_old(conn: asyncpg.Connection, horizon: datetime, batch: int) -> int:
    """Delete at most `batch` entries older than `horizon`; how many went."""
    return int((await conn.execute(Q["activity_prune_old"], horizon, batch)).split()[-1])


async def prune_org(
    conn: asyncpg.Connection, org_id: uuid.UUID, keep: int, *, unverified: bool = False
) -> int:
    """Keep the organization's newest `keep` entries (of those unverified, or of the others);
    how many went."""
    status = await conn.execute(Q["activity_prune_org"], org_id, keep, unverified)
    return int(status.split()[-1])


async def latest(
    conn: asyncpg.Connection, org_id: uuid.UUID, limit: int, errors_only: bool
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["activity_latest"], org_id, limit, errors_only))


async def after(
    conn: asyncpg.Connection, org_id: uuid.UUID, after_id: int, limit: int, errors_only: bool
) -> list[asyncpg.Record]:
    return list(await conn.fetch(Q["activity_after"], org_id, after_id, limit, errors_only))


async def last_success(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """The last successful request per IdP (idp, at, method, route, status)."""
    return list(await conn.fetch(Q["activity_last_success"], org_id))


async def error_rate(
    conn: asyncpg.Connection, org_id: uuid.UUID, since: datetime
) -> tuple[int, int]:
    """Requests and failed requests since `since`."""
    row = await conn.fetchrow(Q["activity_error_rate"], org_id, since)
    assert row is not None
    return int(row["requests"]), int(row["errors"])


async def skipped_members(
    conn: asyncpg.Connection, org_id: uuid.UUID, since: datetime, limit: int
) -> tuple[int, int, list[uuid.UUID]]:
    """Group writes since `since` that skipped member ids (no users of the organization): how
    many requests, how many distinct ids, and up to `limit` of them (most recent first)."""
    row = await conn.fetchrow(Q["activity_skipped_members"], org_id, since, limit)
    assert row is not None
    return int(row["requests"]), int(row["total"]), list(row["ids"])
