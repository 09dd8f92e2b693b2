"""Endpoint names in any case and trailing slashes reach the same resource, answered in place
(no redirect: IdPs do not follow one on POST), authenticated like the canonical path, with
`Location` and `meta.location` in the canonical spelling."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from scim_service.http.paths import canonical_scim_path
from tests.conftest import Tenant

BASE = "http://scim.test/scim/v2"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ann@contoso.com",
    "emails": [{"value": "ann@contoso.com", "type": "work", "primary": True}],
}


def url(path: str) -> URL:
    return URL(path, encoded=True)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/scim/v2/serviceproviderconfig", f"{BASE}/ServiceProviderConfig"),
        ("/scim/v2/SERVICEPROVIDERCONFIG/", f"{BASE}/ServiceProviderConfig"),
        ("/scim/v2/resourcetypes/User", f"{BASE}/ResourceTypes/User"),
        ("/scim/v2/schemas/urn:ietf:params:scim:schemas:core:2.0:User/", None),
        ("/SCIM/V2/ServiceProviderConfig", f"{BASE}/ServiceProviderConfig"),
    ],
)
async def test_discovery_in_any_case(
    client: Any, tenant: Tenant, path: str, location: str | None
) -> None:
    """Discovery endpoints answer in any case and with a trailing slash; meta.location is
    canonical."""
    resp = await client.get(url(path), headers=tenant.headers, allow_redirects=False)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/scim+json"
    body = await resp.json(content_type=None)
    if location is not None:
        assert body["meta"]["location"] == location


@pytest.mark.parametrize(
    "path", ["/scim/v2/resourcetypes", "/scim/v2/Schemas/", "/scim/v2/users", "/scim/v2/groups/"]
)
async def test_lists_in_any_case(client: Any, tenant: Tenant, path: str) -> None:
    resp = await client.get(url(path), headers=tenant.headers, allow_redirects=False)
    assert resp.status == 200, await resp.text()
    body = await resp.json(content_type=None)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]


async def test_user_lifecycle_on_lowercase_paths_with_slashes(client: Any, tenant: Tenant) -> None:
    """POST, GET, filter, .search, PATCH, PUT and DELETE through `/users/...` paths behave
    exactly as through `/Users/...`."""
    h = tenant.headers
    resp = await client.post(url("/scim/v2/users/"), json=USER, headers=h, allow_redirects=False)
    assert resp.status == 201, await resp.text()
    created = await resp.json(content_type=None)
    uid = created["id"]
    assert resp.headers["Location"] == f"{BASE}/Users/{uid}"
    assert created["meta"]["location"] == f"{BASE}/Users/{uid}"

    resp = await client.get(url(f"/scim/v2/Users/{uid}/"), headers=h)
    assert resp.status == 200
    assert (await resp.json(content_type=None))["meta"]["location"] == f"{BASE}/Users/{uid}"

    resp = await client.get(
        url("/scim/v2/users/?filter=userName+eq+%22ann%40contoso.com%22"), headers=h
    )
    body = await resp.json(content_type=None)
    assert resp.status == 200 and [r["id"] for r in body["Resources"]] == [uid]

    resp = await client.post(
        url("/scim/v2/users/.SEARCH/"),
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'emails[type eq "work"].value eq "Ann@Contoso.com"',
        },
        headers=h,
    )
    body = await resp.json(content_type=None)
    assert resp.status == 200 and [r["id"] for r in body["Resources"]] == [uid], body

    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    resp = await client.patch(url(f"/scim/v2/users/{uid}/"), json=patch, headers=h)
    assert resp.status == 200 and (await resp.json(content_type=None))["active"] is False

    resp = await client.put(
        url(f"/scim/v2/USERS/{uid}"), json={**USER, "displayName": "Ann"}, headers=h
    )
    assert resp.status == 200 and (await resp.json(content_type=None))["displayName"] == "Ann"

    resp = await client.delete(url(f"/scim/v2/users/{uid}/"), headers=h)
    assert resp.status == 204
    resp = await client.get(url(f"/scim/v2/Users/{uid}"), headers=h)
    assert resp.status == 404


async def test_groups_and_root_search_in_any_case(client: Any, tenant: Tenant) -> None:
    h = tenant.headers
    resp = await client.post(
        url("/scim/v2/groups/"),
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops"},
        headers=h,
    )
    assert resp.status == 201, await resp.text()
    gid = (await resp.json(content_type=None))["id"]
    assert resp.headers["Location"] == f"{BASE}/Groups/{gid}"
    resp = await client.post(
        url("/scim/v2/.SEARCH/"),
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'displayName eq "ops"',
        },
        headers=h,
    )
    body = await resp.json(content_type=None)
    assert resp.status == 200 and [r["id"] for r in body["Resources"]] == [gid], body


@pytest.mark.parametrize(
    "path", ["/scim/v2/users", "/SCIM/V2/USERS/", "/scim/v2/serviceproviderconfig"]
)
async def test_tolerant_paths_still_need_a_token(client: Any, tenant: Tenant, path: str) -> None:
    """A spelling variant is authenticated exactly like the canonical path."""
    resp = await client.get(url(path), allow_redirects=False)
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_wrong_method_on_a_variant_is_405(client: Any, tenant: Tenant) -> None:
    """The variant answers what the canonical path answers: 405 with the same Allow."""
    canonical = await client.delete(url("/scim/v2/ServiceProviderConfig"), headers=tenant.headers)
    resp = await client.delete(url("/scim/v2/serviceproviderconfig/"), headers=tenant.headers)
    assert resp.status == canonical.status == 405
    assert "GET" in resp.headers["Allow"].split(", ")
    assert resp.headers["Allow"] == canonical.headers["Allow"]
    body = await resp.json(content_type=None)
    assert body["status"] == "405"


@pytest.mark.parametrize(
    "path", ["/scim/v2/users/a/b", "/scim/v2/nope/", "/scim/v2//Users", "/scim/v2/.search/x"]
)
async def test_other_paths_stay_404(client: Any, tenant: Tenant, path: str) -> None:
    resp = await client.get(url(path), headers=tenant.headers, allow_redirects=False)
    assert resp.status == 404
    body = await resp.json(content_type=None)
    assert body["status"] == "404" and path in body["detail"]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/scim/v2/users", "/scim/v2/Users"),
        ("/scim/v2/Users/", "/scim/v2/Users"),
        ("/scim/v2/Users//", "/scim/v2/Users"),
        ("/Scim/V2/groups/abc-DEF/", "/scim/v2/Groups/abc-DEF"),  # ids keep their spelling
        ("/scim/v2/users/.Search", "/scim/v2/Users/.search"),
        ("/scim/v2/.SEARCH", "/scim/v2/.search"),
        ("/scim/v2/resourcetypes/user", "/scim/v2/ResourceTypes/user"),
        ("/scim/v2/Users", None),  # already canonical
        ("/scim/v2/ServiceProviderConfig/x", None),
        ("/scim/v2/.search/x", None),
        ("/scim/v2/users/a/b", None),
        ("/scim/v2/", None),
        ("/scim/v2", None),
        ("/scim/v2users", None),
        ("/scim/v3/users", None),
        ("/admin/v1/orgs/", None),
        ("/healthz/", None),
    ],
)
def test_canonical_scim_path(raw: str, canonical: str | None) -> None:
    assert canonical_scim_path(raw) == canonical


async def test_variants_are_counted_under_the_canonical_route(client: Any, tenant: Tenant) -> None:
    """Metrics and logs name the route template, so `/users/` adds no label of its own."""
    for path in ("/scim/v2/users/", "/scim/v2/USERS", "/scim/v2/Users"):
        assert (await client.get(url(path), headers=tenant.headers)).status == 200
    text = await (await client.get("/metrics")).text()
    counts = [
        line
        for line in text.splitlines()
        if line.startswith("scim_http_requests_total") and 'method="GET"' in line
    ]
    assert any('route="/scim/v2/Users"' in line and line.endswith(" 3.0") for line in counts), (
        counts
    )
    assert not any("users" in line for line in counts), counts
