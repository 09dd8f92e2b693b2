"""Dangling member references (issue 25): a group write naming a member id that is no user of
this organization skips it, applies the others, and says so in the activity log and the status.

Okta does not retry a 400: before, one unknown member in a PATCH of ten meant nine never added.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.config import Settings
from tests.conftest import Tenant
from tests.support import PATCH_OP, cli, entries, make_user, ok_json, scim_400

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def _added(db: asyncpg.Connection, group_id: str) -> list[list[str]]:
    """The `added` of each event of the group, in order."""
    rows = await db.fetch(
        "SELECT payload FROM events WHERE subject = $1 ORDER BY resource_version",
        uuid.UUID(group_id),
    )
    return [msgspec.json.decode(r["payload"])["data"]["added"] for r in rows]


async def test_unknown_member_is_skipped_and_reported(
    client: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    database_url: str,
) -> None:
    """POST, PATCH and PUT with a known and an unknown member: 2xx, the known one applied, the
    unknown id on the activity entry's warning and in `org status` (API and CLI)."""
    known = [await make_user(client, tenant, f"k{i}@example.com") for i in range(3)]
    ghosts = [str(uuid.uuid4()) for _ in range(3)]

    resp = await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "G",
            "members": [{"value": known[0]}, {"value": ghosts[0]}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 201, await resp.text()
    group = await resp.json(content_type=None)
    assert [m["value"] for m in group["members"]] == [known[0]]

    resp = await client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": known[1]}, {"value": ghosts[1]}],
                }
            ],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json(content_type=None)
    assert {m["value"] for m in body["members"]} == {known[0], known[1]}

    resp = await client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [GROUP],
            "displayName": "G",
            "members": [{"value": known[2]}, {"value": ghosts[2]}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json(content_type=None)
    assert [m["value"] for m in body["members"]] == [known[2]]

    # The events name the users that were applied, never the skipped ids.
    assert await _added(db, group["id"]) == [[known[0]], [known[1]], [known[2]]]

    found = await entries(client, tenant.org_id, admin_headers, count=6)
    writes = [e for e in found if e["route"].startswith("/scim/v2/Groups")]
    assert [e["status"] for e in writes] == [201, 200, 200]
    for entry, ghost in zip(writes, ghosts, strict=True):
        assert entry["skipped_members"] == [ghost]
        assert ghost in entry["warning"] and "not users of this organization" in entry["warning"]

    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/status", headers=admin_headers)
    status = await resp.json()
    assert status["skipped_members"]["requests"] == 3
    assert status["skipped_members"]["total"] == 3
    assert set(status["skipped_members"]["ids"]) == set(ghosts)
    assert any("skipped 3 member id(s)" in w for w in status["warnings"])
    proc = await asyncio.to_thread(cli, database_url, "org", "status", str(tenant.org_id))
    assert proc.returncode == 0, proc.stderr
    assert all(g in proc.stdout for g in ghosts)
    out = ok_json(
        await asyncio.to_thread(cli, database_url, "activity", str(tenant.org_id), "--json")
    )
    assert any(ghosts[1] in (e.get("warning") or "") for e in out)


async def test_only_unknown_members_change_nothing(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """A PATCH whose every member is unknown: 200, same version, no event written."""
    resp = await client.post("/scim/v2/Groups", json={"displayName": "G"}, headers=tenant.headers)
    group = await resp.json(content_type=None)
    before = await db.fetchval("SELECT count(*) FROM events")
    resp = await client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}
            ],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    assert (await resp.json(content_type=None))["meta"]["version"] == 'W/"1"'
    assert await db.fetchval("SELECT count(*) FROM events") == before


async def test_malformed_member_values_stay_400(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """Not an object with a value, or a value that is no id: 400 invalidValue, nothing added."""
    uid = await make_user(client, tenant, "a@example.com")
    resp = await client.post("/scim/v2/Groups", json={"displayName": "G"}, headers=tenant.headers)
    group = await resp.json(content_type=None)
    for bad in ([{"value": "not-an-id"}], ["plain string"], [{"display": "x"}]):
        resp = await client.patch(
            f"/scim/v2/Groups/{group['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}, *bad]}],
            },
            headers=tenant.headers,
        )
        await scim_400(resp, "invalidValue")
    assert await db.fetchval("SELECT count(*) FROM group_members") == 0


async def test_a_warning_is_logged_when_only_errors_are(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """SCIM_ACTIVITY_LOG=errors keeps a 2xx that skipped members (its warning is worth
    keeping), not the other 2xx requests."""
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, activity_log="errors"))
    )
    uid = await make_user(client, tenant, "a@example.com")
    ghost = str(uuid.uuid4())
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": uid}, {"value": ghost}]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    [entry] = await entries(client, tenant.org_id, admin_headers, count=1)
    assert entry["status"] == 201 and entry["skipped_members"] == [ghost]
