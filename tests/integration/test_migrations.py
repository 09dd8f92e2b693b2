"""Migrations: applied once, in order, under a lock, and reported by /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.store import migrate
from scim_service.store.db import connect
from tests.conftest import _SESSION
from tests.support import empty_database


@pytest.fixture(name="empty_db")
async def fixture_empty_db(pg_server: str) -> AsyncIterator[str]:
    """A database with no schema at all (not from the template)."""
    name = f"scim_empty_{_SESSION}_{id(asyncio.current_task())}"
    async with empty_database(pg_server, name) as dsn:
        yield dsn


async def test_migrate_is_idempotent(empty_db: str) -> None:
    """The first run applies every migration; the second finds nothing to do."""
    known = [m.version for m in migrate.discover()]
    conn = await connect(empty_db)
    try:
        assert await migrate.pending(conn) == known
        assert await migrate.migrate(conn) == known
        assert await migrate.migrate(conn) == []
        assert await migrate.pending(conn) == []
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == known
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_version_once(empty_db: str) -> None:
    """Replicas starting together: the advisory lock makes one apply, the others wait."""
    conns = [await connect(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate.migrate(c) for c in conns))
        applied = [v for r in results for v in r]
        known = [m.version for m in migrate.discover()]
        assert sorted(applied) == known, "each migration applied exactly once across replicas"
        assert await migrate.pending(conns[0]) == []
    finally:
        for c in conns:
            await c.close()


async def test_a_failing_migration_leaves_no_trace(empty_db: str) -> None:
    """Each migration runs in a transaction: a broken one records nothing and changes nothing."""
    good = migrate.Migration(1, "good", "CREATE TABLE a (x int)")
    bad = migrate.Migration(2, "bad", "CREATE TABLE b (x int); SELECT 1/0")
    conn = await connect(empty_db)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate.migrate(conn, [good, bad])
        assert await conn.fetchval("SELECT to_regclass('b')") is None
        assert await migrate.pending(conn, [good, bad]) == [2]
        # The lock was released: another run can proceed.
        assert await migrate.migrate(conn, [good]) == []
    finally:
        await conn.close()


async def test_readyz_reports_pending_migrations(aiohttp_client, empty_db: str) -> None:
    """With SCIM_MIGRATE_ON_START off and an unmigrated database, /readyz is 503."""
    settings = Settings(database_url=empty_db, migrate_on_start=False)
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "migrations_pending"
    conn = await connect(empty_db)
    await migrate.migrate(conn)
    await conn.close()
    resp = await client.get("/readyz")
    assert resp.status == 200


async def test_serve_migrates_on_start(aiohttp_client, empty_db: str) -> None:
    settings = Settings(database_url=empty_db)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/readyz")).status == 200
    conn = await connect(empty_db)
    try:
        assert await migrate.pending(conn) == []
    finally:
        await conn.close()


async def test_migrate_to_a_version_stops_there(empty_db: str) -> None:
    """`migrate --to 7`: a staged roll-out applies 1..7 only; a later run applies the rest; an
    unknown version is refused before anything is applied."""
    known = [m.version for m in migrate.discover()]
    conn = await connect(empty_db)
    try:
        with pytest.raises(ValueError, match="no migration 9999"):
            await migrate.migrate(conn, to=9999)
        assert await migrate.pending(conn) == known
        assert await migrate.migrate(conn, to=7) == [v for v in known if v <= 7]
        assert await migrate.migrate(conn, to=7) == []
        assert await migrate.migrate(conn) == [v for v in known if v > 7]
    finally:
        await conn.close()


async def test_a_migration_waits_behind_an_open_transaction_without_queueing_requests(
    empty_db: str,
) -> None:
    """A reader transaction holds `organizations` (a report, a psql session) for 4 s while
    0009 needs an exclusive lock on it. The migration's lock attempts time out after 1 s and are
    retried, so the lookups every SCIM request makes (the token's organization) never wait
    behind its queued lock for more than about a second; once the reader ends, 0009 applies."""
    conn = await connect(empty_db)
    reader = await asyncpg.connect(empty_db)
    prober = await asyncpg.connect(empty_db)
    try:
        await migrate.migrate(conn, to=8)
        await conn.execute("INSERT INTO organizations (id, name) VALUES (gen_random_uuid(), 'a')")
        reader_tx = reader.transaction()
        await reader_tx.start()
        await reader.fetchval("SELECT count(*) FROM organizations")  # ACCESS SHARE until commit

        waits: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                started = loop.time()
                await prober.fetchval("SELECT name FROM organizations LIMIT 1")
                waits.append(loop.time() - started)
                await asyncio.sleep(0.05)

        async def end_reader() -> None:
            await asyncio.sleep(4)
            await reader_tx.commit()

        probing = asyncio.create_task(probe())
        ending = asyncio.create_task(end_reader())
        pauses = (0.3,) * 30
        applied = await asyncio.wait_for(migrate.migrate(conn, to=9, pauses=pauses), 30)
        stop.set()
        await probing
        await ending
        assert applied == [9]
        assert len(waits) > 10 and max(waits) < 2.0, max(waits)
    finally:
        for c in (conn, reader, prober):
            await c.close()


async def test_a_migration_that_never_gets_its_locks_fails_cleanly(empty_db: str) -> None:
    conn = await connect(empty_db)
    reader = await asyncpg.connect(empty_db)
    try:
        await migrate.migrate(conn, to=8)
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM organizations")
            with pytest.raises(migrate.MigrationLockTimeout, match="0009_activity_guard"):
                await migrate.migrate(conn, pauses=(0.1, 0.1))
        assert await migrate.pending(conn) == [m.version for m in migrate.discover()][8:]
    finally:
        await conn.close()
        await reader.close()


async def test_a_migration_in_steps_resumes_after_its_last_done_step(empty_db: str) -> None:
    """Steps done are recorded: after a failure in step 3 a rerun starts at step 3 (step 1's
    insert is not repeated), and the migration is recorded, its step rows gone, with the
    last step."""
    table = migrate.Migration(1, "table", "CREATE TABLE t (x int)")
    steps = migrate.Migration(
        2,
        "steps",
        "-- a header comment is no step\n"
        "-- migrate:step in-transaction\nINSERT INTO t VALUES (1);\n"
        "-- migrate:step no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);\n"
        "-- migrate:step in-transaction\nSELECT 1 / (SELECT count(*) - 1 FROM t)::int;\n",
    )
    assert [s.transactional for s in steps.steps()] == [True, False, True]
    assert steps.steps()[1].concurrent_index == "t_x"
    conn = await connect(empty_db)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate.migrate(conn, [table, steps])
        assert await migrate.pending(conn, [table, steps]) == [2]
        done = await conn.fetch("SELECT step FROM schema_migration_steps WHERE version = 2")
        assert sorted(r["step"] for r in done) == [1, 2]
        await conn.execute("INSERT INTO t VALUES (2)")
        assert await migrate.migrate(conn, [table, steps]) == [2]
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
        assert await conn.fetchval("SELECT count(*) FROM schema_migration_steps") == 0
    finally:
        await conn.close()


async def test_a_failed_concurrent_index_build_is_rebuilt_on_rerun(empty_db: str) -> None:
    """CREATE INDEX CONCURRENTLY waits for older snapshots under the 1 s lock_timeout; one that
    times out leaves an INVALID index (which IF NOT EXISTS would keep): the rerun drops it and
    builds it again, valid."""
    table = migrate.Migration(1, "table", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    index = migrate.Migration(
        2,
        "index",
        "-- migrate:step no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);\n",
    )
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('t_x')"
    conn = await connect(empty_db)
    reader = await asyncpg.connect(empty_db)
    try:
        await migrate.migrate(conn, [table])
        async with reader.transaction(isolation="repeatable_read"):
            await reader.fetchval("SELECT count(*) FROM t")  # a snapshot the build waits for
            with pytest.raises(migrate.MigrationLockTimeout, match="0002_index"):
                await migrate.migrate(conn, [table, index], pauses=())
            assert await conn.fetchval(valid) is False
        assert await migrate.migrate(conn, [table, index]) == [2]
        assert await conn.fetchval(valid) is True
    finally:
        await conn.close()
        await reader.close()
