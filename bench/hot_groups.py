"""A backlog on a few hot groups (issue 23): an IdP's initial sync of big groups leaves
thousands of versions of each group pending. Two figures:

1. **Claim time** of the publisher's claim statement with 1,000 and 100,000 events pending on
   two groups (median of 20 claims, each rolled back so the backlog stays): it should not
   grow with the depth of the queues (it did: every claim scanned every pending row).
2. **Drain rate** end to end: the publisher (in this process, webhook sink, its default
   concurrency) against an immediate receiver on 127.0.0.1, for a backlog on two groups: one
   event per request (the default) and in batch mode (SCIM_WEBHOOK_BATCH_MAX, `--batch-max`),
   alternating, `--repeat` times each; medians reported with every run.

    .venv/bin/python bench/hot_groups.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--drain 5000] [--batch-max 100] [--repeat 3]

A database of its own is created and dropped. Bounded: 100,000 rows at most, a 90 s drain cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from scim_service.config import Settings
from scim_service.events.publisher import Publisher
from scim_service.events.sinks.factory import build_sinks
from scim_service.provisioning import tenants
from scim_service.signing import generate_secret
from scim_service.store import migrate
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import connect

PAYLOAD = json.dumps({"specversion": "1.0", "type": "group.changed", "data": {}}).encode()


async def fill(conn: asyncpg.Connection, org_id: uuid.UUID, sink: str, count: int) -> None:
    """`count` pending events for `sink`, alternating between two groups (versions 1, 2, ...)."""
    await conn.execute("DELETE FROM outbox")
    await conn.execute("DELETE FROM events")
    a, b = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time,"
        " payload) SELECT gen_random_uuid(), $1,"
        " CASE WHEN n % 2 = 0 THEN $2::uuid ELSE $3::uuid END, 'Group', n / 2 + 1,"
        " 'group.changed', now(), $4::bytea"
        " FROM generate_series(0, $5 - 1) AS n ORDER BY n",
        org_id,
        a,
        b,
        PAYLOAD,
        count,
    )
    await conn.execute(
        "INSERT INTO outbox (sink, event_seq, subject, resource_version)"
        " SELECT $1, seq, subject, resource_version FROM events ORDER BY seq",
        sink,
    )
    await conn.execute("VACUUM ANALYZE events")
    await conn.execute("VACUUM ANALYZE outbox")


async def claim_ms(conn: asyncpg.Connection, sink: str, runs: int = 20) -> float:
    """Median milliseconds of one claim (64 rows asked, as the webhook lane asks), rolled back."""
    await conn.execute("SET plan_cache_mode = force_custom_plan")  # as the publisher runs it
    times = []
    for _ in range(runs):
        tx = conn.transaction()
        await tx.start()
        t0 = time.perf_counter()
        rows = await conn.fetch(Q["claim"], sink, 64, "bench", 30.0, 10, uuid.UUID(int=0), 1)
        times.append((time.perf_counter() - t0) * 1000)
        await tx.rollback()
        assert len(rows) == 2, rows  # the two heads
    return statistics.median(times)


async def drain(
    dsn: str, conn: asyncpg.Connection, org_id: uuid.UUID, count: int, batch_max: int = 1
) -> float:
    """Events per second from a backlog of `count` on two groups to an immediate receiver
    (`batch_max` > 1: webhook batch mode)."""
    received = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await fill(conn, org_id, "webhook", count)
    settings = Settings(
        database_url=dsn,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secrets=(generate_secret(),),
        webhook_batch_max=batch_max,
        log_level="warning",
    )
    publisher = Publisher(settings, build_sinks(settings))
    started = time.monotonic()
    publisher.start()
    try:
        deadline = started + 90
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        left = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await publisher.stop(deadline=5)
        await runner.cleanup()
    return (count - left) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--drain", type=int, default=5000, help="backlog to drain (events)")
    parser.add_argument("--no-claim", action="store_true", help="only the drain")
    parser.add_argument("--batch-max", type=int, default=100, help="SCIM_WEBHOOK_BATCH_MAX")
    parser.add_argument("--repeat", type=int, default=3, help="drains of each mode")
    args = parser.parse_args()
    name = f"bench_hot_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = args.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        conn = await connect(dsn)
        try:
            await migrate.migrate(conn)
            org = await tenants.create_org(conn, "bench")
            result: dict[str, Any] = {}
            for pending in () if args.no_claim else (1_000, 100_000):
                await fill(conn, org.id, "webhook", pending)
                result[f"claim_ms_{pending}_pending_2_groups"] = round(
                    await claim_ms(conn, "webhook"), 3
                )
            runs: dict[str, list[float]] = {"single": [], "batch": []}
            for _ in range(args.repeat):  # alternating, so both see the same machine
                runs["single"].append(round(await drain(dsn, conn, org.id, args.drain), 1))
                rate = await drain(dsn, conn, org.id, args.drain, args.batch_max)
                runs["batch"].append(round(rate, 1))
            key = f"drain_events_per_s_{args.drain}_on_2_groups"
            result[key] = statistics.median(runs["single"])
            result[f"{key}_batch_{args.batch_max}"] = statistics.median(runs["batch"])
            result["drain_runs"] = runs
            print(json.dumps(result, indent=2))
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
