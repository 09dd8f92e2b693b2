"""Versioned schema migrations from `sql/migrations/NNNN_name.sql`.

A migration is one transaction, or a sequence of steps: a line `-- migrate:step KIND` starts
a step, KIND `in-transaction` or `no-transaction`; text before the first marker is a
transactional step. A transactional step may hold many statements; a `no-transaction` step
holds exactly one (PostgreSQL runs several statements of one query string as one implicit
transaction): a `CREATE INDEX CONCURRENTLY`, or a `DO` block that `COMMIT`s between batches.
Each step done is recorded in `schema_migration_steps` (in its own transaction, or right after
a step without one), and the migration in `schema_migrations` with its last step; a rerun
resumes after the recorded steps, so a `no-transaction` step must be safe to run again (a
backfill of rows still unset; `IF NOT EXISTS` on an index, whose INVALID leftover from a failed
concurrent build the runner drops first). The whole run holds a session-level advisory lock
(polled for, see `_lock`), so replicas that start together apply each migration exactly once:
the second waits, then finds nothing to do.

Short locks: every step runs with `lock_timeout` at `LOCK_TIMEOUT` (1 s). A step that needs a
lock an open transaction holds (a report or a psql session that read `organizations`) would
otherwise wait for it, and every request needing that table would queue behind the step's
pending lock. Instead the step fails after 1 s (a transactional one is rolled back whole) and
is retried after a growing pause (`RETRY_PAUSES`), so requests wait at most about a second at a
time; after the last retry the run fails with a clear error and can be run again.
`migrate(to=VERSION)` (`scim-service migrate --to VERSION`) stops after that version, for a
staged roll-out.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
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

# How often a process waiting for another's migration run asks for the advisory lock.
LOCK_POLL = 0.2

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STEP_RE = re.compile(r"^-- migrate:step[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_STEP_KINDS = {"in-transaction": True, "no-transaction": False}
_CONCURRENT_INDEX_RE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"([a-z_][a-z0-9_]*)\b",
    re.MULTILINE | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Step:
    sql: str
    transactional: bool

    @property
    def concurrent_index(self) -> str | None:
        """The index a `CREATE INDEX CONCURRENTLY` step builds (None for other steps)."""
        m = None if self.transactional else _CONCURRENT_INDEX_RE.search(self.sql)
        return m.group(1) if m else None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def steps(self) -> list[Step]:
        """The file split at its `-- migrate:step KIND` lines (one transactional step if none)."""
        marks = list(_STEP_RE.finditer(self.sql))
        steps = []
        head = self.sql[: marks[0].start()] if marks else self.sql
        if head.strip() and (not marks or _has_statement(head)):
            steps.append(Step(head, True))
        for i, mark in enumerate(marks):
            kind = mark.group(1)
            if kind not in _STEP_KINDS:
                raise ValueError(f"migration {self.label}: unknown step kind {kind!r}")
            body = self.sql[mark.end() : marks[i + 1].start() if i + 1 < len(marks) else None]
            steps.append(Step(body, _STEP_KINDS[kind]))
        return steps or [Step(self.sql, True)]


def _has_statement(sql: str) -> bool:
    """Whether text holds more than comments and blank lines (a file's header comment before
    its first step marker is not a step of its own)."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


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
    await _lock(conn)
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


async def _lock(conn: asyncpg.Connection) -> None:
    """Take the advisory lock, polling while another replica holds it: waiting inside
    pg_advisory_lock() would hold a snapshot that the holder's CREATE INDEX CONCURRENTLY waits
    for, while it holds the lock we wait for."""
    waited = False
    while not await conn.fetchval(Q["migrations_try_lock"], MIGRATION_LOCK_KEY):
        if not waited:
            log.info("migration_lock_wait", message="another process is migrating; waiting")
            waited = True
        await asyncio.sleep(LOCK_POLL)


async def _apply(conn: asyncpg.Connection, m: Migration, pauses: Sequence[float]) -> None:
    """Every step of one migration not done yet, in order; the migration is recorded with its
    last step (a single-step migration: in its one transaction, as before steps existed)."""
    steps = m.steps()
    done: set[int] = set()
    if len(steps) > 1:
        for row in await conn.fetch(Q["migrations_steps_done"], m.version):
            if row["checksum"] != m.checksum:
                raise RuntimeError(
                    f"migration {m.label} was partly applied from a different file (step"
                    f" {row['step']} recorded with another checksum): finish it with the release"
                    " that started it"
                )
            done.add(row["step"])
    for number, step in enumerate(steps, start=1):
        if number in done:
            continue
        started = time.monotonic()
        await _with_retries(conn, m, number, step, last=number == len(steps), pauses=pauses)
        if len(steps) > 1:
            log.info(
                "migration_step_applied",
                version=m.version,
                name=m.name,
                step=number,
                of=len(steps),
                transactional=step.transactional,
                seconds=round(time.monotonic() - started, 3),
            )


async def _with_retries(
    conn: asyncpg.Connection,
    m: Migration,
    number: int,
    step: Step,
    *,
    last: bool,
    pauses: Sequence[float],
) -> None:
    """One step with a short lock_timeout, retried while it cannot get a lock."""
    for attempt in range(len(pauses) + 1):
        try:
            if step.transactional:
                async with conn.transaction():
                    await conn.execute(Q["migrations_step_lock_timeout"], LOCK_TIMEOUT)
                    await conn.execute(step.sql)
                    await _record(conn, m, number, last=last)
            else:
                await _outside_transaction(conn, step)
                async with conn.transaction():
                    await _record(conn, m, number, last=last)
            return
        except asyncpg.LockNotAvailableError:
            if attempt == len(pauses):
                break
            log.warning(
                "migration_lock_retry",
                version=m.version,
                name=m.name,
                step=number,
                attempt=attempt + 1,
                retry_in=pauses[attempt],
                message="a lock is held by another transaction; rolled back, retrying",
            )
            await asyncio.sleep(pauses[attempt])
    raise MigrationLockTimeout(
        f"migration {m.label} could not get its locks in {len(pauses) + 1} tries of"
        f" {LOCK_TIMEOUT} (step {number}): a long transaction holds them (see pg_stat_activity);"
        " nothing of that step was applied (a batched one keeps its committed batches), run it"
        " again"
    )


async def _outside_transaction(conn: asyncpg.Connection, step: Step) -> None:
    """A `no-transaction` step, under the same lock_timeout for the session while it runs.
    A concurrent index build that failed before left its index INVALID (and `IF NOT EXISTS`
    would keep it): that leftover is dropped first."""
    await conn.execute(Q["migrations_session_lock_timeout"], LOCK_TIMEOUT)
    try:
        index = step.concurrent_index
        if index is not None and await conn.fetchval(Q["migrations_index_invalid"], index):
            log.warning("migration_invalid_index_dropped", index=index)
            await conn.execute(Q["migrations_drop_invalid_index"].format(index=index))
        await conn.execute(step.sql)
    finally:
        await conn.execute(Q["migrations_lift_bounds"])


async def _record(conn: asyncpg.Connection, m: Migration, number: int, *, last: bool) -> None:
    if not last:
        await conn.execute(Q["migrations_record_step"], m.version, number, m.checksum)
        return
    await conn.execute(Q["migrations_record"], m.version, m.name, m.checksum)
    await conn.execute(Q["migrations_forget_steps"], m.version)
