"""The sidecar's lifecycle, as a real process: graceful SIGTERM, fast and clear startup failures."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from tests.conftest import REPO, Tenant
from tests.support import (
    free_port,
    lock_table,
    refused,
    serve_process,
    service_env,
    start,
    wait_ready,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_drains_in_flight_requests(
    database_url: str, tenant: Tenant, db: asyncpg.Connection, workers: str
) -> None:
    """SIGTERM: /readyz is 503 at once, the listener closes after the drain delay, the request in
    flight still completes, and the process exits 0; with one process and with a supervisor of
    two workers (whichever worker holds the request, whichever answers /readyz)."""
    async with serve_process(
        database_url,
        SCIM_SHUTDOWN_DRAIN_DELAY="1.5",
        SCIM_SHUTDOWN_GRACE="15",
        SCIM_PUBLISHER_ENABLED="false",
        SCIM_WORKERS=workers,
        # The in-flight request waits on a table lock: SCIM_DB_LOCK_TIMEOUT (10 s) bounds it,
        # not the API's 1 s request lock timeout.
        SCIM_DB_REQUEST_LOCK_TIMEOUT="0",
    ) as (proc, base):
        await wait_ready(base)
        async with aiohttp.ClientSession() as session:
            resp = await session.post(
                f"{base}/scim/v2/Users",
                json={"userName": "slow@example.com"},
                headers=tenant.headers,
            )
            uid = (await resp.json(content_type=None))["id"]
            # Hold the users table so the next request is still running when SIGTERM arrives.
            async with lock_table(database_url, "users"):
                in_flight = asyncio.create_task(
                    session.get(f"{base}/scim/v2/Users/{uid}", headers=tenant.headers)
                )
                await asyncio.sleep(0.5)
                assert not in_flight.done()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                async with aiohttp.ClientSession() as other:
                    async with other.get(f"{base}/readyz") as ready:
                        assert ready.status == 503, "not ready the moment shutdown begins"
                        assert (await ready.json())["status"] == "draining"
                    async with other.get(f"{base}/healthz") as health:
                        assert health.status == 200
                deadline = time.monotonic() + 5
                while not await refused(base):
                    assert time.monotonic() < deadline, "the listener never closed"
                    await asyncio.sleep(0.1)
                assert not in_flight.done(), "the in-flight request is still being served"
            # The lock is released: the request finishes within the grace period.
            answer = await asyncio.wait_for(in_flight, 10)
            assert answer.status == 200
            assert (await answer.json(content_type=None))["id"] == uid
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_shutdown_abandons_a_stuck_delivery_without_losing_it(
    database_url: str, tenant: Tenant, db: asyncpg.Connection, aiohttp_server: Any
) -> None:
    """The receiver hangs; on SIGTERM the publisher gives up its batch after the grace period,
    the process exits 0, and the event is still pending for the next publisher."""
    got = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        got.set()
        await asyncio.sleep(3600)
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", hang)
    server = await aiohttp_server(receiver)
    async with serve_process(
        database_url,
        SCIM_SHUTDOWN_GRACE="1",
        SCIM_WEBHOOK_URL=str(server.make_url("/hook")),
        SCIM_WEBHOOK_TIMEOUT="60",
        SCIM_PUBLISHER_LEASE_SECONDS="600",
        SCIM_PUBLISHER_POLL_INTERVAL="0.05",
    ) as (proc, base):
        await wait_ready(base)
        async with aiohttp.ClientSession() as session:
            resp = await session.post(
                f"{base}/scim/v2/Users",
                json={"userName": "stuck@example.com"},
                headers=tenant.headers,
            )
            assert resp.status == 201
        await asyncio.wait_for(got.wait(), 15)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, out.decode(errors="replace")[-4000:]
        assert time.monotonic() - started < 10
    row = await db.fetchrow(
        "SELECT attempts, dead, lease_owner, lease_until FROM outbox WHERE sink = 'webhook'"
    )
    assert row is not None, "the event is still waiting to be delivered"
    assert row["attempts"] == 0 and not row["dead"], "an abandoned batch is not a failed attempt"
    assert row["lease_owner"] is None and row["lease_until"] is None, (
        "the lease was handed back: the next publisher need not wait for it to run out"
    )


async def test_unreachable_database_fails_fast_with_a_clear_message() -> None:
    port = free_port()  # nothing listens there
    proc = await start(
        service_env(
            DATABASE_URL=f"postgresql://scim:hunter2@127.0.0.1:{port}/scimdb",
            SCIM_DB_CONNECT_TIMEOUT="1",
            SCIM_PORT=str(free_port()),
        )
    )
    started = time.monotonic()
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 1, text
    assert time.monotonic() - started < 15
    assert f"cannot reach the database at 127.0.0.1:{port}/scimdb within 1s" in text
    assert "hunter2" not in text


async def test_bad_configuration_fails_before_anything_starts() -> None:
    proc = await start(service_env(SCIM_PORT="http", SCIM_EVENTS_RETRY_SCHEDULE="soon"))
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"SCIM_PORT" in out and b"SCIM_EVENTS_RETRY_SCHEDULE" in out


def test_config_check_masks_secrets() -> None:
    env = service_env(
        DATABASE_URL="postgresql://scim:hunter2@db.internal:5432/scim",
        SCIM_ADMIN_TOKEN="admin-token-0123456789abcdef",
        SCIM_WEBHOOK_URL="https://hooks.example.com/scim",
        SCIM_METRICS_TOKEN="metrics-token-0123456789",
    )
    secret = subprocess.run(
        [sys.executable, "-m", "scim_service", "events", "keygen", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    keys = json.loads(secret.stdout)
    env |= {
        "SCIM_WEBHOOK_SECRET": keys["webhook_secret"],
        "SCIM_WEBHOOK_SIGNING_KEY": keys["signing_key"],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "scim_service", "config", "check", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for secret_value in (
        "hunter2",
        "admin-token-0123456789abcdef",
        "metrics-token-0123456789",
        keys["webhook_secret"],
        keys["signing_key"],
    ):
        assert secret_value not in proc.stdout
    values = json.loads(proc.stdout)
    assert values["database_url"] == "postgresql://scim:***@db.internal:5432/scim"
    assert values["admin_token"] == "<set>"
    assert values["sinks"] == ["webhook"]
    assert values["scim_base_url"] == "http://127.0.0.1:8080/scim/v2"


async def test_a_port_in_use_is_named_before_anything_starts(database_url: str) -> None:
    """The listening socket is bound first: a port already taken is reported as such (not as a
    database error), before migrations, the publisher or any connection."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await start(service_env(DATABASE_URL=database_url, SCIM_PORT=str(port)))
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode == 1, lines
    [fatal] = [line for line in lines if line["level"] == "error"]
    assert fatal["event"] == "startup_failed"
    assert f"cannot listen on 127.0.0.1:{port}" in fatal["message"]
    assert "database" not in fatal["message"]
    assert not any(line["event"] in ("publisher_started", "migration_applied") for line in lines)
