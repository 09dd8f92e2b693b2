"""Role mappings per organization (issue 25): IdP groups → roles by priority, a default role,
the admin API (org:admin scope, audit trail) and the CLI beside it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.events import envelope as ev
from scim_service.provisioning import guard, roles
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
    # The IdP changes the app-role assignment: a user.updated naming "role" beside "roles".
    resp = await client.patch(
        f"/scim/v2/Users/{with_roles}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "roles", "value": [{"value": "viewer"}]}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    last = (await role_events(db, with_roles))[-1]
    assert last["data"]["changed"] == ["roles", "role"]
    assert last["data"]["profile"]["role"] == "viewer"
    assert last["data"]["previous"]["role"] == "owner"
    # Snapshots carry the role; so does user.provisioned.
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/users", headers=admin_headers)
    page = {u["id"]: u["profile"]["role"] for u in (await resp.json())["users"]}
    assert page == {with_roles: "viewer", plain: "member"}
    resp = await client.post(
        "/scim/v2/Users", json={"userName": "n@example.com"}, headers=tenant.headers
    )
    new = (await resp.json(content_type=None))["id"]
    payload = await db.fetchval(
        "SELECT payload FROM events WHERE subject = $1 AND resource_version = 1", uuid.UUID(new)
    )
    assert msgspec.json.decode(payload)["data"]["role"] == "member"


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


async def role_events(db: asyncpg.Connection, user_id: str) -> list[dict[str, Any]]:
    """The user's role events (user.updated with "role" changed), in resourceversion order."""
    rows = await db.fetch(
        "SELECT resource_version, payload FROM events WHERE subject = $1 ORDER BY resource_version",
        uuid.UUID(user_id),
    )
    out = []
    for r in rows:
        e = msgspec.json.decode(r["payload"])
        assert e["resourceversion"] == r["resource_version"]
        if e["type"] == "user.updated" and "role" in e["data"]["changed"]:
            out.append(e)
    return out


async def test_joining_and_leaving_a_mapped_group_are_role_events(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """Joining a mapped group: a user.updated with the new role and the previous one; leaving
    it: the lower one back; a rename out of the mapping and a delete move roles too; each in
    order per user (consecutive resourceversions), none for an unmapped group."""
    ann = await make_user(client, tenant, "ann@example.com")
    admins = await new_group(client, tenant, "Vault Admins")
    plain = await new_group(client, tenant, "Book Club")
    status, _ = await put(
        client,
        tenant.org_id,
        admin_headers,
        {
            "default_role": "member",
            "mappings": [
                {"group": {"displayName": "Vault Admins"}, "role": "admin", "priority": 100}
            ],
        },
    )
    assert status == 200
    # The new default role is a role change for every user.
    [first] = await role_events(db, ann)
    assert first["data"]["profile"]["role"] == "member" and first["data"]["previous"] == {
        "role": None
    }
    await client.patch(f"/scim/v2/Groups/{plain}", json=add([ann]), headers=tenant.headers)
    assert len(await role_events(db, ann)) == 1

    await client.patch(f"/scim/v2/Groups/{admins}", json=add([ann]), headers=tenant.headers)
    [_, joined] = await role_events(db, ann)
    assert joined["data"]["changed"] == ["role"]
    assert joined["data"]["profile"]["role"] == "admin"
    assert joined["data"]["previous"] == {"role": "member"}

    remove = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": f'members[value eq "{ann}"]'}],
    }
    await client.patch(f"/scim/v2/Groups/{admins}", json=remove, headers=tenant.headers)
    left = (await role_events(db, ann))[-1]
    assert left["data"]["profile"]["role"] == "member"
    assert left["data"]["previous"] == {"role": "admin"}
    assert left["resourceversion"] == joined["resourceversion"] + 1

    # A rename out of the mapping, then the group deleted.
    await client.patch(f"/scim/v2/Groups/{admins}", json=add([ann]), headers=tenant.headers)
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ex Admins"}],
    }
    await client.patch(f"/scim/v2/Groups/{admins}", json=rename, headers=tenant.headers)
    roles_seen = [e["data"]["profile"]["role"] for e in await role_events(db, ann)]
    assert roles_seen == ["member", "admin", "member", "admin", "member"]
    rename["Operations"][0]["value"] = "Vault Admins"
    await client.patch(f"/scim/v2/Groups/{admins}", json=rename, headers=tenant.headers)
    resp = await client.delete(f"/scim/v2/Groups/{admins}", headers=tenant.headers)
    assert resp.status == 204
    roles_seen = [e["data"]["profile"]["role"] for e in await role_events(db, ann)]
    assert roles_seen == ["member", "admin", "member", "admin", "member", "admin", "member"]

    # A mapping change: every user it moves gets an event.
    status, _ = await put(
        client,
        tenant.org_id,
        admin_headers,
        {"default_role": "member", "mappings": [{"group": {"id": plain}, "role": "reader"}]},
    )
    assert status == 200
    last = (await role_events(db, ann))[-1]
    assert last["data"]["profile"]["role"] == "reader" and last["data"]["previous"] == {
        "role": "member"
    }


def test_a_lowered_role_reduces_access() -> None:
    """The guard's one definition counts a lowered role, not a raised one."""
    org, user = uuid.uuid4(), uuid.uuid4()
    down = ev.user_role_changed(org, user, {"userName": "u"}, "member", "admin", lowered=True)
    up = ev.user_role_changed(org, user, {"userName": "u"}, "admin", "member", lowered=False)
    assert guard.reductions([down]) == [(user, False)]
    assert guard.reductions([up]) == []


async def test_lowered_roles_are_held_by_the_guard_and_rejected_with_their_cause(
    aiohttp_client: Any,
    settings: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """Removing 4 admins from the mapped group trips the guard (min_users 3): the group's
    change and the 4 lowered-role events are held; a rejection restores the membership, so the
    store's roles are what consumers still hold, and drops the held events."""
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, deprovision_guard_min_users=3))
    )
    users = [await make_user(client, tenant, f"g{i}@example.com") for i in range(5)]
    admins = await new_group(client, tenant, "Vault Admins")
    await client.patch(f"/scim/v2/Groups/{admins}", json=add(users), headers=tenant.headers)
    mapping = {"group": {"id": admins}, "role": "admin", "priority": 100}
    assert (
        await put(
            client, tenant.org_id, admin_headers, {"default_role": "member", "mappings": [mapping]}
        )
    )[0] == 200
    ops = [{"op": "remove", "path": f'members[value eq "{u}"]'} for u in users[:4]]
    resp = await client.patch(
        f"/scim/v2/Groups/{admins}",
        json={"schemas": [PATCH_OP], "Operations": ops},
        headers=tenant.headers,
    )
    assert resp.status == 200
    held = await db.fetch(
        "SELECT e.type, e.subject FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE o.held"
    )
    held_roles = sorted(str(r["subject"]) for r in held if r["type"] == "user.updated")
    assert held_roles == sorted(users[:4])
    assert await effective(db, tenant.org_id, *users) == ["member"] * 4 + ["admin"]
    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/reject", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE held")) == 0
    assert await effective(db, tenant.org_id, *users) == ["admin"] * 5
