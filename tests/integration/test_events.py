"""Every SCIM write commits exactly its events, in the same transaction; no-ops and failures
commit none. (Delivery is tested in test_publisher.py.)"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import Tenant
from tests.support import GOLDEN, PATCH_OP, create_user, patch_user, shape


async def events(db: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT payload FROM events ORDER BY seq")
    return [json.loads(r["payload"]) for r in rows]


async def outbox_rows(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox"))


async def test_provisioned_event(client: Any, tenant: Tenant, db: asyncpg.Connection) -> None:
    user = await create_user(client, tenant)
    [event] = await events(db)
    uuid.UUID(event["id"])
    assert event["specversion"] == "1.0"
    assert event["type"] == "user.provisioned"
    assert event["source"] == "http://scim.test/scim/v2"
    assert event["subject"] == user["id"]
    assert event["datacontenttype"] == "application/json"
    assert event["orgid"] == str(tenant.org_id)
    assert event["resourceversion"] == 1
    assert event["data"] == {
        "org_id": str(tenant.org_id),
        "user_id": user["id"],
        "external_id": "00u1",
        "user_name": "bjensen@example.com",
        "email": "bjensen@example.com",
        "name": {"formatted": "Barbara Jensen", "given_name": "Barbara", "family_name": "Jensen"},
        "display_name": "Babs",
        "active": True,
        "role": None,  # no role mappings in this organization
        "setup_state": "pending",
    }
    # One delivery row per configured sink (the test app has only the default log sink).
    assert await db.fetchval("SELECT array_agg(sink) FROM outbox") == ["log"]


async def test_update_deactivate_reactivate_delete(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    user = await create_user(client, tenant)
    uid = user["id"]
    await patch_user(client, tenant, uid, {"op": "replace", "path": "title", "value": "Guide"})
    await patch_user(client, tenant, uid, {"op": "Replace", "path": "active", "value": "False"})
    await patch_user(
        client, tenant, uid, {"op": "replace", "value": {"active": True, "displayName": "Barbara"}}
    )
    resp = await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)
    assert resp.status == 204
    got = await events(db)
    assert [(e["type"], e["resourceversion"]) for e in got] == [
        ("user.provisioned", 1),
        ("user.updated", 2),
        ("user.deprovisioned", 3),
        ("user.reactivated", 4),
        ("user.updated", 5),
        ("user.deprovisioned", 6),
    ]
    assert got[1]["data"]["changed"] == ["title"]
    assert got[1]["data"]["profile"]["title"] == "Guide"
    assert got[2]["data"]["reason"] == "deactivated"
    assert got[4]["data"]["changed"] == ["displayName"]
    assert got[5]["data"] == {
        "org_id": str(tenant.org_id),
        "user_id": uid,
        "user_name": "bjensen@example.com",
        "external_id": "00u1",
        "reason": "deleted",
    }
    assert {e["subject"] for e in got} == {uid}


async def test_no_op_and_failed_writes_emit_nothing(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    user = await create_user(client, tenant)
    uid = user["id"]
    before = await outbox_rows(db)
    # PUT of identical data, PATCH setting what is already there.
    body = {
        k: v
        for k, v in user.items()
        if k
        not in (
            "meta",
            "id",
            "schemas",
            "urn:ietf:params:scim:schemas:extension:secretsplatform:2.0:User",
        )
    }
    assert (
        await client.put(f"/scim/v2/Users/{uid}", json=body, headers=tenant.headers)
    ).status == 200
    await patch_user(client, tenant, uid, {"op": "replace", "path": "displayName", "value": "Babs"})
    # Failures: duplicate, bad type, precondition, atomic PATCH with a bad second operation.
    assert (
        await client.post(
            "/scim/v2/Users", json={"userName": "BJENSEN@example.com"}, headers=tenant.headers
        )
    ).status == 409
    assert (
        await client.put(
            f"/scim/v2/Users/{uid}", json={"userName": "x", "active": 7}, headers=tenant.headers
        )
    ).status == 400
    resp = await client.put(
        f"/scim/v2/Users/{uid}",
        json={"userName": "x"},
        headers={**tenant.headers, "If-Match": 'W/"99"'},
    )
    assert resp.status == 412
    await patch_user(
        client,
        tenant,
        uid,
        {"op": "replace", "path": "title", "value": "changed"},
        {"op": "replace", "path": "id", "value": "nope"},
        status=400,
    )
    assert len(await events(db)) == 1
    assert await outbox_rows(db) == before


async def test_setup_completed_event(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    user = await create_user(client, tenant)
    url = f"/admin/v1/orgs/{tenant.org_id}/users/{user['id']}/setup-complete"
    assert (await client.post(url, headers=admin_headers)).status == 200
    assert (await client.post(url, headers=admin_headers)).status == 200  # idempotent: no 2nd event
    got = await events(db)
    assert [e["type"] for e in got] == ["user.provisioned", "user.setup_completed"]
    data = got[1]["data"]
    assert data["setup_state"] == "complete" and data["user_name"] == "bjensen@example.com"
    assert got[1]["resourceversion"] == 2


async def make_users(client: Any, tenant: Tenant, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = await client.post(
            "/scim/v2/Users", json={"userName": f"m{i}"}, headers=tenant.headers
        )
        ids.append((await resp.json(content_type=None))["id"])
    return ids


async def group_events(db: asyncpg.Connection) -> list[dict[str, Any]]:
    return [e for e in await events(db) if e["type"] == "group.changed"]


async def test_group_events(client: Any, tenant: Tenant, db: asyncpg.Connection) -> None:
    u = await make_users(client, tenant, 3)
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "Eng", "members": [{"value": u[0]}, {"value": u[1]}]},
        headers=tenant.headers,
    )
    gid = (await resp.json(content_type=None))["id"]

    async def patch(*ops: dict[str, Any]) -> None:
        r = await client.patch(
            f"/scim/v2/Groups/{gid}",
            json={"schemas": [PATCH_OP], "Operations": list(ops)},
            headers=tenant.headers,
        )
        assert r.status == 200, await r.text()

    await patch(
        {"op": "add", "path": "members", "value": [{"value": u[0]}]}
    )  # already a member: nothing
    await patch(
        {"op": "replace", "path": "displayName", "value": "Engineering"},
        {"op": "add", "path": "members", "value": [{"value": u[2]}]},
    )
    await patch({"op": "remove", "path": f'members[value eq "{u[1]}"]'})
    assert (await client.delete(f"/scim/v2/Users/{u[0]}", headers=tenant.headers)).status == 204
    assert (await client.delete(f"/scim/v2/Groups/{gid}", headers=tenant.headers)).status == 204
    got = await group_events(db)
    assert [e["resourceversion"] for e in got] == [1, 2, 3, 4, 5]
    assert [e["data"]["changes"] for e in got] == [
        ["created", "members_added"],
        ["renamed", "members_added"],
        ["members_removed"],
        ["members_removed"],
        ["deleted"],
    ]
    assert got[0]["data"]["added"] == sorted([u[0], u[1]]) and got[0]["data"]["member_count"] == 2
    assert (
        got[1]["data"]["previous_display_name"] == "Eng"
        and got[1]["data"]["display_name"] == "Engineering"
    )
    assert got[1]["data"]["added"] == [u[2]] and got[1]["data"]["member_count"] == 3
    assert got[2]["data"]["removed"] == [u[1]]
    assert got[3]["data"]["removed"] == [u[0]] and got[3]["data"]["member_count"] == 1, (
        "a deleted user leaves its groups"
    )
    assert got[4]["data"]["added"] == [] and got[4]["data"]["removed"] == [], (
        "no member list for a deleted group"
    )
    assert all(e["subject"] == gid for e in got)


async def test_big_membership_change_is_chunked(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """2,500 members added at once: three events of at most 1,000 ids, consecutive versions."""
    rows = await db.fetch(
        "INSERT INTO users (id, org_id, attrs) SELECT gen_random_uuid(), $1, "
        "jsonb_build_object('userName', 'bulk' || i) FROM generate_series(1, 2500) i RETURNING id",
        tenant.org_id,
    )
    ids = [str(r["id"]) for r in rows]
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "All", "members": [{"value": i} for i in ids]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    got = await group_events(db)
    assert [len(e["data"]["added"]) for e in got] == [1000, 1000, 500]
    assert [e["resourceversion"] for e in got] == [1, 2, 3]
    assert [e["data"]["changes"] for e in got] == [
        ["created", "members_added"],
        ["members_added"],
        ["members_added"],
    ]
    assert sorted(i for e in got for i in e["data"]["added"]) == sorted(ids)
    assert (await db.fetchrow("SELECT version, event_seq FROM groups"))["event_seq"] == 3


async def test_versions_are_gapless_per_resource(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    u = await make_users(client, tenant, 4)
    for i in range(3):
        await patch_user(client, tenant, u[0], {"op": "replace", "path": "title", "value": f"t{i}"})
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": x} for x in u]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    await client.delete(f"/scim/v2/Users/{u[1]}", headers=tenant.headers)
    by_subject: dict[str, list[int]] = {}
    for e in await events(db):
        by_subject.setdefault(e["subject"], []).append(e["resourceversion"])
    for subject, versions in by_subject.items():
        assert versions == list(range(1, len(versions) + 1)), subject
    ids = [e["id"] for e in await events(db)]
    assert len(ids) == len(set(ids))


# --- the documented JSON shape of every event type ---------------------------------------


@pytest.mark.parametrize(
    "event_type",
    [
        "user.provisioned",
        "user.updated",
        "user.deprovisioned",
        "user.reactivated",
        "user.setup_completed",
        "group.changed",
    ],
)
async def test_event_shapes_match_the_documented_examples(
    client: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    event_type: str,
) -> None:
    """tests/golden_events/<type>.json is the contract README documents; a change to an event's
    shape fails here first (regenerate the file only for an intended, announced change)."""
    user = await create_user(client, tenant)
    uid = user["id"]
    await patch_user(client, tenant, uid, {"op": "replace", "path": "title", "value": "Guide"})
    await patch_user(client, tenant, uid, {"op": "replace", "path": "active", "value": False})
    await patch_user(client, tenant, uid, {"op": "replace", "path": "active", "value": True})
    await client.post(
        f"/admin/v1/orgs/{tenant.org_id}/users/{uid}/setup-complete", headers=admin_headers
    )
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "Engineering", "externalId": "eng", "members": [{"value": uid}]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    first = next(e for e in await events(db) if e["type"] == event_type)
    path = GOLDEN / f"{event_type}.json"
    if os.environ.get("SCIM_UPDATE_GOLDEN") == "1":  # an intended change: rewrite, then review
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(shape(first), indent=2) + "\n")
    golden = json.loads(path.read_text())
    assert shape(first) == golden, json.dumps(shape(first), indent=2)
