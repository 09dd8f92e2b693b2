"""`attributes` / `excludedAttributes` with a value filter over HTTP (issue 25): on Users,
Groups and `.search`, exactly the matching sub-values come back (or are dropped)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.conftest import Tenant
from tests.support import create_user, scim_400

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


async def test_users_groups_and_search(client: Any, tenant: Tenant) -> None:
    user = await create_user(
        client,
        tenant,
        userName="ann@example.com",
        emails=[
            {"value": "ann@work.example", "type": "work", "primary": True},
            {"value": "ann@home.example", "type": "home"},
        ],
    )
    work = 'emails[type eq "work"]'
    body = await (
        await client.get(
            f"/scim/v2/Users/{user['id']}?attributes={quote(work)}", headers=tenant.headers
        )
    ).json(content_type=None)
    assert body["emails"] == [{"value": "ann@work.example", "type": "work", "primary": True}]
    assert set(body) == {"schemas", "id", "emails"}

    listed = await (
        await client.get(
            f"/scim/v2/Users?attributes={quote(work + '.value')}", headers=tenant.headers
        )
    ).json(content_type=None)
    assert listed["Resources"][0]["emails"] == [{"value": "ann@work.example"}]

    resp = await client.post(
        "/scim/v2/Users/.search",
        json={"schemas": [SEARCH], "excludedAttributes": [work]},
        headers=tenant.headers,
    )
    found = (await resp.json(content_type=None))["Resources"][0]
    assert found["emails"] == [{"value": "ann@home.example", "type": "home"}]
    assert found["userName"] == "ann@example.com"

    other = await create_user(client, tenant, userName="bob@example.com", externalId="00u2")
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": user["id"]}, {"value": other["id"]}]},
        headers=tenant.headers,
    )
    group = await resp.json(content_type=None)
    only_ann = f'members[value eq "{user["id"]}"]'
    body = await (
        await client.get(
            f"/scim/v2/Groups/{group['id']}?attributes={quote(only_ann)}", headers=tenant.headers
        )
    ).json(content_type=None)
    assert [m["value"] for m in body["members"]] == [user["id"]]
    body = await (
        await client.get(
            f"/scim/v2/Groups/{group['id']}?excludedAttributes={quote(only_ann)}",
            headers=tenant.headers,
        )
    ).json(content_type=None)
    assert [m["value"] for m in body["members"]] == [other["id"]]
    assert body["displayName"] == "G"

    resp = await client.get(
        f"/scim/v2/Users?attributes={quote('emails[nosuch eq 1]')}", headers=tenant.headers
    )
    await scim_400(resp, "invalidFilter")
