"""The admin audit trail (issue 22): every admin action that changes something, with the acting
credential by its public prefix; append-only; operator reads all, an org admin its own."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import pytest

from tests.conftest import Tenant, make_tenant


async def call(client: Any, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    resp = await client.request(method, path, headers=headers, **kw)
    return resp.status, await resp.json()


async def trail(client: Any, headers: dict[str, str], count: int, query: str = "") -> Any:
    deadline = time.monotonic() + 5
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, body = await call(client, "GET", f"/admin/v1/audit{query}", headers)
        assert status == 200, body
        found = body["entries"]
        if len(found) >= count:
            return found
    raise AssertionError(f"only {len(found)} entries: {found}")


async def test_the_trail_names_the_acting_credential(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """Token creation and revocation by an org admin, a guard change, a refused attempt by an
    events:read credential: each is an entry with the credential's prefix, action, target
    organization and object, outcome and request id; never a secret; reads are not entries."""
    other = await make_tenant(db, "other")
    org = str(tenant.org_id)
    status, admin = await call(
        client,
        "POST",
        "/admin/v1/credentials",
        admin_headers,
        json={"scope": "org:admin", "org_ids": [org]},
    )
    assert status == 201
    status, reader = await call(
        client,
        "POST",
        "/admin/v1/credentials",
        admin_headers,
        json={"scope": "events:read", "org_ids": [org]},
    )
    org_admin = {"Authorization": f"Bearer {admin['token']}", "X-Request-ID": "req-audit-1"}
    events = {"Authorization": f"Bearer {reader['token']}"}
    status, token = await call(client, "POST", f"/admin/v1/orgs/{org}/tokens", org_admin, json={})
    assert status == 201
    status, _ = await call(client, "DELETE", f"/admin/v1/tokens/{token['info']['id']}", org_admin)
    assert status == 200
    status, _ = await call(
        client, "PATCH", f"/admin/v1/orgs/{org}/guard", org_admin, json={"percent": 50}
    )
    assert status == 200
    await call(client, "GET", f"/admin/v1/orgs/{org}/status", org_admin)  # a read: no entry
    status, _ = await call(client, "POST", f"/admin/v1/orgs/{org}/tokens", events, json={})
    assert status == 403
    found = await trail(client, admin_headers, 6)
    assert [(e["actor"], e["action"], e["outcome"], e["status"]) for e in found] == [
        ("SCIM_ADMIN_TOKEN", "credential.create", "ok", 201),
        ("SCIM_ADMIN_TOKEN", "credential.create", "ok", 201),
        (admin["info"]["display_prefix"], "token.create", "ok", 201),
        (admin["info"]["display_prefix"], "token.revoke", "ok", 200),
        (admin["info"]["display_prefix"], "guard.configure", "ok", 200),
        (reader["info"]["display_prefix"], "token.create", "failed", 403),
    ]
    created, revoked = found[2], found[3]
    assert created["org_id"] == org and created["target"] == f"id={token['info']['id']}"
    assert created["request_id"] == "req-audit-1"
    assert created["credential_id"] == admin["info"]["id"]
    assert revoked["org_id"] == org and revoked["target"] == f"token_id={token['info']['id']}"
    assert found[0]["target"] == f"id={admin['info']['id']}"
    assert "events:read" in found[5]["detail"]
    text = str(found)
    assert admin["token"] not in text and token["token"] not in text
    # An org admin sees its organization's entries only; events:read may not read the trail.
    await call(client, "POST", f"/admin/v1/orgs/{other.org_id}/scim/disable", admin_headers)
    own = await trail(client, org_admin, 4)
    assert {e["org_id"] for e in own} == {org}
    status, _ = await call(client, "GET", f"/admin/v1/audit?org_id={other.org_id}", org_admin)
    assert status == 404
    status, _ = await call(client, "GET", "/admin/v1/audit", events)
    assert status == 403
    theirs = await trail(client, admin_headers, 1, f"?org_id={other.org_id}")
    assert [e["action"] for e in theirs] == ["org.scim_disable"]


async def test_the_trail_is_append_only(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    await call(client, "POST", f"/admin/v1/orgs/{tenant.org_id}/scim/disable", admin_headers)
    await trail(client, admin_headers, 1)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE admin_audit SET actor = 'someone else'")
