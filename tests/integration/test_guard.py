"""The mass-deprovisioning guard: a mass deactivation trips it, writes still succeed, the
organization's user.deprovisioned deliveries are held (and later events of those users wait
behind them), directory.guard_tripped is delivered at once, and a release delivers the held
events in order to a real webhook receiver; a discard drops them."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
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
    # Claims take the oldest claimable rows first, and users[10]'s update is younger than every
    # held event: had one been claimable, it was claimed (its attempt counted) by now.
    claimed = await db.fetchval(
        "SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq"
        " WHERE e.subject = ANY($1::uuid[]) AND e.type <> 'user.provisioned' AND o.attempts > 0",
        users[4:9],
    )
    assert claimed == 0, "a held event was handed to the publisher"
    delivered = {e["event"]["subject"] for e in receiver.accepted}
    assert not set(users[4:9]) & {
        e["event"]["subject"] for e in receiver.accepted if e["event"]["type"] != "user.provisioned"
    }, "nothing of a held user was delivered"
    assert bystanders[0] in delivered

    # The admin API shows the guard tripped and the held events, in order.
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
    state = await resp.json()
    assert resp.status == 200
    # Held: the 5 deprovisions and the update that waits behind one of them, of 5 users.
    assert state["tripped"] is True and state["held"] == 6 and state["held_resources"] == 5
    deprovisions = [h for h in state["held_events"] if h["type"] == "user.deprovisioned"]
    assert [h["user_id"] for h in deprovisions] == users[4:9]
    assert {h["reason"] for h in deprovisions} == {"deactivated"}
    assert [h["subject"] for h in state["held_events"] if h["type"] == "user.updated"] == [users[6]]
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
    outcome = await resp.json()
    assert outcome["events"] == 6 and outcome["resources"] == 5
    # The 5 deprovisions, the update behind one of them, and directory.guard_released.
    await until(lambda: len(receiver.accepted) == before + 7, what="released events")
    released = receiver.accepted[before:]
    assert sorted(
        e["event"]["subject"] for e in released if e["event"]["type"] == "user.deprovisioned"
    ) == sorted(users[4:9])
    assert receiver.versions(released)[users[6]] == [2, 3], "deprovision, then the update"
    assert "directory.guard_released" in types(receiver)
    state = await (
        await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
    ).json()
    assert state["tripped"] is False and state["held"] == 0
    assert int(await db.fetchval("SELECT count(*) FROM outbox")) == 0


async def test_reject_restores_the_store_and_drops_the_held_events(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """Without a publisher: the tripping delete and the one after it are held (deliveries never
    due); a rejection puts both users back in the store with their ids and attributes, deletes
    the held events and their deliveries, and the next change of a restored user takes the
    version consumers expect next. Deprovisions after it count from zero."""
    conf = msgspec.structs.replace(settings, deprovision_guard_min_users=3)
    client = await aiohttp_client(create_app(conf))
    users = [await make_user(client, tenant, f"d{i}@example.com") for i in range(6)]
    for uid in users[:4]:
        resp = await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)
        assert resp.status == 204
    held = await db.fetch(
        "SELECT e.type, e.subject, o.next_attempt_at = 'infinity' AS never_due "
        "FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE o.held"
    )
    assert sorted(str(r["subject"]) for r in held) == sorted(users[2:4]), "the trip on"
    assert {r["type"] for r in held} == {"user.deprovisioned"}
    assert all(r["never_due"] for r in held)
    trip = await db.fetchval(
        "SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq "
        "WHERE e.type = 'directory.guard_tripped' AND NOT o.held"
    )
    assert trip == 1
    for uid in users[2:4]:
        assert (await client.get(f"/scim/v2/Users/{uid}", headers=tenant.headers)).status == 404

    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/reject", headers=admin_headers)
    outcome = await resp.json()
    assert resp.status == 200, outcome
    assert outcome["action"] == "rejected" and outcome["events"] == 2
    assert outcome["resources"] == 2
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 0
    assert (
        int(await db.fetchval("SELECT count(*) FROM events WHERE type = 'user.deprovisioned'")) == 2
    ), "the two delivered before the trip stay; the held two are gone for good"
    for i, uid in enumerate(users[2:4], start=2):
        resp = await client.get(f"/scim/v2/Users/{uid}", headers=tenant.headers)
        body = await resp.json(content_type=None)
        assert resp.status == 200 and body["userName"] == f"d{i}@example.com"
        assert body["active"] is True
    # The next change of a restored user is version 2: consumers hold version 1, no gap.
    await retitle(client, tenant, users[2], "back")
    versions = await db.fetch(
        "SELECT resource_version, type FROM events WHERE subject = $1 ORDER BY resource_version",
        uuid.UUID(users[2]),
    )
    assert [(r["resource_version"], r["type"]) for r in versions] == [
        (1, "user.provisioned"),
        (2, "user.updated"),
    ]
    decided = await db.fetchval(
        "SELECT count(*) FROM events WHERE type = 'directory.guard_rejected'"
    )
    assert decided == 1
    state = await (
        await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
    ).json()
    assert state["tripped"] is False and state["last_decision"]["action"] == "rejected"
    resp = await client.delete(f"/scim/v2/Users/{users[4]}", headers=tenant.headers)
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
    users = [await make_user(client, tenant, f"c{i}@example.com") for i in range(4)]
    for uid in users[:3]:
        await deactivate(client, tenant, uid)  # the second trips the guard
    # The release's log line goes to stdout too (like every command's): keep --json clean.
    env = {"SCIM_DEPROVISION_GUARD_MIN_USERS": "2", "SCIM_LOG_LEVEL": "error"}
    org = str(tenant.org_id)
    shown = await asyncio.to_thread(cli, database_url, "org", "guard", "show", org, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "TRIPPED" in shown.stdout and "c1@example.com" in shown.stdout
    state = ok_json(
        await asyncio.to_thread(cli, database_url, "org", "guard", "show", org, "--json", env=env)
    )
    assert [h["user_id"] for h in state["held_events"]] == users[1:3]
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


async def test_guard_decision_event_shapes(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """tests/golden_events/directory.guard_released.json and directory.guard_rejected.json are
    the documented contract; each decision numbers its event after the trip's."""
    conf = msgspec.structs.replace(settings, deprovision_guard_min_users=1)
    client = await aiohttp_client(create_app(conf))
    for action in ("release", "reject"):
        uid = await make_user(client, tenant, f"{action}@example.com")
        await deactivate(client, tenant, uid)
        resp = await client.post(
            f"/admin/v1/orgs/{tenant.org_id}/guard/{action}", headers=admin_headers
        )
        assert resp.status == 200, await resp.text()
    rows = await db.fetch(
        "SELECT type, payload FROM events WHERE resource_type = 'Organization' ORDER BY seq"
    )
    assert [r["type"] for r in rows] == [
        "directory.guard_tripped",
        "directory.guard_released",
        "directory.guard_tripped",
        "directory.guard_rejected",
    ]
    events = [json.loads(bytes(r["payload"])) for r in rows]
    assert [e["resourceversion"] for e in events] == [1, 2, 3, 4]
    for event in events[1::2]:
        assert event["data"]["users"] == 1 and event["data"]["events"] == 1
        path = GOLDEN / f"{event['type']}.json"
        if os.environ.get("SCIM_UPDATE_GOLDEN") == "1":
            path.write_text(json.dumps(shape(event), indent=2) + "\n")
        assert shape(event) == json.loads(path.read_text())
