"""Event delivery scenarios: webhook commit-to-receipt latency at a controlled rate, NATS
relay throughput from a pre-filled outbox, and the bare claim loop of the same database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import dataset
import loader
import procs
import svc

from scim_service.config import Settings
from scim_service.events import envelope as ev
from scim_service.events.emitter import Emitter
from scim_service.store import outbox
from scim_service.store.db import QUERIES as Q

HERE = Path(__file__).resolve().parent
BATCH = Settings().publisher_batch_size  # the publisher's default claim size
# POSTs in flight at most in the open-loop client: enough for 1,000/s at 250 ms each, so the
# client does not turn into a closed loop before the server is far behind.
INFLIGHT = 256


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]


def webhook(
    dsn: str,
    token: str,
    org_id: uuid.UUID,
    logdir: Path,
    *,
    rate: float,
    sql_rate: float,
    seconds: float,
    poll: float,
    source: str,
) -> dict[str, Any]:
    """Commit-to-receipt latency of webhook deliveries, two ways:

    1. POST /Users through the API at `rate` (open loop); commit time ~ when the POST returned
       (the service answers after COMMIT), also shown against the CloudEvent `time` (the
       transaction's start, so an upper bound).
    2. The API's own event write (store.outbox.insert_events, in a transaction, on 8
       connections) at `sql_rate` events/s, for rates the HTTP API cannot reach on this
       machine; commit time = when COMMIT returned to the producer.
    """
    port = procs.free_port()
    receiver = procs.start(
        "webhook-receiver",
        [sys.executable, str(HERE / "receiver.py"), str(port)],
        env=svc.env(dsn),
        log=logdir / "receiver.log",
        cwd=HERE,
    )
    service = None
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/count", receiver, 30)
        service = svc.start(
            "scim-webhook",
            dsn,
            logdir,
            SCIM_PUBLISHER_ENABLED="true",
            SCIM_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            SCIM_PUBLISHER_POLL_INTERVAL=str(poll),
        )
        url = f"{service.base}/scim/v2/Users"

        def post(r: float, d: float, tag: str) -> dict[str, Any]:
            out = logdir / f"ratepost-{tag}.json"
            subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    str(HERE / "ratepost.py"),
                    url,
                    token,
                    str(r),
                    str(d),
                    str(INFLIGHT),
                    tag,
                    str(out),
                ],
                check=True,
                timeout=d + 60,
            )
            return json.loads(out.read_text())

        post(min(rate, 200.0), 1.0, f"warm{uuid.uuid4().hex[:6]}")  # warm-up, not measured
        run = post(rate, seconds, f"hook{uuid.uuid4().hex[:6]}")
        ok = {r[3]: r for r in run["results"] if r[2] == 201 and r[3]}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            received = {row[1] for row in _get_json(f"http://127.0.0.1:{port}/dump")}
            if all(uid in received for uid in ok):
                break
            time.sleep(0.25)
        dump = _get_json(f"http://127.0.0.1:{port}/dump")
        after_return: list[float] = []
        after_time: list[float] = []
        for received_at, subject, event_time, _ in dump:
            if subject in ok:
                after_return.append((received_at - ok[subject][1]) * 1000)
                t = datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp()
                after_time.append((received_at - t) * 1000)
        sent = run["results"]
        duration = max(r[1] for r in sent) - min(r[0] for r in sent) if sent else 0
        sql = asyncio.run(_sql_producer(dsn, org_id, sql_rate, seconds, source))
        sql_ok = sql["commits"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            received = {row[1] for row in _get_json(f"http://127.0.0.1:{port}/dump")}
            if all(s in received for s in sql_ok):
                break
            time.sleep(0.25)
        sql_latency = [
            (received_at - sql_ok[subject]) * 1000
            for received_at, subject, _, _ in _get_json(f"http://127.0.0.1:{port}/dump")
            if subject in sql_ok
        ]
        mem = procs.tree_memory_kb(service.proc.pid)
        return {
            "sql_producer": {
                "target_rate": sql_rate,
                "committed": len(sql_ok),
                "achieved_rate": sql["achieved_rate"],
                "delivered": len(sql_latency),
                "missing": len(sql_ok) - len(sql_latency),
                "commit_ms": sql["commit_ms"],
                "latency_from_commit_ms": {
                    "p50": _pct(sql_latency, 50),
                    "p99": _pct(sql_latency, 99),
                    "max": max(sql_latency, default=float("nan")),
                },
            },
            "target_rate": rate,
            "planned": run["planned"],
            "posted": len(sent),
            "created": len(ok),
            "failed": len(sent) - len(ok),
            "send_seconds": run["sent_seconds"],
            "achieved_rate": len(ok) / duration if duration else 0.0,
            # The asked rate held: every planned POST created a user, and they were created
            # at >= 95% of the rate (the client's sending fell behind by at most 5%).
            "sustained": bool(
                len(ok) == run["planned"] and duration and len(ok) / duration >= 0.95 * rate
            ),
            "delivered": len(after_return),
            "missing": len(ok) - len(after_return),
            "latency_from_post_return_ms": {
                "p50": _pct(after_return, 50),
                "p99": _pct(after_return, 99),
                "max": max(after_return, default=float("nan")),
            },
            "latency_from_event_time_ms": {
                "p50": _pct(after_time, 50),
                "p99": _pct(after_time, 99),
                "max": max(after_time, default=float("nan")),
            },
            "post_latency_ms": {
                "p50": _pct([(r[1] - r[0]) * 1000 for r in sent], 50),
                "p99": _pct([(r[1] - r[0]) * 1000 for r in sent], 99),
            },
            "server_memory_kb": mem,
        }
    finally:
        if service is not None:
            procs.stop(service.proc)
        procs.stop(receiver)


async def _sql_producer(
    dsn: str, org_id: uuid.UUID, rate: float, seconds: float, source: str
) -> dict[str, Any]:
    emitter = Emitter(source, ("webhook",))
    attrs = loader.stored_user_attrs(dataset.post_body("sql.producer@example.com"))
    commits: dict[str, float] = {}
    commit_ms: list[float] = []
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
    assert pool is not None
    try:
        sem = asyncio.Semaphore(8)

        async def one() -> None:
            subject = uuid.uuid4()
            try:
                async with pool.acquire() as conn:
                    t0 = time.time()
                    async with conn.transaction():
                        await outbox.insert_events(
                            conn,
                            emitter.rows(
                                org_id, [ev.user_provisioned(org_id, subject, attrs)], [1]
                            ),
                        )
                    done = time.time()
                commits[str(subject)] = done
                commit_ms.append((done - t0) * 1000)
            finally:
                sem.release()

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for n in range(int(rate * seconds)):
            delay = start + n / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            if loop.time() > start + seconds + 30:
                sem.release()
                break
            tasks.append(asyncio.create_task(one()))
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        elapsed = loop.time() - start
    finally:
        await pool.close()
    return {
        "commits": commits,
        "achieved_rate": len(commits) / elapsed if elapsed else 0.0,
        "commit_ms": {"p50": _pct(commit_ms, 50), "p99": _pct(commit_ms, 99)},
    }


async def claim_plan(conn: asyncpg.Connection, sink: str) -> str:
    """The first scan of the claim's plan, as the publisher's connections plan it (a custom
    plan for these values): which table drives it tells whether a claim's cost follows the
    pending set (outbox) or the whole event history (events)."""
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    try:
        rows = await conn.fetch("EXPLAIN " + _literal_claim(sink))
    finally:
        await conn.execute("RESET plan_cache_mode")
    scans = [r[0].strip().lstrip("-> ").split("  (cost")[0] for r in rows if " Scan " in r[0]]
    return scans[0] if scans else "?"


# The claim's other parameters ($3 lease owner, $4 lease seconds, $5 max attempts; $6, the
# first subject, is passed beside them), as the publisher passes them (store.outbox.claim).
LEASE_OWNER = "bench-claim-loop"
CLAIM_EXTRA = (LEASE_OWNER, Settings().publisher_lease_seconds, Settings().events_max_attempts)


def _literal_claim(sink: str) -> str:
    literals = {
        "$1": "'" + sink.replace("'", "''") + "'",
        "$2": str(BATCH),
        "$3": f"'{LEASE_OWNER}'",
        "$4": repr(float(CLAIM_EXTRA[1])),
        "$5": str(CLAIM_EXTRA[2]),
        "$6": "'00000000-0000-0000-0000-000000000000'::uuid",
        "$7": "1",
    }
    sql = Q["claim"]
    for key in sorted(literals, reverse=True):
        sql = sql.replace(key, literals[key])
    return sql


async def _count(conn: asyncpg.Connection, sink: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sink = $1", sink))


async def nats_relay(
    dsn: str, org_id: uuid.UUID, logdir: Path, *, events: int, nats_url: str, source: str
) -> dict[str, Any]:
    tag = datetime.now().strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    stream, prefix = f"SCIMBENCH_{tag}", f"scimbench{tag}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM outbox")
        await loader.prefill_outbox(conn, org_id, "nats", events, source)
        plan = await claim_plan(conn, "nats")
        history = await conn.fetchval("SELECT count(*) FROM events")
        started = time.monotonic()
        publisher = svc.start(
            "scim-publisher",
            dsn,
            logdir,
            role="publisher",
            SCIM_NATS_URL=nats_url,
            SCIM_NATS_STREAM=stream,
            SCIM_NATS_SUBJECT_PREFIX=prefix,
        )
        ready = time.monotonic()
        first: tuple[float, int] | None = None
        end = None
        deadline = ready + 120
        try:
            while time.monotonic() < deadline:
                left = await _count(conn, "nats")
                now = time.monotonic()
                if first is None and left < events:
                    first = (now, left)
                if left == 0:
                    end = now
                    break
                if not publisher.proc.alive():
                    raise RuntimeError(f"publisher exited:\n{publisher.proc.tail()}")
                await asyncio.sleep(0.1)
            mem = procs.memory_kb(publisher.proc.pid)
        finally:
            procs.stop(publisher.proc)
        result: dict[str, Any] = {
            "events": events,
            "events_table_rows": history,
            "claim_plan": plan,
            "stream": stream,
            "startup_seconds": ready - started,
            "server_memory_kb": mem,
        }
        if end is None or first is None:
            result["error"] = "outbox not empty after 120 s"
            result["left"] = await _count(conn, "nats")
            return result
        result["seconds_from_http_ready"] = end - ready
        result["rate_from_http_ready"] = events / (end - ready)
        result["seconds_steady"] = end - first[0]
        result["rate_steady"] = first[1] / (end - first[0]) if end > first[0] else float("nan")
        return result
    finally:
        await conn.close()
        await _delete_stream(nats_url, stream)


async def _delete_stream(nats_url: str, stream: str) -> None:
    try:
        import nats

        nc = await asyncio.wait_for(nats.connect(nats_url), timeout=5)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()
    except Exception as exc:
        procs.eprint(f"  (could not delete NATS stream {stream}: {type(exc).__name__})")


async def claim_loop(dsn: str, org_id: uuid.UUID, *, events: int, source: str) -> dict[str, Any]:
    """The publisher's claim + delete statements alone (no sink), in its transaction shape,
    on a connection set up as the publisher sets up its own (force_custom_plan)."""
    sink = "nats"  # the sink the relay uses, so both are planned alike
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM outbox")
        ids = await loader.prefill_outbox(conn, org_id, sink, events, source)
        plan = await claim_plan(conn, sink)
        history = await conn.fetchval("SELECT count(*) FROM events")
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        done = 0
        batches = 0
        times: list[float] = []
        started = time.monotonic()
        deadline = started + 120
        while time.monotonic() < deadline and batches <= events // BATCH + 10:
            t0 = time.perf_counter()
            async with conn.transaction():
                rows = await conn.fetch(
                    Q["claim"], sink, BATCH, *CLAIM_EXTRA, outbox.FIRST_SUBJECT, 1
                )
                if not rows:
                    break
                await conn.execute(Q["delivered"], sink, [r["event_seq"] for r in rows])
            times.append((time.perf_counter() - t0) * 1000)
            done += len(rows)
            batches += 1
        elapsed = time.monotonic() - started
        # Leave the tables as they were, so the relay that follows sees the same sizes.
        await conn.execute("RESET plan_cache_mode")
        await conn.execute("DELETE FROM outbox WHERE sink = $1", sink)
        await conn.execute("DELETE FROM events WHERE id = ANY($1::uuid[])", ids)
        await conn.execute("VACUUM ANALYZE events")
        await conn.execute("VACUUM ANALYZE outbox")
        return {
            "events": done,
            "events_table_rows": history,
            "claim_plan": plan,
            "batch": BATCH,
            "seconds": elapsed,
            "rate": done / elapsed if elapsed else 0.0,
            "batch_ms_median": statistics.median(times) if times else float("nan"),
        }
    finally:
        await conn.close()


def long_poll(
    dsn: str, org_id: uuid.UUID, logdir: Path, *, samples: int, idle_waiters: int, source: str
) -> dict[str, Any]:
    """Commit-to-receipt latency of the pull API's long polling (issue 13): one consumer keeps
    `GET /admin/v1/events?wait=30` open, `idle_waiters` more wait on an organization that never
    writes (so every NOTIFY wakes them too), and a SQL writer commits one event at a time at
    random 20-60 ms intervals; latency = receipt of the answer - COMMIT returning."""
    admin = uuid.uuid4().hex
    service = svc.start(
        "scim-longpoll", dsn, logdir, SCIM_ADMIN_TOKEN=admin, SCIM_PUBLISHER_ENABLED="false"
    )
    try:
        return asyncio.run(
            _long_poll(service.base, admin, dsn, org_id, samples, idle_waiters, source)
        )
    finally:
        procs.stop(service.proc)


async def _long_poll(
    base: str, admin: str, dsn: str, org_id: uuid.UUID, samples: int, idle: int, source: str
) -> dict[str, Any]:
    import random

    import aiohttp

    headers = {"Authorization": f"Bearer {admin}"}
    url = f"{base}/admin/v1/events"
    emitter = Emitter(source, ("log",))
    attrs = loader.stored_user_attrs(dataset.post_body("long.poll@example.com"))
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = asyncio.Event()
    all_in = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as session:

        async def get(**params: str) -> dict[str, Any]:
            async with session.get(url, params=params, headers=headers) as resp:
                resp.raise_for_status()
                return dict(await resp.json())

        cursor = None
        for _ in range(100_000):  # to the end of what exists now
            page = await get(limit="1000", **({"after": cursor} if cursor else {}))
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert cursor is not None

        async def consumer(after: str) -> None:
            while not stop.is_set():
                page = await get(after=after, wait="30", org_id=str(org_id))
                now = time.time()
                for event in page["events"]:
                    received.setdefault(event["subject"], now)
                if len(received) >= samples:
                    all_in.set()
                after = page["next_cursor"]

        async def idler() -> None:
            while not stop.is_set():
                await get(wait="30", org_id=str(uuid.uuid4()), after=cursor)

        tasks = [asyncio.create_task(consumer(cursor))]
        tasks += [asyncio.create_task(idler()) for _ in range(idle)]
        conn = await asyncpg.connect(dsn)
        try:
            await asyncio.sleep(0.5)
            rng = random.Random(13)  # noqa: S311 - intervals, not secrets
            for _ in range(samples):
                await asyncio.sleep(rng.uniform(0.02, 0.06))
                subject = uuid.uuid4()
                async with conn.transaction():
                    await outbox.insert_events(
                        conn,
                        emitter.rows(org_id, [ev.user_provisioned(org_id, subject, attrs)], [1]),
                    )
                committed[str(subject)] = time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), timeout=10)
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await conn.close()
    latency = [(received[s] - c) * 1000 for s, c in committed.items() if s in received]
    return {
        "samples": len(committed),
        "received": len(latency),
        "missing": len(committed) - len(latency),
        "idle_waiters": idle,
        "latency_from_commit_ms": {
            "p50": _pct(latency, 50),
            "p99": _pct(latency, 99),
            "max": max(latency, default=float("nan")),
        },
    }
