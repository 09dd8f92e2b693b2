"""SCIM Groups over HTTP against the real database: memberships exact, forms of all three IdPs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from tests.conftest import Tenant, make_tenant
from tests.support import PATCH_OP, lock_table

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


async def error(resp: Any, status: int, scim_type: str | None = None) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json(content_type=None)
    assert body["status"] == str(status) and body.get("scimType") == scim_type, body
    return str(body["detail"])


async def make_users(
    client: Any, tenant: Tenant, n: int, prefix: str = "member"
) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        resp = await client.post(
            "/scim/v2/Users",
            json={"userName": f"{prefix}{i}@example.com", "displayName": f"{prefix.title()} {i}"},
            headers=tenant.headers,
        )
        assert resp.status == 201
        out.append(await resp.json(content_type=None))
    return out


async def create_group(
    client: Any, tenant: Tenant, name: str, members: list[str] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    resp = await client.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]},
        headers=tenant.headers,
    )
    assert resp.status == 201, await resp.text()
    return await resp.json(content_type=None)


async def get(client: Any, tenant: Tenant, path: str) -> dict[str, Any]:
    resp = await client.get(path, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def member_ids(client: Any, tenant: Tenant, group_id: str) -> set[str]:
    group = await get(client, tenant, f"/scim/v2/Groups/{group_id}")
    return {m["value"] for m in group.get("members", [])}


async def patch(
    client: Any, tenant: Tenant, group_id: str, *ops: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    resp = await client.patch(
        f"/scim/v2/Groups/{group_id}",
        json={"schemas": [PATCH_OP], "Operations": list(ops)},
        headers=tenant.headers,
    )
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def test_create_with_members(client: Any, tenant: Tenant) -> None:
    """JumpCloud never creates empty groups: members come with the POST."""
    users = await make_users(client, tenant, 3)
    resp = await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP, ENTRA_GROUP],
            "displayName": "Engineering",
            "externalId": "ext-eng",
            "members": [{"value": u["id"], "display": "ignored"} for u in users[:2]],
        },
        headers=tenant.headers,
    )
    assert resp.status == 201
    body = await resp.json(content_type=None)
    assert resp.headers["Location"] == f"http://scim.test/scim/v2/Groups/{body['id']}"
    assert resp.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
    assert body["schemas"] == [GROUP]
    assert body["displayName"] == "Engineering" and body["externalId"] == "ext-eng"
    assert body["meta"]["resourceType"] == "Group"
    assert sorted(body["members"], key=lambda m: m["value"]) == sorted(
        (
            {
                "value": u["id"],
                "$ref": f"http://scim.test/scim/v2/Users/{u['id']}",
                "display": u["displayName"],
                "type": "User",
            }
            for u in users[:2]
        ),
        key=lambda m: m["value"],
    )


async def test_users_groups_attribute_reflects_memberships(client: Any, tenant: Tenant) -> None:
    users = await make_users(client, tenant, 2)
    eng = await create_group(client, tenant, "Engineering", [users[0]["id"]])
    ops = await create_group(client, tenant, "Ops", [users[0]["id"], users[1]["id"]])
    got = await get(client, tenant, f"/scim/v2/Users/{users[0]['id']}")
    assert got["groups"] == [
        {
            "value": eng["id"],
            "$ref": f"http://scim.test/scim/v2/Groups/{eng['id']}",
            "display": "Engineering",
            "type": "direct",
        },
        {
            "value": ops["id"],
            "$ref": f"http://scim.test/scim/v2/Groups/{ops['id']}",
            "display": "Ops",
            "type": "direct",
        },
    ]
    listing = await get(
        client, tenant, "/scim/v2/Users?" + "filter=" + quote(f'groups.value eq "{eng["id"]}"')
    )
    assert [u["id"] for u in listing["Resources"]] == [users[0]["id"]]
    listing = await get(
        client, tenant, "/scim/v2/Users?" + "filter=" + quote('groups.display eq "ops"')
    )
    assert {u["id"] for u in listing["Resources"]} == {users[0]["id"], users[1]["id"]}
    listing = await get(client, tenant, "/scim/v2/Users?excludedAttributes=groups")
    assert all("groups" not in u for u in listing["Resources"])
    listing = await get(client, tenant, "/scim/v2/Users")
    assert {len(u.get("groups", [])) for u in listing["Resources"]} == {1, 2}


async def test_display_name_unique_case_insensitively(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    await create_group(client, tenant, "Admins")
    resp = await client.post(
        "/scim/v2/Groups", json={"displayName": "ADMINS"}, headers=tenant.headers
    )
    await error(resp, 409, "uniqueness")
    other = await make_tenant(db, "other")
    await create_group(client, other, "Admins")  # another organization may use it


@pytest.mark.parametrize(
    "members",
    [
        [{"value": "not-a-uuid"}],
        [{}],
        ["a string, not an object"],
        [{"value": "USER", "type": "Group"}],
    ],
)
async def test_bad_members_are_400_and_change_nothing(
    client: Any, tenant: Tenant, db: asyncpg.Connection, members: list[dict[str, str]]
) -> None:
    users = await make_users(client, tenant, 1)
    good = {"value": users[0]["id"]}
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [good, *members]},
        headers=tenant.headers,
    )
    await error(resp, 400, "invalidValue")
    assert await db.fetchval("SELECT count(*) FROM groups") == 0
    assert await db.fetchval("SELECT count(*) FROM group_members") == 0


async def test_member_of_another_org_is_skipped(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """A user of another organization is no user of this one: skipped like an unknown id (the
    answer does not tell whether it exists elsewhere); the group is unchanged."""
    other = await make_tenant(db, "other")
    foreign = (await make_users(client, other, 1))[0]
    group = await create_group(client, tenant, "G")
    body = await patch(
        client,
        tenant,
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": foreign["id"]}]},
    )
    assert body["meta"]["version"] == 'W/"1"'  # nothing changed: same version, no event
    assert await member_ids(client, tenant, group["id"]) == set()
    assert await db.fetchval("SELECT count(*) FROM group_members") == 0


async def test_patch_forms_of_all_idps(client: Any, tenant: Tenant) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 6)]
    group = await create_group(client, tenant, "Sales", [u[0]])
    gid = group["id"]
    # JumpCloud/Okta add (repeated add is a no-op).
    await patch(
        client,
        tenant,
        gid,
        {"op": "add", "path": "members", "value": [{"value": u[1]}, {"value": u[0]}]},
    )
    await patch(client, tenant, gid, {"op": "Add", "path": "members", "value": [{"value": u[1]}]})
    assert await member_ids(client, tenant, gid) == {u[0], u[1]}
    # Okta: remove + add in one request.
    await patch(
        client,
        tenant,
        gid,
        {"op": "remove", "path": f'members[value eq "{u[0]}"]'},
        {"op": "add", "path": "members", "value": [{"value": u[2]}, {"value": u[3]}]},
    )
    assert await member_ids(client, tenant, gid) == {u[1], u[2], u[3]}
    # `or` of several value filters.
    await patch(
        client,
        tenant,
        gid,
        {"op": "remove", "path": f'members[value eq "{u[1]}" or value eq "{u[2]}"]'},
    )
    assert await member_ids(client, tenant, gid) == {u[3]}
    # Entra: Add / Remove with $ref null.
    await patch(
        client,
        tenant,
        gid,
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": u[4]}]},
    )
    await patch(
        client,
        tenant,
        gid,
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": u[3]}]},
    )
    assert await member_ids(client, tenant, gid) == {u[4]}
    # Okta replace members: the exact new set.
    await patch(
        client,
        tenant,
        gid,
        {"op": "replace", "path": "members", "value": [{"value": u[0]}, {"value": u[5]}]},
    )
    assert await member_ids(client, tenant, gid) == {u[0], u[5]}
    # Path-less add of members.
    await patch(client, tenant, gid, {"op": "add", "value": {"members": [{"value": u[1]}]}})
    assert await member_ids(client, tenant, gid) == {u[0], u[1], u[5]}
    # Remove all.
    await patch(client, tenant, gid, {"op": "remove", "path": "members"})
    assert await member_ids(client, tenant, gid) == set()
    # Rename: Okta's form carries the id, others use a path.
    body = await patch(
        client, tenant, gid, {"op": "replace", "value": {"id": gid, "displayName": "Sales EMEA"}}
    )
    assert body["displayName"] == "Sales EMEA"
    body = await patch(
        client, tenant, gid, {"op": "Replace", "path": "displayName", "value": "Sales West"}
    )
    assert body["displayName"] == "Sales West"
    # Removing a member that is not there (or no user at all) is a no-op.
    await patch(
        client, tenant, gid, {"op": "remove", "path": f'members[value eq "{uuid.uuid4()}"]'}
    )


async def test_patch_is_atomic(client: Any, tenant: Tenant) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 2)]
    group = await create_group(client, tenant, "Atomic", [u[0]])
    body = await patch(
        client,
        tenant,
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": u[1]}]},
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "add", "path": "members", "value": [{"value": "not-an-id"}]},
        status=400,
    )
    assert body["scimType"] == "invalidValue"
    got = await get(client, tenant, f"/scim/v2/Groups/{group['id']}")
    assert got["displayName"] == "Atomic" and {m["value"] for m in got["members"]} == {u[0]}
    assert got["meta"]["version"] == 'W/"1"'


@pytest.mark.parametrize(
    ("op", "scim_type"),
    [
        ({"op": "remove", "path": 'members[display eq "x"]'}, "invalidPath"),
        ({"op": "remove", "path": "members[value eq"}, "invalidPath"),
        ({"op": "replace", "path": 'members[value eq "x"].display', "value": "y"}, "mutability"),
        ({"op": "jump", "path": "members", "value": []}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "nosuch", "value": 1}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "remove", "path": "displayName"}, "mutability"),
    ],
)
async def test_malformed_patches(
    client: Any, tenant: Tenant, op: dict[str, Any], scim_type: str
) -> None:
    group = await create_group(client, tenant, "G")
    body = await patch(client, tenant, group["id"], op, status=400)
    assert body["scimType"] == scim_type


async def test_patch_to_taken_name_is_409(client: Any, tenant: Tenant) -> None:
    await create_group(client, tenant, "Taken")
    group = await create_group(client, tenant, "Free")
    body = await patch(
        client,
        tenant,
        group["id"],
        {"op": "replace", "path": "displayName", "value": "taken"},
        status=409,
    )
    assert body["scimType"] == "uniqueness"
    # Re-sending the group's own name (Okta does, with every membership change) is fine.
    await patch(
        client,
        tenant,
        group["id"],
        {"op": "replace", "value": {"id": group["id"], "displayName": "Free"}},
    )


async def test_put_replaces_name_external_id_and_members(client: Any, tenant: Tenant) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 3)]
    group = await create_group(client, tenant, "Before", [u[0], u[1]])
    resp = await client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [GROUP],
            "id": group["id"],
            "displayName": "After",
            "externalId": "x1",
            "members": [{"value": u[1]}, {"value": u[2]}],
        },
        headers=tenant.headers,
    )
    assert resp.status == 200
    body = await resp.json(content_type=None)
    assert body["displayName"] == "After" and body["externalId"] == "x1"
    assert {m["value"] for m in body["members"]} == {u[1], u[2]}
    assert body["meta"]["version"] == 'W/"2"'
    # The same PUT again changes nothing.
    again = await (
        await client.put(
            f"/scim/v2/Groups/{group['id']}",
            json={
                "displayName": "After",
                "externalId": "x1",
                "members": [{"value": u[2]}, {"value": u[1]}],
            },
            headers=tenant.headers,
        )
    ).json(content_type=None)
    assert again["meta"]["version"] == 'W/"2"'
    # An empty member list empties the group.
    emptied = await (
        await client.put(
            f"/scim/v2/Groups/{group['id']}", json={"displayName": "After"}, headers=tenant.headers
        )
    ).json(content_type=None)
    assert "members" not in emptied and emptied["meta"]["version"] == 'W/"3"'


async def test_version_changes_on_every_membership_change_and_if_match(
    client: Any, tenant: Tenant
) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 2)]
    group = await create_group(client, tenant, "V")
    url = f"/scim/v2/Groups/{group['id']}"
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": u[0]}]}],
    }
    resp = await client.patch(url, json=add, headers={**tenant.headers, "If-Match": 'W/"9"'})
    await error(resp, 412)
    resp = await client.patch(url, json=add, headers={**tenant.headers, "If-Match": 'W/"1"'})
    assert resp.headers["ETag"] == 'W/"2"'
    resp = await client.patch(url, json=add, headers=tenant.headers)  # repeated add: no change
    assert resp.headers["ETag"] == 'W/"2"'
    await client.delete(f"/scim/v2/Users/{u[0]}", headers=tenant.headers)  # leaving by deletion
    got = await get(client, tenant, url)
    assert got["meta"]["version"] == 'W/"3"' and "members" not in got
    resp = await client.get(url, headers={**tenant.headers, "If-None-Match": 'W/"3"'})
    assert resp.status == 304
    resp = await client.delete(url, headers={**tenant.headers, "If-Match": 'W/"2"'})
    await error(resp, 412)


async def test_delete_group_and_delete_user(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 2)]
    a = await create_group(client, tenant, "A", u)
    b = await create_group(client, tenant, "B", u)
    resp = await client.delete(f"/scim/v2/Groups/{a['id']}", headers=tenant.headers)
    assert resp.status == 204
    await error(await client.get(f"/scim/v2/Groups/{a['id']}", headers=tenant.headers), 404)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM group_members WHERE group_id = $1", uuid.UUID(a["id"])
        )
        == 0
    )
    user = await get(client, tenant, f"/scim/v2/Users/{u[0]}")
    assert [g["value"] for g in user["groups"]] == [b["id"]]
    assert (await client.delete(f"/scim/v2/Users/{u[0]}", headers=tenant.headers)).status == 204
    assert await member_ids(client, tenant, b["id"]) == {u[1]}
    assert (
        await db.fetchval("SELECT member_count FROM groups WHERE id = $1", uuid.UUID(b["id"])) == 1
    )


async def test_list_filter_and_projection(client: Any, tenant: Tenant) -> None:
    u = [x["id"] for x in await make_users(client, tenant, 2)]
    for name in ("Alpha", "Beta", "Gamma"):
        await create_group(client, tenant, name, u if name == "Beta" else [])
    # Entra: excludedAttributes=members with a displayName eq filter.
    got = await get(
        client,
        tenant,
        "/scim/v2/Groups?excludedAttributes=members&filter=" + quote('displayName eq "beta"'),
    )
    assert got["totalResults"] == 1 and got["Resources"][0]["displayName"] == "Beta"
    assert "members" not in got["Resources"][0]
    got = await get(client, tenant, "/scim/v2/Groups?filter=" + quote(f'members.value eq "{u[1]}"'))
    assert [g["displayName"] for g in got["Resources"]] == ["Beta"]
    assert len(got["Resources"][0]["members"]) == 2
    got = await get(
        client,
        tenant,
        "/scim/v2/Groups?sortBy=displayName&sortOrder=descending&count=2&attributes=displayName",
    )
    assert [g["displayName"] for g in got["Resources"]] == ["Gamma", "Beta"]
    assert set(got["Resources"][0]) == {"schemas", "id", "displayName"}
    got = await get(client, tenant, "/scim/v2/Groups?filter=" + quote('displayName sw "a"'))
    assert [g["displayName"] for g in got["Resources"]] == ["Alpha"]
    resp = await client.get(
        "/scim/v2/Groups?filter=" + quote('userName eq "x"'), headers=tenant.headers
    )
    await error(resp, 400, "invalidFilter")


async def test_root_search_spans_users_and_groups(client: Any, tenant: Tenant) -> None:
    await make_users(client, tenant, 3, prefix="alpha")
    await create_group(client, tenant, "alpha-team")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'displayName sw "alpha"',
        "count": 10,
    }
    resp = await client.post("/scim/v2/.search", json=body, headers=tenant.headers)
    got = await resp.json(content_type=None)
    assert got["totalResults"] == 4
    kinds = [r["meta"]["resourceType"] for r in got["Resources"]]
    assert kinds == ["User", "User", "User", "Group"]
    page2 = await (
        await client.post(
            "/scim/v2/.search", json={**body, "startIndex": 3, "count": 2}, headers=tenant.headers
        )
    ).json(content_type=None)
    assert [r["meta"]["resourceType"] for r in page2["Resources"]] == ["User", "Group"]
    # userName exists only on users: groups simply do not match.
    only_users = await (
        await client.post(
            "/scim/v2/.search",
            json={**body, "filter": 'userName sw "alpha"'},
            headers=tenant.headers,
        )
    ).json(content_type=None)
    assert only_users["totalResults"] == 3
    resp = await client.post(
        "/scim/v2/.search", json={**body, "filter": 'nosuch eq "x"'}, headers=tenant.headers
    )
    await error(resp, 400, "invalidFilter")


async def test_excluded_members_never_reads_memberships(
    client: Any, tenant: Tenant, database_url: str
) -> None:
    """With excludedAttributes=members the membership table is not touched at all: even
    while another transaction holds an exclusive lock on it, such reads answer."""
    u = [x["id"] for x in await make_users(client, tenant, 1)]
    group = await create_group(client, tenant, "Locked", u)
    async with lock_table(database_url, "group_members"):
        async with asyncio.timeout(5):
            one = await get(
                client, tenant, f"/scim/v2/Groups/{group['id']}?excludedAttributes=members"
            )
            listed = await get(
                client,
                tenant,
                "/scim/v2/Groups?excludedAttributes=members&filter="
                + quote('displayName eq "Locked"'),
            )
        assert one["displayName"] == "Locked" and "members" not in one
        assert listed["totalResults"] == 1
        # Without the exclusion the read waits for the lock (it does read memberships).
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await client.get(f"/scim/v2/Groups/{group['id']}", headers=tenant.headers)


async def test_patch_response_of_large_group_omits_members(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    from scim_service.http.scim_groups import PATCH_MEMBERS_LIMIT

    group = await create_group(client, tenant, "Big")
    await db.execute(
        """INSERT INTO users (id, org_id, attrs) SELECT gen_random_uuid(), $1,
           jsonb_build_object('userName', 'bulk' || i) FROM generate_series(1, $2) i""",
        tenant.org_id,
        PATCH_MEMBERS_LIMIT + 1,
    )
    ids = [
        str(r["id"])
        for r in await db.fetch("SELECT id FROM users WHERE org_id = $1", tenant.org_id)
    ]
    body = await patch(
        client,
        tenant,
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": i} for i in ids]},
    )
    assert "members" not in body, "a PATCH of a large group answers without the member list"
    assert body["displayName"] == "Big"
    full = await get(client, tenant, f"/scim/v2/Groups/{group['id']}")
    assert len(full["members"]) == PATCH_MEMBERS_LIMIT + 1
    small = await create_group(client, tenant, "Small")
    body = await patch(
        client, tenant, small["id"], {"op": "add", "path": "members", "value": [{"value": ids[0]}]}
    )
    assert [m["value"] for m in body["members"]] == [ids[0]]
