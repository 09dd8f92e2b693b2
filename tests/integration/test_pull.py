"""The pull API (`GET /admin/v1/events`): one total order that never changes behind a cursor
handed out, even when transactions commit out of order; long polling; 410 past retention."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from scim_service.store import outbox
from scim_service.store.db import connect
from tests.conftest import Tenant
from tests.support import create_user, patch_user, write_event


async def pull(
    client: Any, headers: dict[str, str], status: int = 200, **params: Any
) -> dict[str, Any]:
    query = {k: str(v) for k, v in params.items() if v is not None}
    resp = await client.get("/admin/v1/events", params=query, headers=headers)
    body = await resp.json()
    assert resp.status == status, body
    return dict(body)


async def pull_all(
    client: Any, headers: dict[str, str], after: str | None = None, *, expect: int, **kw: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every event after `after`, page by page, until `expect` have come (bounded). Waits:
    any transaction open on the shared PostgreSQL server holds the stream back for a moment."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = await pull(client, headers, after=after, wait=1, **kw)
        out += page["events"]
        after = page["next_cursor"]
        if len(out) >= expect and not page["has_more"]:
            assert after is not None
            return out, after
    raise AssertionError(f"{len(out)} of {expect} events after 20 s")


async def test_pull_pages_filters_and_errors(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], db: asyncpg.Connection
) -> None:
    """Events come in write order with an opaque cursor; `limit`, `types` and `org_id` narrow
    them; a pull after the last cursor is empty; bad parameters are clear 400s."""
    users = [
        await create_user(client, tenant, userName=f"u{i}@x.test", externalId=f"e{i}")
        for i in range(5)
    ]
    await patch_user(
        client, tenant, users[0]["id"], {"op": "replace", "path": "title", "value": "Boss"}
    )

    first = await pull(client, admin_headers, limit=2, wait=5)
    assert len(first["events"]) == 2 and first["has_more"] is True
    rest, end = await pull_all(client, admin_headers, after=first["next_cursor"], limit=2, expect=4)
    got = first["events"] + rest
    assert [e["subject"] for e in got] == [u["id"] for u in users] + [users[0]["id"]]
    assert [e["type"] for e in got] == ["user.provisioned"] * 5 + ["user.updated"]
    stored = [
        json.loads(r["payload"]) for r in await db.fetch("SELECT payload FROM events ORDER BY seq")
    ]
    assert got == stored  # exactly the pushed CloudEvents

    assert (await pull(client, admin_headers, after=end))["events"] == []
    updated = await pull(client, admin_headers, types="user.updated", wait=5)
    assert [e["type"] for e in updated["events"]] == ["user.updated"]
    assert (await pull(client, admin_headers, org_id=str(uuid.uuid4())))["events"] == []
    mine = await pull(client, admin_headers, org_id=str(tenant.org_id))
    assert len(mine["events"]) == 6

    for bad in (
        {"after": "nonsense"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "\u00b2"},
        {"limit": "9" * 5000},
        {"wait": "nan"},
        {"wait": "31"},
        {"types": "user.exploded"},
        {"org_id": "x"},
    ):
        body = await pull(client, admin_headers, status=400, **bad)
        assert body["status"] == "400" and body["scimType"] == "invalidValue"
    resp = await client.get("/admin/v1/events")
    assert resp.status == 401


async def test_out_of_order_commits_never_appear_behind_a_cursor(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], database_url: str
) -> None:
    """A transaction that took its event number first but commits last: its event is held
    back (not skipped) until it commits, and then comes before the later one's."""
    early, late = await connect(database_url), await connect(database_url)
    try:
        t1 = early.transaction()
        await t1.start()
        a = uuid.uuid4()
        await write_event(early, tenant.org_id, a, 1)  # smaller seq, older transaction
        b = uuid.uuid4()
        await write_event(late, tenant.org_id, b, 1)  # autocommit: committed first
        page = await pull(client, admin_headers)
        assert page["events"] == []  # b is committed but behind a's open transaction
        cursor = page["next_cursor"]
        await t1.commit()
        page, _ = await pull_all(client, admin_headers, after=cursor, expect=2)
        assert [e["subject"] for e in page] == [str(a), str(b)]
        # Nothing ever appears behind it: the full order equals what the cursor walk saw.
        everything, _ = await pull_all(client, admin_headers, expect=2)
        assert [e["subject"] for e in everything] == [str(a), str(b)]
    finally:
        await early.close()
        await late.close()


async def test_a_resource_keeps_version_order_across_out_of_order_transactions(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], database_url: str
) -> None:
    """A transaction that got its id early (it wrote something else first) and writes a
    resource's next version after a younger transaction wrote the version before: the stream
    still has version 1 before version 2 (a consumer applying versions in order loses nothing)."""
    old, young = await connect(database_url), await connect(database_url)
    try:
        tx = old.transaction()
        await tx.start()
        await write_event(old, tenant.org_id, uuid.uuid4(), 1)  # `old` has its id now
        group = uuid.uuid4()
        await write_event(young, tenant.org_id, group, 1)  # younger id, commits first
        await write_event(old, tenant.org_id, group, 2)
        await tx.commit()
        got, _ = await pull_all(client, admin_headers, expect=3)
        mine = [e["resourceversion"] for e in got if e["subject"] == str(group)]
        assert mine == [1, 2]
    finally:
        await old.close()
        await young.close()


async def test_concurrent_readers_see_every_event_once_in_one_order(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], database_url: str
) -> None:
    """Writers whose transactions overlap and commit in random order, readers following the
    stream while they run: every reader sees every committed event exactly once, all in the
    same order, and a rolled-back transaction's events never appear."""
    rng = random.Random(13)
    written: list[str] = []
    rolled_back: list[str] = []

    async def writer(n: int) -> None:
        conn = await connect(database_url)
        try:
            for i in range(15):
                tx = conn.transaction()
                await tx.start()
                subjects = [uuid.uuid4() for _ in range(rng.randint(1, 3))]
                for s in subjects:
                    await write_event(conn, tenant.org_id, s, 1)
                    await asyncio.sleep(rng.random() * 0.01)
                if (n + i) % 7 == 3:
                    await tx.rollback()
                    rolled_back.extend(map(str, subjects))
                else:
                    await tx.commit()
                    written.extend(map(str, subjects))
        finally:
            await conn.close()

    done = asyncio.Event()

    async def reader() -> list[str]:
        seen: list[str] = []
        after = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            finished = done.is_set()
            page = await pull(client, admin_headers, after=after, limit=7, wait=0.2)
            seen += [e["subject"] for e in page["events"]]
            after = page["next_cursor"]
            if finished and len(seen) >= len(written) and not page["has_more"]:
                return seen
        raise AssertionError("reader did not finish")

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.gather(*(writer(n) for n in range(4)))
    done.set()
    results = await asyncio.gather(*readers)
    assert len(written) > 50
    for seen in results:
        assert len(seen) == len(set(seen))
        assert sorted(seen) == sorted(written)
        assert not set(seen) & set(rolled_back)
        assert seen == results[0]


async def test_long_poll_returns_when_an_event_commits(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """`wait=` holds the request until a change commits and answers within tens of
    milliseconds of it (woken by the outbox NOTIFY), and answers empty after `wait` when
    nothing happens."""
    end = (await pull(client, admin_headers))["next_cursor"]
    started = time.monotonic()
    empty = await pull(client, admin_headers, after=end, wait=0.3)
    assert empty["events"] == [] and time.monotonic() - started >= 0.3

    latencies = []
    for i in range(7):
        waiting = asyncio.create_task(pull(client, admin_headers, after=end, wait=10))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        t0 = time.monotonic()
        await create_user(client, tenant, userName=f"lp{i}@x.test", externalId=f"lp{i}")
        committed = time.monotonic()
        page = await asyncio.wait_for(waiting, timeout=5)
        latencies.append(time.monotonic() - committed)
        assert [e["data"]["user_name"] for e in page["events"]] == [f"lp{i}@x.test"]
        assert committed - t0 < 5
        end = page["next_cursor"]
    # Woken by the NOTIFY, not by the 2 s fallback poll. (Single answers can take longer here:
    # another test suite's CREATE DATABASE on the shared server holds the snapshot's xmin.)
    assert sorted(latencies)[len(latencies) // 2] < 0.2, latencies
    assert max(latencies) < 1.9, latencies


async def test_cursor_older_than_retention_is_410(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], db: asyncpg.Connection
) -> None:
    """When retention deleted events after a cursor, that cursor gets a 410 naming the oldest
    position available (never a silent jump); pulling from there gives what is left."""
    await create_user(client, tenant, userName="a@x.test", externalId="a")
    before, start = await pull_all(client, admin_headers, expect=1)  # no cursor: from the start
    assert len(before) == 1
    await create_user(client, tenant, userName="b@x.test", externalId="b")
    await create_user(client, tenant, userName="c@x.test", externalId="c")
    # a and b were delivered long ago, c recently: retention removes a and b only.
    await db.execute("DELETE FROM outbox")
    await db.execute(
        "UPDATE events SET time = now() - interval '30 days' "
        " WHERE convert_from(payload, 'UTF8') NOT LIKE '%c@x.test%'"
    )
    assert await outbox.purge_delivered(db, datetime.now(UTC) - timedelta(days=7)) == 2
    gone = await pull(client, admin_headers, status=410, after=start)
    assert gone["status"] == "410" and "oldest" in gone["detail"]
    left, _ = await pull_all(client, admin_headers, after=gone["oldest_cursor"], expect=1)
    assert [e["data"]["user_name"] for e in left] == ["c@x.test"]
    assert (await pull_all(client, admin_headers, expect=1))[0] == left


@pytest.mark.parametrize("path", ["/admin/v1/events"])
async def test_pull_needs_the_admin_token(client: Any, tenant: Tenant, path: str) -> None:
    """A SCIM token does not open the pull API (it carries every organization's events)."""
    resp = await client.get(path, headers=tenant.headers)
    assert resp.status == 401
