"""Readiness (GET /readyz): the database answers and its schema is what this code expects."""

from __future__ import annotations

import asyncpg

from scim_service.lifecycle import Lifecycle
from scim_service.store import migrate
from scim_service.store.db import QUERIES, ping


async def pending_migrations(conn: asyncpg.Connection, lifecycle: Lifecycle) -> list[int]:
    """Ping, then the migrations this code knows that the database lacks (empty: ready).
    Once they were found current the question is not asked again (migrations only advance)."""
    await ping(conn)
    if lifecycle.migrations_current:
        return []
    missing = await migrate.pending(conn)
    if not missing:
        lifecycle.migrations_current = True
    return missing


async def writable(conn: asyncpg.Connection) -> bool:
    """Whether writes can succeed on this database now (no recovery, not read-only)."""
    return bool(await conn.fetchval(QUERIES["writable"]))
