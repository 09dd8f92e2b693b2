"""Migrating a large database online (issue 24): from version 7 to the latest on a million
events while SCIM-like writes, the token lookup and a long reader run. Slow (a million rows):
in the full suite, not the quick lane."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from scim_service.store import migrate
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import connect
from tests.conftest import _SESSION
from tests.support import empty_database

EVENTS = 1_000_000
MAX_WAIT = 2.0

WRITE = """
WITH e AS (
    INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time, payload)
    VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'User', 1, 'user.created', now(), '\\x7b7d')
    RETURNING seq, subject, resource_version
)
INSERT INTO outbox (sink, event_seq, subject, resource_version)
SELECT 'log', seq, subject, resource_version FROM e
"""


@pytest.fixture(name="big_db")
async def fixture_big_db(pg_server: str) -> AsyncIterator[str]:
    """A database of its own at version 7 with one organization, one token and a million
    events."""
    async with empty_database(pg_server, f"scim_online_{_SESSION}") as dsn:
        yield dsn


@pytest.mark.slow
async def test_migrating_a_million_events_blocks_no_request(big_db: str) -> None:
    """While 8..latest apply: a writer (an event and its outbox row per transaction, as every
    SCIM write), the token lookup every SCIM request makes, and a reader that holds
    organizations, events and scim_tokens for 3 s at a time (a report) run throughout. Neither
    probe ever waits 2 s: every step's locks are short or block no request, and a step that
    cannot get its lock gives up after 1 s and is retried."""
    conn = await connect(big_db)
    org = uuid.uuid4()
    digest = hashlib.sha256(b"online-migration").digest()
    started = time.monotonic()
    await migrate.migrate(conn, to=7)
    await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'big')", org)
    await conn.execute(
        "INSERT INTO scim_tokens (org_id, digest, display_prefix) VALUES ($1, $2, 'scim_x')",
        org,
        digest,
    )
    await conn.execute(
        "INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time,"
        " payload) SELECT gen_random_uuid(), $1, gen_random_uuid(), 'User', 1,"
        " 'user.created', now(), '\\x7b7d' FROM generate_series(1, $2)",
        org,
        EVENTS,
    )
    await conn.execute("VACUUM ANALYZE events")
    generated = time.monotonic() - started

    stop = asyncio.Event()
    waits: dict[str, list[float]] = {"write": [], "lookup": []}
    holds = 0

    async def probe(kind: str, query: str, *args: object) -> None:
        probe_conn = await asyncpg.connect(big_db)
        try:
            while not stop.is_set():
                t0 = time.monotonic()
                await probe_conn.execute(query, *args)
                waits[kind].append(time.monotonic() - t0)
                await asyncio.sleep(0.02)
        finally:
            await probe_conn.close()

    async def reader() -> None:
        nonlocal holds
        reader_conn = await asyncpg.connect(big_db)
        try:
            while not stop.is_set():
                async with reader_conn.transaction():
                    await reader_conn.fetchval("SELECT count(*) FROM organizations")
                    await reader_conn.fetchval("SELECT count(*) FROM scim_tokens")
                    await reader_conn.fetchval("SELECT seq FROM events ORDER BY seq LIMIT 1")
                    holds += 1
                    await asyncio.sleep(3)
                await asyncio.sleep(1)
        finally:
            await reader_conn.close()

    tasks = [
        asyncio.create_task(probe("write", WRITE, org)),
        asyncio.create_task(probe("lookup", Q["authenticate_token"], digest)),
        asyncio.create_task(reader()),
    ]
    try:
        await asyncio.sleep(0.5)  # the reader holds its tables: the first ALTER must wait
        t0 = time.monotonic()
        applied = await asyncio.wait_for(migrate.migrate(conn, pauses=(0.3,) * 100), 150)
        migration = time.monotonic() - t0
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await conn.close()
    print(
        f"\nonline migration: {EVENTS:,} events generated in {generated:.1f} s;"
        f" 8..{applied[-1]} applied in {migration:.1f} s;"
        f" reader held its tables {holds} times;"
        f" longest write {max(waits['write']):.3f} s of {len(waits['write'])},"
        f" longest token lookup {max(waits['lookup']):.3f} s of {len(waits['lookup'])}"
    )
    assert applied == [m.version for m in migrate.discover() if m.version > 7]
    assert len(waits["write"]) > 20 and len(waits["lookup"]) > 20
    assert max(waits["write"]) < MAX_WAIT, waits["write"]
    assert max(waits["lookup"]) < MAX_WAIT, waits["lookup"]
