"""Value filters, with and without a following sub-attribute, on the attributes kept in the
membership table: a group's `members` and a user's `groups`, over HTTP (GET and .search)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.conftest import Tenant

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


async def _ids(client: Any, tenant: Tenant, resource: str, filter_: str) -> list[str]:
    got = await client.get(f"/scim/v2/{resource}?filter={quote(filter_)}", headers=tenant.headers)
    body = await got.json(content_type=None)
    assert got.status == 200, body
    via_search = await client.post(
        f"/scim/v2/{resource}/.search",
        json={"schemas": [SEARCH], "filter": filter_},
        headers=tenant.headers,
    )
    assert via_search.status == 200
    assert (await via_search.json(content_type=None))["totalResults"] == body["totalResults"]
    return sorted(r["id"] for r in body["Resources"])


async def test_member_and_group_value_filters(client: Any, tenant: Tenant) -> None:
    h = tenant.headers
    uids = []
    for name in ("ann", "bob"):
        resp = await client.post(
            "/scim/v2/Users",
            json={"schemas": [USER], "userName": f"{name}@x.com", "displayName": name.title()},
            headers=h,
        )
        uids.append((await resp.json(content_type=None))["id"])
    gids = []
    for name, members in (("Ops", uids[:1]), ("Dev", uids)):
        resp = await client.post(
            "/scim/v2/Groups",
            json={
                "schemas": [GROUP],
                "displayName": name,
                "members": [{"value": m} for m in members],
            },
            headers=h,
        )
        assert resp.status == 201
        gids.append((await resp.json(content_type=None))["id"])
    ops, dev = gids
    ann, bob = uids

    assert await _ids(client, tenant, "Groups", f'members[value eq "{bob}"]') == [dev]
    assert await _ids(client, tenant, "Groups", f'members[type eq "User"].value eq "{bob}"') == [
        dev
    ]
    assert await _ids(client, tenant, "Groups", f'members[type eq "User"].value ne "{bob}"') == [
        ops
    ]
    assert await _ids(client, tenant, "Groups", 'members[display eq "ANN"]') == sorted(gids)
    assert await _ids(client, tenant, "Groups", 'members[display eq "Bob" and value pr]') == [dev]
    assert await _ids(client, tenant, "Users", 'groups[display eq "ops"].value pr') == [ann]
    assert await _ids(client, tenant, "Users", f'groups[value eq "{dev}"]') == sorted(uids)

    resp = await client.get("/scim/v2/Groups?filter=" + quote("members[$ref pr]"), headers=h)
    body = await resp.json(content_type=None)
    assert resp.status == 400 and body["scimType"] == "invalidFilter", body
