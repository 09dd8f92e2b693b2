"""Role mappings per organization (issue 25): IdP groups → roles by priority, a default role,
the admin API (org:admin scope, audit trail) and the CLI beside it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg

from scim_service.provisioning import roles
from tests.conftest import Tenant, make_tenant
from tests.support import PATCH_OP, add, cli, make_user, new_group, ok_json

ROLES = "/admin/v1/orgs/{}/roles"


async def put(client: Any, org: uuid.UUID, headers: dict[str, str], body: Any) -> Any:
    resp = await client.put(ROLES.format(org), json=body, headers=headers)
    return resp.status, await resp.json(content_type=None)


async def effective(db: asyncpg.Connection, org: uuid.UUID, *ids: str) -> list[str | None]:
    found = await roles.effective_roles(db, org, [uuid.UUID(i) for i in ids])
    return [found[uuid.UUID(i)] for i in ids]


async def test_highest_priority_mapped_group_wins_else_the_default(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """A user's role follows their groups: the highest-priority mapped group's role, the
    default outside every mapped group; joining and leaving moves it; a mapping by displayName
    follows the name, one by id or externalId the group."""
    ann, bob, cat = [await make_user(client, tenant, f"{n}@example.com") for n in ("a", "b", "c")]
    admins = await new_group(client, tenant, "Vault Admins")
    devs = await new_group(client, tenant, "Developers")
    status, state = await put(
        client,
        tenant.org_id,
        admin_headers,
        {
            "default_role": "member",
            "mappings": [
                {"group": {"displayName": "vault admins"}, "role": "admin", "priority": 100},
                {"group": {"id": devs}, "role": "developer", "priority": 10},
            ],
        },
    )
    assert status == 200, state
    assert [m["matched"]["id"] if m["matched"] else None for m in state["mappings"]] == [
        admins,
        devs,
    ]
    assert await effective(db, tenant.org_id, ann, bob, cat) == ["member"] * 3

    for gid, uid in ((devs, ann), (devs, bob), (admins, bob)):
        resp = await client.patch(f"/scim/v2/Groups/{gid}", json=add([uid]), headers=tenant.headers)
        assert resp.status == 200
    assert await effective(db, tenant.org_id, ann, bob, cat) == ["developer", "admin", "member"]

    # Leaving the admin group: the lower role comes back.
    resp = await client.patch(
        f"/scim/v2/Groups/{admins}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{bob}"]'}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    assert await effective(db, tenant.org_id, bob) == ["developer"]

    # Renaming: the displayName mapping no longer matches, the id mapping still does.
    await client.patch(f"/scim/v2/Groups/{admins}", json=add([cat]), headers=tenant.headers)
    assert await effective(db, tenant.org_id, cat) == ["admin"]
    resp = await client.patch(
        f"/scim/v2/Groups/{admins}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Old Admins"}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    assert await effective(db, tenant.org_id, cat) == ["member"]
    resp = await client.patch(
        f"/scim/v2/Groups/{devs}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Engineering"}],
        },
        headers=tenant.headers,
    )
    assert await effective(db, tenant.org_id, ann) == ["developer"]

    resp = await client.get(ROLES.format(tenant.org_id), headers=admin_headers)
    state = await resp.json()
    assert state["default_role"] == "member" and state["source"] == "groups"
    assert state["mappings"][0]["matched"] is None  # no group is named "Vault Admins" now
    assert state["mappings"][1]["matched"]["displayName"] == "Engineering"

    # No default: null.
    status, _ = await put(client, tenant.org_id, admin_headers, {"mappings": []})
    assert status == 200
    assert await effective(db, tenant.org_id, ann) == [None]


async def test_roles_from_the_scim_roles_attribute(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """source scim_roles: the user's primary SCIM role (Entra app-role assignment), else the
    first, else the default."""
    resp = await client.post(
        "/scim/v2/Users",
        json={
            "userName": "r@example.com",
            "roles": [{"value": "viewer"}, {"value": "owner", "primary": True}],
        },
        headers=tenant.headers,
    )
    with_roles = (await resp.json(content_type=None))["id"]
    plain = await make_user(client, tenant, "p@example.com")
    status, _ = await put(
        client, tenant.org_id, admin_headers, {"default_role": "member", "source": "scim_roles"}
    )
    assert status == 200
    assert await effective(db, tenant.org_id, with_roles, plain) == ["owner", "member"]


async def test_bad_configurations_are_400_and_change_nothing(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    good = {
        "default_role": "member",
        "mappings": [{"group": {"displayName": "G"}, "role": "admin"}],
    }
    assert (await put(client, tenant.org_id, admin_headers, good))[0] == 200
    for bad in (
        {"mappings": [{"group": {}, "role": "admin"}]},
        {"mappings": [{"group": {"displayName": "G", "id": str(uuid.uuid4())}, "role": "a"}]},
        {"mappings": [{"group": {"id": "not-an-id"}, "role": "a"}]},
        {"mappings": [{"group": {"displayName": "G"}, "role": " "}]},
        {
            "mappings": [
                {"group": {"displayName": "G"}, "role": "a"},
                {"group": {"displayName": "g"}, "role": "b"},
            ]
        },
        {"source": "ldap"},
        {"default_role": "x" * 101},
        {"unknown": 1},
    ):
        status, body = await put(client, tenant.org_id, admin_headers, bad)
        assert status == 400, (bad, body)
    resp = await client.get(ROLES.format(tenant.org_id), headers=admin_headers)
    state = await resp.json()
    assert state["default_role"] == "member" and len(state["mappings"]) == 1
    status, _ = await put(client, uuid.uuid4(), admin_headers, good)
    assert status == 404


async def test_scope_audit_and_cli(
    client: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    database_url: str,
) -> None:
    """An org admin sets its own organization's roles (an entry in the audit trail), not
    another's (404); the CLI shows and replaces them, also audited."""
    other = await make_tenant(db, "other")
    resp = await client.post(
        "/admin/v1/credentials",
        json={"scope": "org:admin", "org_ids": [str(tenant.org_id)]},
        headers=admin_headers,
    )
    org_admin = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    body = {"default_role": "member"}
    assert (await put(client, tenant.org_id, org_admin, body))[0] == 200
    assert (await put(client, other.org_id, org_admin, body))[0] == 404

    deadline = time.monotonic() + 5
    actions: list[str] = []
    while time.monotonic() < deadline and "roles.set" not in actions:
        resp = await client.get(f"/admin/v1/audit?org={tenant.org_id}", headers=admin_headers)
        actions = [e["action"] for e in (await resp.json())["entries"]]
        await asyncio.sleep(0.05)
    assert "roles.set" in actions

    out = ok_json(
        await asyncio.to_thread(
            cli,
            database_url,
            "roles",
            str(tenant.org_id),
            "--map",
            "displayName=Vault Admins:admin:100",
            "--map",
            "externalId=eng:developer",
            "--default",
            "viewer",
            "--json",
        )
    )
    assert out["default_role"] == "viewer"
    assert [(m["group"], m["role"], m["priority"]) for m in out["mappings"]] == [
        ({"displayName": "Vault Admins"}, "admin", 100),
        ({"externalId": "eng"}, "developer", 0),
    ]
    proc = await asyncio.to_thread(cli, database_url, "roles", str(tenant.org_id))
    assert proc.returncode == 0 and "Vault Admins" in proc.stdout and "viewer" in proc.stdout
    count = await db.fetchval(
        "SELECT count(*) FROM admin_audit WHERE action = 'roles.set' AND org_id = $1",
        tenant.org_id,
    )
    assert count == 2
