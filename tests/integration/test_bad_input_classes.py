"""Whole classes of bad input answer a SCIM 400 on every path, never a 500, and change nothing
(issue 12: database data errors, SQLSTATE class 22, and decoder failures of any kind)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from tests.conftest import Tenant
from tests.support import PATCH_OP, scim_400, snapshot

SCIM_JSON = {"Content-Type": "application/scim+json"}
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

NUL_FILTERS = [
    'userName eq "a\u0000b"',
    'displayName co "\u0000"',
    'emails.value sw "x\u0000"',
    'externalId eq "\u0000"',
]
RANGE_FILTERS = [
    'meta.created gt "9999-12-31T23:59:59-23:59"',
    'meta.lastModified lt "0001-01-01T00:00:00+23:59"',
]


async def seed(client: Any, tenant: Tenant) -> tuple[str, str]:
    resp = await client.post(
        "/scim/v2/Users",
        json={"userName": "bjensen", "emails": [{"value": "b@example.com"}]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    user_id = (await resp.json())["id"]
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "Admins", "members": [{"value": user_id}]},
        headers=tenant.headers,
    )
    assert resp.status == 201
    return user_id, (await resp.json())["id"]


@pytest.mark.parametrize("flt", NUL_FILTERS + RANGE_FILTERS)
async def test_filter_values_the_database_rejects_are_400_everywhere(
    client: Any, tenant: Tenant, db: asyncpg.Connection, flt: str
) -> None:
    """A NUL or an out-of-range dateTime in a filter value: 400 on GET /Users, GET /Groups,
    POST /Users/.search, /Groups/.search and /.search (it used to be a 500 from the driver)."""
    await seed(client, tenant)
    before = await snapshot(db)
    group_flt = flt.replace("userName", "displayName").replace("emails.value", "displayName")
    for resource, f in (("Users", flt), ("Groups", group_flt)):
        resp = await client.get(f"/scim/v2/{resource}?filter={quote(f)}", headers=tenant.headers)
        await scim_400(resp)
        resp = await client.post(
            f"/scim/v2/{resource}/.search",
            json={"schemas": [SEARCH], "filter": f},
            headers=tenant.headers,
        )
        await scim_400(resp)
    resp = await client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH], "filter": flt}, headers=tenant.headers
    )
    await scim_400(resp)
    assert await snapshot(db) == before


def deep(levels: int) -> bytes:
    return b'{"userName": "deep", "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("levels", [1_000, 100_000])
async def test_deeply_nested_bodies_are_invalid_syntax(
    client: Any, tenant: Tenant, db: asyncpg.Connection, levels: int
) -> None:
    """A body nested ~1,000 levels deep (RecursionError in the decoder) is 400 invalidSyntax on
    POST, PUT and PATCH of Users and Groups, and on the search endpoints."""
    user_id, group_id = await seed(client, tenant)
    before = await snapshot(db)
    body = deep(levels)
    patch = b'{"schemas": ["' + PATCH_OP.encode() + b'"], "Operations": ' + body[27:-1] + b"}"
    for method, path, data in (
        ("POST", "/scim/v2/Users", body),
        ("PUT", f"/scim/v2/Users/{user_id}", body),
        ("PATCH", f"/scim/v2/Users/{user_id}", patch),
        ("POST", "/scim/v2/Groups", body),
        ("PUT", f"/scim/v2/Groups/{group_id}", body),
        ("PATCH", f"/scim/v2/Groups/{group_id}", patch),
        ("POST", "/scim/v2/.search", body),
        ("POST", "/scim/v2/Users/.search", body),
    ):
        resp = await client.request(
            method, path, data=data, headers={**tenant.headers, **SCIM_JSON}
        )
        detail = (await scim_400(resp, "invalidSyntax"))["detail"]
        assert "nested" in detail, (method, path, detail)
    assert await snapshot(db) == before


async def test_invalid_utf8_is_invalid_syntax(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    before = await snapshot(db)
    resp = await client.post(
        "/scim/v2/Users",
        data=b'{"userName": "\xff\xfe"}',
        headers={**tenant.headers, **SCIM_JSON},
    )
    await scim_400(resp, "invalidSyntax")
    assert await snapshot(db) == before


async def test_nul_in_a_token_description_is_400_on_the_admin_api(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """The admin API goes through the same translation: a NUL in a token description (stored
    as text) is a 400 and creates no token."""
    before = await snapshot(db)
    resp = await client.post(
        f"/admin/v1/orgs/{tenant.org_id}/tokens",
        json={"description": "ci\u0000token"},
        headers=admin_headers,
    )
    await scim_400(resp, "invalidValue")
    resp = await client.post(
        "/admin/v1/orgs", json={"name": "evil\u0000corp"}, headers=admin_headers
    )
    await scim_400(resp, "invalidValue")
    resp = await client.post(
        "/admin/v1/orgs", data=b'{"name": "\xff"}', headers={**admin_headers, **SCIM_JSON}
    )
    await scim_400(resp, "invalidSyntax")
    assert await snapshot(db) == before


async def test_an_int_beyond_the_column_is_400(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """A number the driver cannot encode (beyond int4/int8) is a 400, not a 500."""
    before = await snapshot(db)
    resp = await client.post(
        f"/admin/v1/orgs/{tenant.org_id}/tokens",
        json={"ttl_days": 10**30},
        headers=admin_headers,
    )
    assert resp.status == 400, await resp.text()
    resp = await client.get(f"/scim/v2/Users?startIndex={10**30}", headers=tenant.headers)
    assert resp.status in (200, 400), await resp.text()
    assert await snapshot(db) == before
