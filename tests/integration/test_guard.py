"""The mass-deprovisioning guard: a mass deactivation trips it, writes still succeed, the
organization's user.deprovisioned deliveries are held (and later events of those users wait
behind them), directory.guard_tripped is delivered at once, and a release delivers the held
events in order to a real webhook receiver; a discard drops them."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.provisioning.guard import GuardPolicy, trips
from tests.conftest import Tenant, make_tenant
from tests.support import (
    GOLDEN,
    PATCH_OP,
    Receiver,
    cli,
    make_user,
    ok_json,
    publisher_settings,
    retitle,
    shape,
    until,
)
from tests.support import fixture_receiver as fixture_receiver

GUARDED = {
    "deprovision_guard_percent": 25.0,
    "deprovision_guard_min_users": 5,
    "deprovision_guard_window_minutes": 15.0,
}


async def deactivate(client: Any, tenant: Tenant, user_id: str) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    resp = await client.patch(f"/scim/v2/Users/{user_id}", json=body, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json(content_type=None))["active"] is False


def types(receiver: Receiver) -> list[str]:
    return [e["event"]["type"] for e in receiver.accepted]


def test_threshold_needs_both_the_count_and_the_share() -> None:
    """At least min_users and at least percent % of the users active when the window began."""
    policy = GuardPolicy(percent=25.0, min_users=20)
    assert not trips(policy, 19, 0), "19 users are fewer than 20"
    assert trips(policy, 20, 60), "20 of 80 is 25 %"
    assert not trips(policy, 20, 61), "20 of 81 is under 25 %"
    assert trips(policy, 100, 0)


async def test_mass_deactivation_holds_deprovisions_until_released(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    conf = publisher_settings(settings, receiver, **GUARDED)
    client = await aiohttp_client(create_app(conf))
    other = await make_tenant(db, "bystander")
    users = [await make_user(client, tenant, f"u{i}@example.com") for i in range(12)]
    bystanders = [await make_user(client, other, f"b{i}@example.com") for i in range(4)]
    await until(lambda: len(receiver.accepted) == 16, what="16 provisioned")

    # 12 users: the 5th deactivation reaches 5 (and 5 of 12 > 25 %): the guard trips.
    for uid in users[:4]:
        await deactivate(client, tenant, uid)
    await until(lambda: types(receiver).count("user.deprovisioned") == 4, what="4 delivered")
    for uid in users[4:9]:
        await deactivate(client, tenant, uid)  # every write still succeeds
    await until(lambda: "directory.guard_tripped" in types(receiver), what="the trip event")
    tripped = next(e for e in receiver.accepted if e["event"]["type"] == "directory.guard_tripped")
    assert tripped["event"]["subject"] == str(tenant.org_id)
    assert tripped["event"]["data"]["deprovisioned"] == 5
    assert tripped["event"]["data"]["active_users"] == 12

    # A later event of a held user waits behind its held deprovision; another organization's
    # deprovisions (and the tripped org's other users) are delivered as usual.
    await retitle(client, tenant, users[6], "back again?")
    await retitle(client, tenant, users[10], "still here")
    await deactivate(client, other, bystanders[0])
    await until(lambda: types(receiver).count("user.deprovisioned") == 5, what="bystander")
    await until(lambda: types(receiver).count("user.updated") == 1, what="users[10] updated")
    await asyncio.sleep(0.5)  # time for a wrongly released event to arrive
    delivered = {e["event"]["subject"] for e in receiver.accepted}
    assert not set(users[4:9]) & {
        e["event"]["subject"] for e in receiver.accepted if e["event"]["type"] != "user.provisioned"
    }, "nothing of a held user was delivered"
    assert bystanders[0] in delivered

    # The admin API shows the guard tripped and the held events, in order.
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
    state = await resp.json()
    assert resp.status == 200
    assert state["tripped"] is True and state["held"] == 5
    assert [h["user_id"] for h in state["held_events"]] == users[4:9]
    assert {h["reason"] for h in state["held_events"]} == {"deactivated"}
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 5
    stats = await (await client.get("/admin/v1/events/stats", headers=admin_headers)).json()
    assert stats["sinks"][0]["held"] == 5
    metrics = await (await client.get("/metrics")).text()
    assert 'scim_outbox_held_events{sink="webhook"} 5.0' in metrics
    assert "scim_deprovision_guard_tripped_organizations 1.0" in metrics

    # Release: the held deprovisions arrive, then the update that waited behind one of them.
    before = len(receiver.accepted)
    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/release", headers=admin_headers)
    assert resp.status == 200
    assert (await resp.json())["events"] == 5
    await until(lambda: len(receiver.accepted) == before + 6, what="released events")
    released = receiver.accepted[before:]
    assert sorted(
        e["event"]["subject"] for e in released if e["event"]["type"] == "user.deprovisioned"
    ) == sorted(users[4:9])
    assert receiver.versions(released)[users[6]] == [2, 3], "deprovision, then the update"
    state = await (
        await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
    ).json()
    assert state["tripped"] is False and state["held"] == 0
    assert int(await db.fetchval("SELECT count(*) FROM outbox")) == 0


async def test_discard_drops_the_held_events_and_rearms(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """Without a publisher: the rows stay held in the outbox; a discard deletes exactly them
    (the events stay in the history), and deprovisions after it count from zero."""
    conf = msgspec.structs.replace(settings, deprovision_guard_min_users=3)
    client = await aiohttp_client(create_app(conf))
    users = [await make_user(client, tenant, f"d{i}@example.com") for i in range(4)]
    for uid in users[:3]:
        resp = await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)
        assert resp.status == 204
    held = await db.fetch(
        "SELECT e.type, e.subject FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE o.held"
    )
    assert sorted(str(r["subject"]) for r in held) == sorted(users[:3])
    assert {r["type"] for r in held} == {"user.deprovisioned"}
    trip = await db.fetchval(
        "SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq "
        "WHERE e.type = 'directory.guard_tripped' AND NOT o.held"
    )
    assert trip == 1
    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/discard", headers=admin_headers)
    assert (await resp.json())["events"] == 3
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 0
    assert (
        int(await db.fetchval("SELECT count(*) FROM events WHERE type = 'user.deprovisioned'")) == 3
    )
    resp = await client.delete(f"/scim/v2/Users/{users[3]}", headers=tenant.headers)
    assert resp.status == 204
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 0, "re-armed"


async def test_per_org_override_and_bad_values(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """An organization can switch its guard off or change the threshold; bad values are 400
    and change nothing."""
    url = f"/admin/v1/orgs/{tenant.org_id}/guard"
    resp = await client.patch(url, json={"percent": 150}, headers=admin_headers)
    assert resp.status == 400
    assert (await resp.json())["scimType"] == "invalidValue"
    resp = await client.patch(url, json={"min_users": 2, "enabled": False}, headers=admin_headers)
    state = await resp.json()
    assert resp.status == 200, state
    assert state["min_users"] == 2 and state["enabled"] is False and state["percent"] == 25.0
    users = [await make_user(client, tenant, f"o{i}@example.com") for i in range(3)]
    for uid in users:
        assert (await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)).status == 204
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 0, "switched off"
    resp = await client.patch(url, json={"reset": True}, headers=admin_headers)
    assert (await resp.json())["overrides"] == {}
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}0/guard", headers=admin_headers)
    assert resp.status == 404


async def test_cli_shows_and_releases_the_held_events(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, database_url: str
) -> None:
    """`scim-service org guard show|release|set` as an operator runs them."""
    conf = msgspec.structs.replace(settings, deprovision_guard_min_users=2)
    client = await aiohttp_client(create_app(conf))
    users = [await make_user(client, tenant, f"c{i}@example.com") for i in range(3)]
    for uid in users[:2]:
        await deactivate(client, tenant, uid)
    # The release's log line goes to stdout too (like every command's): keep --json clean.
    env = {"SCIM_DEPROVISION_GUARD_MIN_USERS": "2", "SCIM_LOG_LEVEL": "error"}
    org = str(tenant.org_id)
    shown = await asyncio.to_thread(cli, database_url, "org", "guard", "show", org, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "TRIPPED" in shown.stdout and "c1@example.com" in shown.stdout
    state = ok_json(
        await asyncio.to_thread(cli, database_url, "org", "guard", "show", org, "--json", env=env)
    )
    assert [h["user_id"] for h in state["held_events"]] == users[:2]
    out = ok_json(
        await asyncio.to_thread(
            cli, database_url, "org", "guard", "release", org, "--json", env=env
        )
    )
    assert out["events"] == 2 and out["action"] == "released"
    proc = await asyncio.to_thread(
        cli, database_url, "org", "guard", "set", org, "--percent", "0", "--json"
    )
    assert proc.returncode == 1 and "percent" in proc.stderr


async def test_guard_tripped_event_shape(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """tests/golden_events/directory.guard_tripped.json is the documented contract."""
    conf = msgspec.structs.replace(settings, deprovision_guard_min_users=1)
    client = await aiohttp_client(create_app(conf))
    uid = await make_user(client, tenant, "only@example.com")
    await deactivate(client, tenant, uid)
    payload = await db.fetchval("SELECT payload FROM events WHERE type = 'directory.guard_tripped'")
    event = json.loads(bytes(payload))
    assert event["subject"] == str(tenant.org_id) and event["resourceversion"] == 1
    path = GOLDEN / "directory.guard_tripped.json"
    if os.environ.get("SCIM_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(shape(event), indent=2) + "\n")
    assert shape(event) == json.loads(path.read_text())
