"""GET /metrics: what an operator's Prometheus scrapes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app, create_metrics_app
from scim_service.config import Settings
from scim_service.keys import METRICS, POOL
from tests.conftest import Tenant


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition text, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def scrape(client: Any, headers: dict[str, str] | None = None) -> str:
    resp = await client.get("/metrics", headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await resp.text()


async def test_request_operation_and_auth_metrics(client: Any, tenant: Tenant) -> None:
    resp = await client.post(
        "/scim/v2/Users", json={"userName": "m@example.com"}, headers=tenant.headers
    )
    uid = (await resp.json(content_type=None))["id"]
    await client.get(f"/scim/v2/Users/{uid}", headers=tenant.headers)
    await client.get(f"/scim/v2/Users/{uuid.uuid4()}", headers=tenant.headers)
    await client.get("/scim/v2/Users", headers={"Authorization": "Bearer scim_nope"})
    await client.get("/scim/v2/Users")
    text = await scrape(client)
    assert (
        sample(
            text,
            "scim_http_requests_total",
            method="GET",
            route="/scim/v2/Users/{id}",
            status="200",
        )
        == 1
    )
    assert (
        sample(
            text,
            "scim_http_requests_total",
            method="GET",
            route="/scim/v2/Users/{id}",
            status="404",
        )
        == 1
    )
    assert uid not in text, "route templates as labels, never ids"
    assert (
        sample(
            text, "scim_http_request_duration_seconds_count", method="POST", route="/scim/v2/Users"
        )
        == 1
    )
    assert (
        sample(
            text, "scim_operations_total", resource="User", operation="create", outcome="success"
        )
        == 1
    )
    assert (
        sample(
            text, "scim_operations_total", resource="User", operation="get", outcome="client_error"
        )
        == 1
    )
    assert sample(text, "scim_auth_failures_total", reason="invalid") == 1
    assert sample(text, "scim_auth_failures_total", reason="missing") == 1
    assert sample(text, "scim_outbox_pending_events", sink="log") == 1, (
        "the POST's event waits (no publisher here)"
    )
    assert sample(text, "scim_outbox_oldest_pending_age_seconds", sink="log") is not None
    assert sample(text, "scim_outbox_dead_letters", sink="log") == 0
    assert (sample(text, "scim_db_pool_connections") or 0) >= 1
    assert sample(text, "process_resident_memory_bytes") is not None


async def test_metrics_token(settings: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, metrics_token="metrics-secret-0123456789"))
    )
    assert (await client.get("/metrics")).status == 401
    assert (
        await client.get("/metrics", headers={"Authorization": "Bearer wrong-wrong-wrong"})
    ).status == 401
    await scrape(client, {"Authorization": "Bearer metrics-secret-0123456789"})


async def test_separate_metrics_port(
    settings: Settings, aiohttp_client: Any, aiohttp_server: Any
) -> None:
    """With SCIM_METRICS_PORT, /metrics is served on its own listener and not on the SCIM port."""
    app = create_app(msgspec.structs.replace(settings, metrics_port=9999))
    main = await aiohttp_client(app)
    assert (await main.get("/metrics")).status == 404
    metrics = await aiohttp_client(create_metrics_app(app))
    text = await scrape(metrics)
    assert "scim_db_pool_connections" in text
    assert app[POOL] is not None


async def test_delivery_metrics(
    settings: Settings,
    aiohttp_client: Any,
    aiohttp_server: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
) -> None:
    from aiohttp import web

    from tests.support import until

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    conf = msgspec.structs.replace(
        settings,
        publisher_enabled=True,
        webhook_url=str(server.make_url("/hook")),
        publisher_poll_interval=0.05,
    )
    client = await aiohttp_client(create_app(conf))
    await client.post("/scim/v2/Users", json={"userName": "d@example.com"}, headers=tenant.headers)

    async def delivered() -> bool:
        return (
            sample(
                await scrape(client),
                "scim_event_deliveries_total",
                sink="webhook",
                outcome="delivered",
            )
            == 1
        )

    await until(delivered, what="a delivery counted")
    text = await scrape(client)
    assert sample(text, "scim_outbox_pending_events", sink="webhook") == 0


# Series with known labels that a fresh process exposes before any traffic (alert rules and
# dashboards rely on them: deploy/prometheus/alerts.yaml). tests/processes/test_workers.py
# checks the same list with several worker processes.
FRESH_SERIES: tuple[tuple[str, dict[str, str]], ...] = (
    *(
        ("scim_event_deliveries_total", {"sink": "log", "outcome": o})
        for o in ("delivered", "failed", "dead_lettered")
    ),
    ("scim_rejected_requests_total", {"status": "503", "reason": "pool_timeout"}),
    ("scim_rejected_requests_total", {"status": "429", "reason": "org_concurrency"}),
    ("scim_auth_failures_total", {"reason": "invalid"}),
    ("scim_outbox_oldest_pending_age_seconds", {"sink": "log"}),
    ("scim_outbox_dead_letters", {"sink": "log"}),
    ("scim_deprovision_guard_tripped_organizations", {}),
    ("scim_tokens_expiring_soon", {}),
    ("scim_event_loop_lag_seconds", {}),
    ("scim_publisher_heartbeat_timestamp_seconds", {"sink": "log"}),
    ("scim_worker_restarts_total", {"slot_kind": "worker", "reason": "exited"}),
    ("scim_worker_restarts_total", {"slot_kind": "publisher", "reason": "stalled"}),
)


async def test_known_series_exist_before_any_traffic(
    settings: Settings, aiohttp_client: Any
) -> None:
    """The first scrape of a fresh process already has every series with known labels (zero
    counters), and the publisher's heartbeat is a recent Unix time."""
    import time

    from tests.support import until

    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, publisher_enabled=True))
    )
    text = await scrape(client)
    for name, labels in FRESH_SERIES:
        value = sample(text, name, **labels)
        assert value is not None, f"{name}{labels} missing from a fresh /metrics"
        if name.endswith("_total"):
            assert value == 0, (name, labels, value)

    async def beating() -> bool:
        beat = sample(
            await scrape(client), "scim_publisher_heartbeat_timestamp_seconds", sink="log"
        )
        return beat is not None and abs(time.time() - beat) < 30

    await until(beating, timeout=10)


async def test_healthz_reports_a_publisher_whose_claims_hang(
    settings: Settings, aiohttp_client: Any, database_url: str
) -> None:
    """The publisher's claim waits behind a lock someone holds on the outbox (its event loop
    still answers): its heartbeat stops, /healthz answers 503 publisher_stalled after
    SCIM_PUBLISHER_STALL_SECONDS (a liveness probe restarts the process), and 200 once claims
    go round again."""
    from tests.support import until

    hung = msgspec.structs.replace(
        settings,
        publisher_enabled=True,
        publisher_stall_seconds=1.0,
        publisher_poll_interval=0.1,
        db_lock_timeout=30.0,
    )
    client = await aiohttp_client(create_app(hung))

    async def status() -> int:
        return (await client.get("/healthz")).status

    await until(lambda: client.app[METRICS].publisher_silence() > 0, timeout=10)
    assert await status() == 200
    locker = await asyncpg.connect(database_url)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")

            async def stalled() -> bool:
                resp = await client.get("/healthz")
                return resp.status == 503 and (await resp.json())["status"] == "publisher_stalled"

            await until(stalled, timeout=10)
    finally:
        await locker.close()

    async def healthy() -> bool:
        return await status() == 200

    await until(healthy, timeout=10)
