"""Versioned schema migrations from `sql/migrations/NNNN_name.sql`.

Each pending file is applied in its own transaction and recorded in `schema_migrations` in
that same transaction. The whole run holds a session-level advisory lock, so replicas that
start together apply each migration exactly once: the second waits, then finds nothing to do.

Short locks: inside each migration's transaction `lock_timeout` is `LOCK_TIMEOUT` (1 s). A
migration that needs a lock an open transaction holds (a report or a psql session that read
`organizations`) would otherwise wait for it, and every request needing that table would queue
behind the migration's pending lock. Instead the step fails after 1 s, is rolled back whole,
and is retried after a growing pause (`RETRY_PAUSES`), so requests wait at most about a second
at a time; after the last retry the run fails with a clear error and can be run again.
`migrate(to=VERSION)` (`scim-service migrate --to VERSION`) stops after that version, for a
staged roll-out.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from scim_service.logs import get_logger
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import sql_dir

log = get_logger("scim_service.migrate")

# An arbitrary constant shared by every process of this service: "the migration lock".
MIGRATION_LOCK_KEY = 7264000

# Per migration step: how long one lock may be waited for, and the pauses between tries.
LOCK_TIMEOUT = "1s"
RETRY_PAUSES: Sequence[float] = (0.5, 1, 2, 4, 8, 15, 30, 30, 30, 30)

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


class MigrationLockTimeout(RuntimeError):
    """A migration could not get its locks within any of its tries."""


async def migrate(
    conn: asyncpg.Connection,
    migrations: list[Migration] | None = None,
    *,
    to: int | None = None,
    pauses: Sequence[float] | None = None,
) -> list[int]:
    """Apply pending migrations (up to version `to`, when given) under the advisory lock;
    return the versions applied."""
    migrations = discover() if migrations is None else migrations
    if to is not None and to not in {m.version for m in migrations}:
        known = ", ".join(str(m.version) for m in migrations)
        raise ValueError(f"no migration {to} (this release has {known})")
    pauses = RETRY_PAUSES if pauses is None else pauses
    applied: list[int] = []
    await conn.execute(Q["migrations_lift_bounds"])
    await conn.execute(Q["migrations_lock"], MIGRATION_LOCK_KEY)
    try:
        await conn.execute(Q["migrations_bookkeeping"])
        done = await applied_versions(conn)
        for m in migrations:
            if to is not None and m.version > to:
                break
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration_changed_after_apply", version=m.version, name=m.name)
                continue
            await _apply(conn, m, pauses)
            log.info("migration_applied", version=m.version, name=m.name)
            applied.append(m.version)
    finally:
        await conn.execute(Q["migrations_unlock"], MIGRATION_LOCK_KEY)
        await conn.execute(Q["migrations_restore_bounds"])
    return applied


async def _apply(conn: asyncpg.Connection, m: Migration, pauses: Sequence[float]) -> None:
    """One migration in one transaction with a short lock_timeout, retried while it cannot get
    a lock."""
    for attempt in range(len(pauses) + 1):
        try:
            async with conn.transaction():
                await conn.execute(Q["migrations_step_lock_timeout"], LOCK_TIMEOUT)
                await conn.execute(m.sql)
                await conn.execute(Q["migrations_record"], m.version, m.name, m.checksum)
            return
        except asyncpg.LockNotAvailableError:
            if attempt == len(pauses):
                break
            log.warning(
                "migration_lock_retry",
                version=m.version,
                name=m.name,
                attempt=attempt + 1,
                retry_in=pauses[attempt],
                message="a lock is held by another transaction; rolled back, retrying",
            )
            await asyncio.sleep(pauses[attempt])
    raise MigrationLockTimeout(
        f"migration {m.version:04d}_{m.name} could not get its locks in {len(pauses) + 1} tries"
        " of " + LOCK_TIMEOUT + ": a long transaction holds them (see pg_stat_activity);"
        " nothing of it was applied, run it again"
    )
