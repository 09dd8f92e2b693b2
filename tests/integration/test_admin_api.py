"""The admin API: organizations and tokens, behind SCIM_ADMIN_TOKEN."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from scim_service.app import create_app
from scim_service.config import Settings

SPC = "/scim/v2/ServiceProviderConfig"


async def test_admin_api_is_off_without_admin_token(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(msgspec.structs.replace(settings, admin_token=None)))
    resp = await client.get(
        "/admin/v1/orgs", headers={"Authorization": "Bearer anything-at-all-123"}
    )
    assert resp.status == 404
    assert "disabled" in (await resp.json())["detail"]


async def test_admin_token_is_required(client: Any) -> None:
    resp = await client.get("/admin/v1/orgs")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await client.get(
        "/admin/v1/orgs", headers={"Authorization": "Bearer wrong-admin-token-xyz"}
    )
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/json")


async def test_org_and_token_lifecycle(client: Any, admin_headers: dict[str, str]) -> None:
    """Create an org, issue a token that works for SCIM, disable SCIM, revoke the token."""
    resp = await client.post("/admin/v1/orgs", json={"name": "Acme"}, headers=admin_headers)
    assert resp.status == 201
    org = await resp.json()
    assert org["name"] == "Acme" and org["scim_enabled"] is True
    org_id = org["id"]

    resp = await client.post(
        f"/admin/v1/orgs/{org_id}/tokens",
        json={"description": "JumpCloud", "ttl_days": 90},
        headers=admin_headers,
    )
    assert resp.status == 201
    created = await resp.json()
    token = created["token"]
    assert token.startswith("scim_")
    assert created["scim_base_url"] == "http://scim.test/scim/v2"
    assert created["info"]["description"] == "JumpCloud"
    assert created["info"]["expires_at"] is not None
    scim = {"Authorization": f"Bearer {token}"}
    assert (await client.get(SPC, headers=scim)).status == 200

    listed = (
        await (await client.get(f"/admin/v1/orgs/{org_id}/tokens", headers=admin_headers)).json()
    )["tokens"]
    assert len(listed) == 1
    assert "token" not in listed[0], "lists never contain the token"
    assert token not in str(listed)
    assert listed[0]["display_prefix"] == token[:11]
    assert listed[0]["state"] == "active"
    assert listed[0]["last_used_at"] is not None

    got = await (await client.get(f"/admin/v1/orgs/{org_id}", headers=admin_headers)).json()
    assert got["active_tokens"] == 1

    resp = await client.post(f"/admin/v1/orgs/{org_id}/scim/disable", headers=admin_headers)
    assert (await resp.json())["scim_enabled"] is False
    assert (await client.get(SPC, headers=scim)).status == 403
    resp = await client.post(f"/admin/v1/orgs/{org_id}/scim/enable", headers=admin_headers)
    assert (await resp.json())["scim_enabled"] is True
    assert (await client.get(SPC, headers=scim)).status == 200

    resp = await client.delete(f"/admin/v1/tokens/{listed[0]['id']}", headers=admin_headers)
    assert resp.status == 200 and (await resp.json())["state"] == "revoked"
    assert (await client.get(SPC, headers=scim)).status == 401

    orgs = (await (await client.get("/admin/v1/orgs", headers=admin_headers)).json())["orgs"]
    assert [o["id"] for o in orgs] == [org_id]


async def test_org_with_platform_id_and_duplicate_names(
    client: Any, admin_headers: dict[str, str]
) -> None:
    platform_id = str(uuid.uuid4())
    resp = await client.post(
        "/admin/v1/orgs", json={"name": "Beta", "id": platform_id}, headers=admin_headers
    )
    assert resp.status == 201 and (await resp.json())["id"] == platform_id
    resp = await client.post("/admin/v1/orgs", json={"name": "beta"}, headers=admin_headers)
    assert resp.status == 409
    assert "already exists" in (await resp.json())["detail"]


async def test_admin_bad_input(client: Any, admin_headers: dict[str, str]) -> None:
    resp = await client.post(
        "/admin/v1/orgs",
        data=b"{not json",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert resp.status == 400 and (await resp.json())["scimType"] == "invalidSyntax"
    resp = await client.post("/admin/v1/orgs", json={"name": 5}, headers=admin_headers)
    assert resp.status == 400 and (await resp.json())["scimType"] == "invalidValue"
    resp = await client.post("/admin/v1/orgs", json={"name": "   "}, headers=admin_headers)
    assert resp.status == 400
    resp = await client.get("/admin/v1/orgs/not-a-uuid", headers=admin_headers)
    assert resp.status == 404
    resp = await client.get(f"/admin/v1/orgs/{uuid.uuid4()}/tokens", headers=admin_headers)
    assert resp.status == 404
    resp = await client.post(
        f"/admin/v1/orgs/{uuid.uuid4()}/tokens", json={}, headers=admin_headers
    )
    assert resp.status == 404
