"""Webhook endpoints managed at run time (issue 26): created through the admin API, each with
its own secret, filters, position and retries, delivered by the publisher from the events
table (no outbox row per endpoint)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec
from standardwebhooks import Webhook

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.events.pull import decode_cursor, encode_cursor
from scim_service.store.pull import START, Position
from tests.conftest import Tenant, make_tenant
from tests.support import (
    create_endpoint,
    endpoint_settings,
    free_port,
    make_user,
    retitle,
    start_receiver,
    until,
)


async def test_three_endpoints_filters_secrets_and_a_dead_one(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """The Done-when of issue 26: all events; org X's user.* only; one at a closed port. The
    first gets every event within seconds despite the dead one, each verified with its own
    secret; the second exactly its filter; deleting one takes its state with it."""
    client = await aiohttp_client(create_app(endpoint_settings(settings)))
    everything, org_users = (
        await start_receiver(aiohttp_server),
        await start_receiver(aiohttp_server),
    )
    other = await make_tenant(db, "other")
    a = await create_endpoint(client, admin_headers, url=everything.url, description="all")
    b = await create_endpoint(
        client,
        admin_headers,
        url=org_users.url,
        event_types=["user.*"],
        org_ids=[str(other.org_id)],
    )
    dead = await create_endpoint(client, admin_headers, url=f"http://127.0.0.1:{free_port()}/hook")
    assert len({a["secret"], b["secret"], dead["secret"]}) == 3
    assert a["secret"].startswith("whsec_")

    uid = await make_user(client, tenant, "x@example.com")
    await retitle(client, tenant, uid, "Guide")
    oid = await make_user(client, other, "y@example.com")
    await retitle(client, other, oid, "Pilot")
    group = await client.post("/scim/v2/Groups", json={"displayName": "ops"}, headers=other.headers)
    assert group.status == 201
    await until(lambda: len(everything.accepted) == 5, timeout=10, what="five at endpoint A")
    await until(lambda: len(org_users.accepted) == 2, timeout=10, what="two at endpoint B")
    stored = {
        str(r["id"]): bytes(r["payload"]) for r in await db.fetch("SELECT id, payload FROM events")
    }
    for entry in everything.accepted:
        assert Webhook(a["secret"]).verify(entry["body"], entry["headers"]) == entry["event"]
        assert entry["body"] == stored[entry["headers"]["webhook-id"]]
    for entry in org_users.accepted:
        assert Webhook(b["secret"]).verify(entry["body"], entry["headers"]) == entry["event"]
    assert {e["event"]["subject"] for e in org_users.accepted} == {oid}
    assert [e["event"]["type"] for e in org_users.accepted] == ["user.provisioned", "user.updated"]
    assert len(stored) == 5 and await db.fetchval("SELECT count(*) FROM outbox") <= 5

    listed = await (await client.get("/admin/v1/endpoints", headers=admin_headers)).json()
    by_id = {e["id"]: e for e in listed["endpoints"]}
    await until(
        lambda: _owed(db, dead["endpoint"]["id"], 5), timeout=10, what="the dead one owes five"
    )
    assert by_id[a["endpoint"]["id"]]["description"] == "all"
    assert "secret" not in by_id[a["endpoint"]["id"]]

    resp = await client.delete(
        f"/admin/v1/endpoints/{dead['endpoint']['id']}", headers=admin_headers
    )
    assert resp.status == 204
    assert await db.fetchval("SELECT count(*) FROM webhook_endpoint_events") == 0
    gone = await client.get(f"/admin/v1/endpoints/{dead['endpoint']['id']}", headers=admin_headers)
    assert gone.status == 404
    stored_text = await db.fetchval(
        "SELECT string_agg(t::text, ' ') FROM (SELECT w::text AS t FROM webhook_endpoints w"
        " UNION ALL SELECT a::text FROM admin_audit a) x"
    )
    assert a["secret"] not in stored_text and a["secret"][6:] not in stored_text
    actions = [r["action"] for r in await db.fetch("SELECT action FROM admin_audit ORDER BY id")]
    assert actions == ["endpoint.create"] * 3 + ["endpoint.delete"]


async def _owed(db: asyncpg.Connection, endpoint_id: str, n: int) -> bool:
    count = await db.fetchval(
        "SELECT count(*) FROM webhook_endpoint_events WHERE endpoint_id = $1::text::uuid",
        endpoint_id,
    )
    return bool(count == n)


async def test_order_per_resource_holds_through_failures(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    admin_headers: dict[str, str],
) -> None:
    """An endpoint that fails one resource's first event and then recovers gets that resource's
    versions in order; other resources are not held up meanwhile."""
    client = await aiohttp_client(create_app(endpoint_settings(settings)))
    rec = await start_receiver(aiohttp_server)
    failing: set[str] = set()
    fails = {"left": 3}

    async def respond(entry: dict[str, Any]) -> int:
        if entry["event"]["subject"] in failing and fails["left"] > 0:
            fails["left"] -= 1
            return 503
        return 200

    rec.respond = respond
    await create_endpoint(client, admin_headers, url=rec.url)
    slow = await make_user(client, tenant, "slow@example.com")
    failing.add(slow)
    await until(lambda: True)
    for i in range(4):
        await retitle(client, tenant, slow, f"t{i}")
    fast = await make_user(client, tenant, "fast@example.com")
    await until(lambda: fast in rec.versions(), timeout=10, what="the other resource")
    await until(lambda: len(rec.versions().get(slow, [])) == 5, timeout=10, what="all five")
    assert rec.versions()[slow] == [1, 2, 3, 4, 5]
    assert fails["left"] == 0


async def test_paused_endpoint_keeps_its_position(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    admin_headers: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(endpoint_settings(settings)))
    rec = await start_receiver(aiohttp_server)
    made = await create_endpoint(client, admin_headers, url=rec.url)
    path = f"/admin/v1/endpoints/{made['endpoint']['id']}"
    resp = await client.patch(path, json={"paused": True}, headers=admin_headers)
    assert resp.status == 200 and (await resp.json())["paused"] is True
    await make_user(client, tenant, "p@example.com")
    await asyncio.sleep(1.0)
    assert rec.accepted == []
    resp = await client.patch(path, json={"paused": False}, headers=admin_headers)
    assert resp.status == 200
    await until(lambda: len(rec.accepted) == 1, timeout=10, what="delivered after resuming")


async def test_forbidden_addresses_are_refused(
    aiohttp_client: Any, settings: Settings, admin_headers: dict[str, str]
) -> None:
    """Loopback, cloud metadata, private and unspecified addresses are a 400 unless the
    allow-list names them; bad filters and URLs too."""
    client = await aiohttp_client(
        create_app(
            endpoint_settings(settings, publisher_enabled=False, webhook_allowed_networks=())
        )
    )
    for url in (
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://localhost/",
        "ftp://example.com/",
        "http://u:p@example.com/",
    ):
        resp = await client.post("/admin/v1/endpoints", json={"url": url}, headers=admin_headers)
        assert resp.status == 400, url
        body = await resp.json(content_type=None)
        assert body["scimType"] == "invalidValue"
    resp = await client.post(
        "/admin/v1/endpoints",
        json={"url": "http://192.0.2.1/", "event_types": ["nope.*"]},
        headers=admin_headers,
    )
    assert resp.status == 400


async def test_a_forbidden_address_at_delivery_is_a_dead_letter(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """A name that resolves to a refused address at delivery: the event is dead at once, with
    that reason (here: the allow-list narrowed after the endpoint was created)."""
    app_settings = endpoint_settings(settings)
    creator = await aiohttp_client(
        create_app(msgspec.structs.replace(app_settings, publisher_enabled=False))
    )
    made = await create_endpoint(creator, admin_headers, url=f"http://localhost:{free_port()}/hook")
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(app_settings, webhook_allowed_networks=()))
    )
    await make_user(client, tenant, "z@example.com")

    async def dead() -> Any:
        return await db.fetchrow(
            "SELECT dead, last_error FROM webhook_endpoint_events WHERE endpoint_id = $1::text::uuid",
            made["endpoint"]["id"],
        )

    await until(dead, timeout=10, what="a dead letter")
    row = await dead()
    assert row["dead"] and "loopback" in row["last_error"]


async def test_start_now_or_backfill_from_a_cursor(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    admin_headers: dict[str, str],
    db: asyncpg.Connection,
) -> None:
    """A new endpoint starts from now by default, or from a pull cursor (backfill); a cursor
    this service did not hand out is a 400.

    "Now" is the pull API's head: the oldest transaction still open anywhere on the database
    server (xmin). When another session's transaction is open (on a shared server, another
    test's), an event committed moments before the endpoint was made lies after that head and
    is delivered too: never fewer events, possibly a few more. So the test reads the start
    position the endpoint was given and expects exactly what lies after it."""
    client = await aiohttp_client(create_app(endpoint_settings(settings)))
    before = await make_user(client, tenant, "before@example.com")
    now, back = await start_receiver(aiohttp_server), await start_receiver(aiohttp_server)
    head = int(await db.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
    made = await create_endpoint(client, admin_headers, url=now.url)
    start = decode_cursor(made["endpoint"]["cursor"], "start")
    before_at = Position(
        int(await db.fetchval("SELECT xid::text FROM events WHERE subject = $1::uuid", before)),
        int(await db.fetchval("SELECT seq FROM events WHERE subject = $1::uuid", before)),
    )
    assert start.xid >= head, "it starts at the head as it was when made, not from the beginning"
    await create_endpoint(client, admin_headers, url=back.url, start=encode_cursor(START))
    bad = await client.post(
        "/admin/v1/endpoints", json={"url": back.url, "start": "nope"}, headers=admin_headers
    )
    assert bad.status == 400
    after = await make_user(client, tenant, "after@example.com")
    await until(lambda: len(back.accepted) == 2, timeout=10, what="backfilled and new")
    expected = ([before] if before_at > start else []) + [after]
    await until(lambda: len(now.accepted) == len(expected), timeout=10, what="from its start")
    assert [a["event"]["subject"] for a in now.accepted] == expected


async def test_an_org_admin_lists_only_endpoints_carrying_its_events(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """Managing endpoints needs `operator`; an org:admin may list those that carry its
    organization's events (all organizations, or its own among them), nothing more."""
    client = await aiohttp_client(create_app(endpoint_settings(settings, publisher_enabled=False)))
    other = await make_tenant(db, "other")
    url = "http://127.0.0.1:9/hook"
    mine = await create_endpoint(client, admin_headers, url=url, org_ids=[str(tenant.org_id)])
    every = await create_endpoint(client, admin_headers, url=url)
    await create_endpoint(client, admin_headers, url=url, org_ids=[str(other.org_id)])
    resp = await client.post(
        "/admin/v1/credentials",
        json={"scope": "org:admin", "org_ids": [str(tenant.org_id)]},
        headers=admin_headers,
    )
    org_admin = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    listed = await (await client.get("/admin/v1/endpoints", headers=org_admin)).json()
    assert {e["id"] for e in listed["endpoints"]} == {
        mine["endpoint"]["id"],
        every["endpoint"]["id"],
    }
    refused = await client.post("/admin/v1/endpoints", json={"url": url}, headers=org_admin)
    assert refused.status == 403
    one = await client.get(f"/admin/v1/endpoints/{mine['endpoint']['id']}", headers=org_admin)
    assert one.status == 403


async def test_an_idle_endpoint_idles(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """With nothing to deliver an endpoint waits for a NOTIFY or its poll: it does not record
    a position each time the snapshot's xmin moves (its own writes move it: that loop committed
    about 2,600 transactions a second before this test)."""
    client = await aiohttp_client(
        create_app(endpoint_settings(settings, publisher_poll_interval=1.0))
    )
    await create_endpoint(client, admin_headers, url=(await start_receiver(aiohttp_server)).url)
    await asyncio.sleep(1.5)  # its runner started and went idle
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    before = await db.fetchval(query)
    await asyncio.sleep(2.0)
    assert (await db.fetchval(query)) - before < 100


async def test_an_endpoint_failing_for_too_long_is_paused_and_resumes_where_it_stopped(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    admin_headers: dict[str, str],
) -> None:
    """SCIM_WEBHOOK_ENDPOINT_DISABLE_AFTER_HOURS: every attempt failing for that long pauses the
    endpoint (with the reason shown); resuming delivers what it owed, in order."""
    hours = 0.5 / 3600  # half a second
    client = await aiohttp_client(
        create_app(endpoint_settings(settings, webhook_endpoint_disable_after_hours=hours))
    )
    rec = await start_receiver(aiohttp_server)
    down = {"on": True}

    async def respond(entry: dict[str, Any]) -> int:
        return 503 if down["on"] else 200

    rec.respond = respond
    made = await create_endpoint(client, admin_headers, url=rec.url)
    path = f"/admin/v1/endpoints/{made['endpoint']['id']}"
    uid = await make_user(client, tenant, "d@example.com")
    await retitle(client, tenant, uid, "Later")

    async def paused() -> bool:
        body = await (await client.get(path, headers=admin_headers)).json()
        return bool(body["paused"] and body["disabled_reason"])

    await until(paused, timeout=10, what="paused automatically")
    down["on"] = False
    resp = await client.patch(path, json={"paused": False}, headers=admin_headers)
    body = await resp.json()
    assert resp.status == 200 and body["disabled_reason"] is None and body["failing_since"] is None
    await until(lambda: rec.versions().get(uid) == [1, 2], timeout=10, what="resumed in order")


async def test_a_dead_letter_holds_its_resource_until_retried(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    tenant: Tenant,
    admin_headers: dict[str, str],
) -> None:
    """A permanent refusal (HTTP 410) is a dead letter at that endpoint at once; that resource's
    later events wait behind it, other resources go on; retrying it delivers all, in order."""
    client = await aiohttp_client(create_app(endpoint_settings(settings)))
    rec = await start_receiver(aiohttp_server)
    gone = {"on": True}

    async def respond(entry: dict[str, Any]) -> int:
        return 410 if gone["on"] and entry["event"]["subject"] == first else 200

    first = ""
    rec.respond = respond
    made = await create_endpoint(client, admin_headers, url=rec.url)
    path = f"/admin/v1/endpoints/{made['endpoint']['id']}"
    first = await make_user(client, tenant, "gone@example.com")
    await retitle(client, tenant, first, "Waits")
    other = await make_user(client, tenant, "other@example.com")
    await until(lambda: other in rec.versions(), timeout=10, what="the other resource")

    async def counts() -> tuple[int, int]:
        body = await (await client.get(path, headers=admin_headers)).json()
        return body["pending"], body["dead"]

    await until(lambda: _is(counts(), (1, 1)), timeout=10, what="one dead, one waiting")
    assert first not in rec.versions()
    gone["on"] = False
    resp = await client.post(f"{path}/dead-letters/retry", headers=admin_headers)
    assert resp.status == 200 and (await resp.json()) == {"retried": 1}
    await until(lambda: rec.versions().get(first) == [1, 2], timeout=10, what="both, in order")


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
