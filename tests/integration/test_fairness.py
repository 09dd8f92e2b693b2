"""Fair shares of the database (issue 12): an organization whose requests are slow uses at most
its share of the pool, pool exhaustion answers 503 within the acquire timeout, and the optional
per-token rate answers 429 with the bucket's Retry-After. Against the real PostgreSQL: the slow
requests are group PATCHes waiting on the group's row lock, which the test holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from scim_service.app import create_app
from scim_service.config import ConfigError, Settings, load_settings
from scim_service.fairness import Gate, TokenBuckets
from scim_service.keys import GATE
from scim_service.store.db import connect, create_pool
from tests.conftest import Tenant, make_tenant
from tests.support import add, bulk_users, new_group

ACQUIRE_TIMEOUT = 1.0
# How long a request of another organization may take while one organization hogs: far below
# the acquire timeout (a starved request would wait that long, then answer 503).
PROMPT = 0.75
# Bound of every wait in these tests.
DEADLINE = 20.0


@contextlib.asynccontextmanager
async def group_locked(database_url: str, *group_ids: str) -> AsyncIterator[None]:
    """Hold the groups' row locks (what every writer of a group takes) on a connection of the
    test's own, outside the service's pool."""
    conn = await connect(database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "SELECT 1 FROM groups WHERE id = ANY($1::uuid[]) FOR UPDATE",
            [uuid.UUID(g) for g in group_ids],
        )
        try:
            yield
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def wait_until(predicate: Any, what: str) -> None:
    """Poll `predicate()` every 10 ms, for at most DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def timed(coro: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    resp = await coro
    return resp, time.perf_counter() - started


async def members_and_events(db: asyncpg.Connection, group_id: str) -> tuple[set[str], int, int]:
    gid = uuid.UUID(group_id)
    members = {
        str(r["user_id"])
        for r in await db.fetch("SELECT user_id FROM group_members WHERE group_id = $1", gid)
    }
    version = await db.fetchval("SELECT version FROM groups WHERE id = $1", gid)
    events = await db.fetchval("SELECT count(*) FROM events WHERE subject = $1", gid)
    return members, int(version), int(events)


def rejected_count(text: str, status: str, reason: str) -> float:
    for line in text.splitlines():
        if line.startswith("scim_rejected_requests_total{") and (
            f'status="{status}"' in line and f'reason="{reason}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_one_slow_organization_leaves_the_others_served(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection, database_url: str
) -> None:
    """Ten slow requests of one organization (pool of 10, its share 5): five hold connections,
    the other five answer 429 with Retry-After after the acquire timeout and change nothing;
    meanwhile another organization's reads and writes and /readyz answer promptly. (The slow
    requests are PATCHes of ten groups whose rows the test holds, with the request lock
    timeout off: each waits up to SCIM_DB_LOCK_TIMEOUT.)"""
    conf = msgspec.structs.replace(
        settings, db_acquire_timeout=ACQUIRE_TIMEOUT, db_request_lock_timeout=0
    )
    assert conf.db_pool_max == 10 and conf.org_concurrency == 5
    client = await aiohttp_client(create_app(conf))
    hog = await make_tenant(db, "hog")
    other = await make_tenant(db, "other")
    gids = [await new_group(client, hog, f"Locked {i}") for i in range(10)]
    uids = await bulk_users(db, hog.org_id, 10)
    gate = client.app[GATE]

    async with group_locked(database_url, *gids):
        started = time.perf_counter()
        patches = [
            asyncio.ensure_future(
                client.patch(f"/scim/v2/Groups/{g}", json=add([u]), headers=hog.headers)
            )
            for g, u in zip(gids, uids, strict=True)
        ]
        await wait_until(lambda: gate.in_use(hog.org_id) == 10, "ten requests of the hog")

        # The other organization is served at once, reads and writes, and so is /readyz.
        listed, t_list = await timed(client.get("/scim/v2/Users", headers=other.headers))
        created, t_create = await timed(
            client.post("/scim/v2/Users", json={"userName": "b@x.com"}, headers=other.headers)
        )
        ready, t_ready = await timed(client.get("/readyz"))
        assert (listed.status, created.status, ready.status) == (200, 201, 200)
        assert max(t_list, t_create, t_ready) < PROMPT, (t_list, t_create, t_ready)

        # The five without a slot give up after the acquire timeout; the others still wait.
        await wait_until(lambda: sum(p.done() for p in patches) >= 5, "five answers")
        t_429 = time.perf_counter() - started
        await asyncio.sleep(0.3)  # the five holding connections stay blocked on the lock
        done = [p for p in patches if p.done()]
        assert len(done) == 5
        for p in done:
            resp = p.result()
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "1"
            assert resp.content_type == "application/scim+json"
            body = await resp.json(content_type=None)
            assert body["status"] == "429" and "organization" in body["detail"]
        assert ACQUIRE_TIMEOUT <= t_429 < ACQUIRE_TIMEOUT + 2.0
        # Nothing written while the locks are held, and nothing by the rejected ones ever.
        for g in gids:
            assert (await members_and_events(db, g))[0] == set()

    results = await asyncio.wait_for(asyncio.gather(*patches), DEADLINE)
    statuses = [r.status for r in results]
    assert sorted(statuses) == [200] * 5 + [429] * 5
    for g, u, r in zip(gids, uids, results, strict=True):
        members, version, events = await members_and_events(db, g)
        served = r.status == 200
        assert members == ({u} if served else set()), "a rejected request added its member"
        assert (version, events) == ((2, 2) if served else (1, 1))  # created, then the PATCH
    await wait_until(lambda: gate.in_use(hog.org_id) == 0, "the hog's slots to be released")

    metrics = await (await client.get("/metrics")).text()
    assert rejected_count(metrics, "429", "org_concurrency") == 5
    print(
        f"\nhog: 10 slow requests; other org: list {t_list * 1000:.1f} ms, "
        f"create {t_create * 1000:.1f} ms, readyz {t_ready * 1000:.1f} ms; "
        f"hog's 429s after {t_429:.2f} s"
    )


async def test_pool_exhaustion_answers_503_within_the_acquire_timeout(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection, database_url: str
) -> None:
    """With the per-organization limit as large as the pool, one organization's slow requests
    can take every connection: the next request (of any organization) answers 503 with
    Retry-After after the acquire timeout, never hangs, and writes nothing."""
    conf = msgspec.structs.replace(
        settings,
        db_pool_max=4,
        org_max_concurrency=4,
        db_acquire_timeout=ACQUIRE_TIMEOUT,
        db_request_lock_timeout=0,
    )
    client = await aiohttp_client(create_app(conf))
    hog = await make_tenant(db, "hog")
    other = await make_tenant(db, "other")
    gids = [await new_group(client, hog, f"Locked {i}") for i in range(4)]
    uids = await bulk_users(db, hog.org_id, 4)
    gate = client.app[GATE]
    pool = gate.pool

    async with group_locked(database_url, *gids):
        patches = [
            asyncio.ensure_future(
                client.patch(f"/scim/v2/Groups/{g}", json=add([u]), headers=hog.headers)
            )
            for g, u in zip(gids, uids, strict=True)
        ]
        await wait_until(
            lambda: (
                pool.get_size() == 4 and pool.get_idle_size() == 0 and gate.in_use(hog.org_id) == 4
            ),
            "the pool to be taken",
        )
        resp, elapsed = await timed(
            client.post("/scim/v2/Users", json={"userName": "late@x.com"}, headers=other.headers)
        )
        assert resp.status == 503
        assert int(resp.headers["Retry-After"]) >= 1
        assert resp.content_type == "application/scim+json"
        body = await resp.json(content_type=None)
        assert body["status"] == "503" and "connection" in body["detail"]
        assert ACQUIRE_TIMEOUT * 0.9 <= elapsed < ACQUIRE_TIMEOUT + 1.5, elapsed
        admin, admin_elapsed = await timed(
            client.get("/admin/v1/orgs", headers={"Authorization": f"Bearer {conf.admin_token}"})
        )
        assert admin.status == 503 and admin_elapsed < ACQUIRE_TIMEOUT + 1.5
        # A scrape still answers (outbox gauges skipped), and shows the rejections, its own
        # wait for a connection included.
        scrape, scrape_elapsed = await timed(client.get("/metrics"))
        assert scrape.status == 200 and scrape_elapsed < ACQUIRE_TIMEOUT + 1.5
        assert rejected_count(await scrape.text(), "503", "pool_timeout") == 3

    results = await asyncio.wait_for(asyncio.gather(*patches), DEADLINE)
    assert [r.status for r in results] == [200] * 4
    assert await db.fetchval("SELECT count(*) FROM users WHERE user_name = 'late@x.com'") == 0
    assert await db.fetchval("SELECT count(*) FROM events WHERE org_id = $1", other.org_id) == 0
    metrics = await (await client.get("/metrics")).text()
    assert rejected_count(metrics, "503", "pool_timeout") == 3
    print(f"\npool exhausted: 503 after {elapsed:.2f} s (acquire timeout {ACQUIRE_TIMEOUT:g} s)")


async def test_the_token_rate_answers_429_with_the_buckets_retry_after(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection, tenant: Tenant
) -> None:
    """SCIM_TOKEN_RATE_LIMIT=0.5, burst 2: two requests pass, the third answers 429 with
    Retry-After 2 (the bucket refills one request in 2 s) and creates nothing; another token of
    the same organization has its own bucket; after Retry-After the token passes again."""
    conf = msgspec.structs.replace(settings, token_rate_limit=0.5, token_rate_burst=2)
    client = await aiohttp_client(create_app(conf))
    second = await make_tenant(db, "second")

    def post(t: Tenant, name: str) -> Any:
        return client.post("/scim/v2/Users", json={"userName": name}, headers=t.headers)

    assert (await post(tenant, "u1@x.com")).status == 201
    assert (await post(tenant, "u2@x.com")).status == 201
    limited = await post(tenant, "u3@x.com")
    assert limited.status == 429
    assert limited.content_type == "application/scim+json"
    assert limited.headers["Retry-After"] == "2"
    body = await limited.json(content_type=None)
    assert body["status"] == "429" and "0.5 requests per second" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM users WHERE user_name = 'u3@x.com'") == 0
    assert await db.fetchval("SELECT count(*) FROM events WHERE org_id = $1", tenant.org_id) == 2

    assert (await post(second, "v1@x.com")).status == 201  # its own bucket

    await asyncio.sleep(int(limited.headers["Retry-After"]))
    assert (await post(tenant, "u3@x.com")).status == 201
    again = await post(tenant, "u4@x.com")
    assert again.status == 429  # one request refilled, one spent
    metrics = await (await client.get("/metrics")).text()
    assert rejected_count(metrics, "429", "token_rate") == 2


async def test_no_rate_limit_by_default(
    aiohttp_client: Any, settings: Settings, tenant: Tenant
) -> None:
    """Off by default: a quick run of requests from one token all pass."""
    client = await aiohttp_client(create_app(settings))
    for _ in range(30):
        resp = await client.get("/scim/v2/Users?count=0", headers=tenant.headers)
        assert resp.status == 200


def test_token_bucket_arithmetic() -> None:
    """Refill at `rate`, capped at `burst`; the wait is the time until one request is back."""
    now = [100.0]
    buckets = TokenBuckets(rate=4.0, burst=3, clock=lambda: now[0])
    token, other = uuid.uuid4(), uuid.uuid4()
    assert [buckets.take(token) for _ in range(3)] == [None, None, None]
    assert buckets.take(token) == pytest.approx(0.25)
    now[0] += 0.125  # half a request back
    assert buckets.take(token) == pytest.approx(0.125)
    now[0] += 0.125
    assert buckets.take(token) is None
    assert buckets.take(other) is None  # a bucket per token
    now[0] += 3600  # never more than the burst after a long pause
    assert [buckets.take(token) for _ in range(4)][-1] == pytest.approx(0.25)


def test_settings() -> None:
    """Defaults: a 5 s acquire timeout, half the pool per organization, no token rate; bad
    values are reported with their variable."""
    s = load_settings({}, isatty=False)
    assert (s.db_acquire_timeout, s.org_concurrency, s.token_rate_limit) == (5.0, 5, 0.0)
    assert load_settings({"SCIM_DB_POOL_MAX": "3"}).org_concurrency == 1
    assert load_settings({"SCIM_DB_POOL_MIN": "1", "SCIM_DB_POOL_MAX": "1"}).org_concurrency == 1
    tuned = load_settings(
        {
            "SCIM_DB_ACQUIRE_TIMEOUT": "2.5",
            "SCIM_ORG_MAX_CONCURRENCY": "8",
            "SCIM_TOKEN_RATE_LIMIT": "2.5",
        }
    )
    assert (tuned.db_acquire_timeout, tuned.org_concurrency, tuned.token_burst) == (2.5, 8, 3)
    assert load_settings({"SCIM_TOKEN_RATE_BURST": "50"}).token_burst == 50
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "SCIM_DB_ACQUIRE_TIMEOUT": "0",
                "SCIM_ORG_MAX_CONCURRENCY": "0",
                "SCIM_TOKEN_RATE_LIMIT": "-1",
                "SCIM_TOKEN_RATE_BURST": "many",
            }
        )
    assert len(info.value.problems) == 4
    for name in (
        "SCIM_DB_ACQUIRE_TIMEOUT",
        "SCIM_ORG_MAX_CONCURRENCY",
        "SCIM_TOKEN_RATE_LIMIT",
        "SCIM_TOKEN_RATE_BURST",
    ):
        assert name in str(info.value)
    assert load_settings({"SCIM_TOKEN_RATE_LIMIT": "0.2"}).token_burst == 1


async def test_a_slot_is_never_lost(settings: Settings, database_url: str) -> None:
    """A request cancelled while it waits (the client hung up) or failing while it holds a
    connection gives its slot and connection back: the organization is not locked out."""
    conf = msgspec.structs.replace(settings, org_max_concurrency=1, db_acquire_timeout=DEADLINE)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        gate = Gate(pool, conf)
        org = uuid.uuid4()
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with gate.connection(org):
                holding.set()
                await release.wait()

        async def wait_for_slot() -> None:
            async with gate.connection(org):
                raise AssertionError("got the organization's only slot while it was taken")

        holder = asyncio.ensure_future(hold())
        await asyncio.wait_for(holding.wait(), DEADLINE)
        waiter = asyncio.ensure_future(wait_for_slot())
        await wait_until(lambda: gate.in_use(org) == 2, "the waiter")
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        assert gate.in_use(org) == 1
        release.set()
        await asyncio.wait_for(holder, DEADLINE)
        assert gate.in_use(org) == 0

        with pytest.raises(ZeroDivisionError):
            async with gate.connection(org) as conn:
                await conn.fetchval("SELECT 1")
                _ = 1 / 0
        async with asyncio.timeout(1.0), gate.connection(org) as conn:
            assert await conn.fetchval("SELECT 1") == 1
        assert gate.in_use(org) == 0 and pool.get_idle_size() == pool.get_size()
    finally:
        await pool.close()
