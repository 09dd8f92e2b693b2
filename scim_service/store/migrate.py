"""Versioned schema migrations from `sql/migrations/NNNN_name.sql`.

Each pending file is applied in its own transaction and recorded in `schema_migrations` in
that same transaction. The whole run holds a session-level advisory lock, so replicas that
start together apply each migration exactly once: the second waits, then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from scim_service.logs import get_logger
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import sql_dir

log = get_logger("scim_service.migrate")

# An arbitrary constant shared by every process of this service: "the migration lock".
MIGRATION_LOCK_KEY = 7264000

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir() / "migrations"
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        m = _FILE_RE.match(path.name)
        if not m:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two migration files share a version number")
    return found


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval(Q["migrations_table_exists"])
    if not exists:
        return {}
    rows = await conn.fetch(Q["migrations_applied"])
    return {r["version"]: r["checksum"] for r in rows}


async def pending(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Versions this code knows that the database has not applied (empty = current)."""
    migrations = discover() if migrations is None else migrations
    done = await applied_versions(conn)
    return [m.version for m in migrations if m.version not in done]


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations under the advisory lock; return the versions applied."""
    migrations = discover() if migrations is None else migrations
    applied: list[int] = []
    await conn.execute(Q["migrations_lift_bounds"])
    await conn.execute(Q["migrations_lock"], MIGRATION_LOCK_KEY)
    try:
        await conn.execute(Q["migrations_bookkeeping"])
        done = await applied_versions(conn)
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration_changed_after_apply", version=m.version, name=m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(Q["migrations_record"], m.version, m.name, m.checksum)
            log.info("migration_applied", version=m.version, name=m.name)
            applied.append(m.version)
    finally:
        await conn.execute(Q["migrations_unlock"], MIGRATION_LOCK_KEY)
        await conn.execute(Q["migrations_restore_bounds"])
    return applied
