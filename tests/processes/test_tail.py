"""`scim-service events tail`: the pull API's order as JSON lines, live or until caught up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg

from scim_service.provisioning import tenants
from scim_service.store.outbox import CHANNEL
from tests.conftest import REPO
from tests.support import clean_env, cli, listening, write_event


@contextlib.asynccontextmanager
async def following(database_url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`scim-service events tail` (following) as a process, terminated on the way out."""
    env = clean_env()
    env["DATABASE_URL"] = database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_service",
        "events",
        "tail",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)


async def test_tail_prints_events_filters_and_resumes(
    database_url: str, db: asyncpg.Connection
) -> None:
    """Every event once, in order, as one JSON line each; --types and --org narrow it; the
    cursor printed at the end resumes after what was shown; a bad cursor exits 1 or 2."""
    org = await tenants.create_org(db, "acme")
    subjects = [uuid.uuid4() for _ in range(3)]
    for s in subjects:
        await write_event(db, org.id, s, 1)
    proc = cli(database_url, "events", "tail", "--no-follow")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["subject"] for e in lines] == [str(s) for s in subjects]
    cursor = proc.stderr.strip().rsplit("next cursor: ", 1)[1]

    await write_event(db, org.id, subjects[0], 2)
    again = cli(database_url, "events", "tail", "--no-follow", "--after", cursor)
    assert [json.loads(x)["resourceversion"] for x in again.stdout.splitlines()] == [2]
    none = cli(database_url, "events", "tail", "--no-follow", "--types", "group.changed")
    assert none.returncode == 0 and none.stdout == ""
    other = cli(database_url, "events", "tail", "--no-follow", "--org", str(uuid.uuid4()))
    assert other.returncode == 0 and other.stdout == ""
    bad = cli(database_url, "events", "tail", "--no-follow", "--after", "junk")
    assert bad.returncode == 1 and "cursor" in bad.stderr
    wrong = cli(database_url, "events", "tail", "--no-follow", "--types", "user.exploded")
    assert wrong.returncode == 2 and "user.exploded" in wrong.stderr


async def test_tail_follows_live(database_url: str, db: asyncpg.Connection) -> None:
    """Without --no-follow it keeps running and prints a new event as soon as it commits."""
    org = await tenants.create_org(db, "acme")
    async with following(database_url) as proc:
        await listening(db, CHANNEL, timeout=30)  # it follows: the event comes after it started
        subject = uuid.uuid4()
        await write_event(db, org.id, subject, 1)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        assert json.loads(line)["subject"] == str(subject)
        assert proc.returncode is None  # still following


async def _listen_backends(db: asyncpg.Connection) -> list[int]:
    return [
        r["pid"]
        for r in await db.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
        )
    ]


async def test_tail_survives_losing_its_listen_connection(
    database_url: str, db: asyncpg.Connection
) -> None:
    """The LISTEN connection is killed (a failover, a restarted backend): the tail listens
    again by itself and keeps printing new events."""
    org = await tenants.create_org(db, "acme")
    async with following(database_url) as proc:
        deadline = asyncio.get_running_loop().time() + 15
        while not (first := await _listen_backends(db)):
            assert asyncio.get_running_loop().time() < deadline, "the tail never listened"
            await asyncio.sleep(0.1)
        await db.execute("SELECT pg_terminate_backend($1)", first[0])
        while (again := await _listen_backends(db)) in ([], first):
            assert asyncio.get_running_loop().time() < deadline, "the tail did not listen again"
            await asyncio.sleep(0.1)
        subject = uuid.uuid4()
        await write_event(db, org.id, subject, 1)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=15)
        assert json.loads(line)["subject"] == str(subject)
        assert proc.returncode is None and again != first  # still following, a new listener
