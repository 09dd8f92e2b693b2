"""What the directory status of an organization reads about its events and tokens (see
provisioning/status.py). Functions take a connection."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from scim_service.store.db import QUERIES as Q


async def backlog(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """Per sink: pending, held, dead and the oldest pending age of the organization's events."""
    return list(await conn.fetch(Q["status_backlog"], org_id))


async def last_deliveries(conn: asyncpg.Connection, org_id: uuid.UUID) -> dict[str, datetime]:
    """Per sink: when it last delivered one of the organization's events."""
    rows = await conn.fetch(Q["status_deliveries"], org_id)
    return {r["sink"]: r["last_delivered_at"] for r in rows}


async def tokens_expiring(conn: asyncpg.Connection, days: int) -> int:
    """Active tokens of every organization that expire within `days` days."""
    return int(await conn.fetchval(Q["tokens_expiring"], days))
