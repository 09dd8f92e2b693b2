"""Scoped admin credentials (issue 22): `operator`, `org:admin` (one organization) and
`events:read` (pull and snapshots of its organizations, optionally some event types); stored as
digests, shown once, with TTL, revoke and last-used; 403 outside the scope, 404 for an
organization the credential may not see."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from scim_service.tokens import token_digest
from tests.conftest import Tenant, make_tenant
from tests.support import create_user


async def mint(client: Any, admin: dict[str, str], status: int = 201, **body: Any) -> Any:
    resp = await client.post("/admin/v1/credentials", json=body, headers=admin)
    found = await resp.json()
    assert resp.status == status, found
    return found


def bearer(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['token']}"}


async def answer(client: Any, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    resp = await client.request(method, path, headers=headers, **kw)
    return resp.status, await resp.json()


async def pull_events(client: Any, headers: dict[str, str], expect: int, **params: Any) -> Any:
    """Every event visible to `headers` once `expect` have come (bounded in time)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        query = {k: str(v) for k, v in params.items()}
        status, page = await answer(client, "GET", "/admin/v1/events", headers, params=query)
        assert status == 200, page
        found = page["events"]
        if len(found) >= expect:
            return found
    raise AssertionError(f"only {len(found)} events: {found}")


async def test_events_read_pulls_its_organization_only(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """An events:read credential for one organization pulls its events and nothing else: 403 on
    token creation and org listing, 404 for another organization's snapshots and events."""
    other = await make_tenant(db, "other")
    await create_user(client, tenant, userName="mine@x.test")
    await create_user(client, other, userName="theirs@x.test")
    reader = await mint(client, admin_headers, scope="events:read", org_ids=[str(tenant.org_id)])
    assert reader["token"].startswith("scimadm_") and reader["info"]["scope"] == "events:read"
    auth = bearer(reader)
    everything = await pull_events(client, admin_headers, expect=2)
    assert {e["orgid"] for e in everything} == {str(tenant.org_id), str(other.org_id)}
    mine = await pull_events(client, auth, expect=1)
    assert {e["orgid"] for e in mine} == {str(tenant.org_id)} and len(mine) == 1
    status, users = await answer(client, "GET", f"/admin/v1/orgs/{tenant.org_id}/users", auth)
    assert status == 200 and len(users["users"]) == 1
    status, body = await answer(client, "POST", f"/admin/v1/orgs/{tenant.org_id}/tokens", auth)
    assert status == 403 and "events:read" in body["detail"] and "org:admin" in body["detail"]
    status, body = await answer(client, "GET", "/admin/v1/orgs", auth)
    assert status == 403 and body["detail"].endswith("that needs the scope operator")
    for path in (f"/admin/v1/orgs/{other.org_id}/users", f"/admin/v1/orgs/{other.org_id}/groups"):
        status, body = await answer(client, "GET", path, auth)
        assert status == 404 and body["detail"] == f"Organization {other.org_id} not found"
    status, _ = await answer(
        client, "GET", "/admin/v1/events", auth, params={"org_id": str(other.org_id)}
    )
    assert status == 404
    status, _ = await answer(client, "POST", "/admin/v1/credentials", auth, json={"scope": "x"})
    assert status == 403


async def test_events_read_of_several_orgs_and_some_types(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """Without org_id a credential of several organizations sees theirs only; one limited to
    event types sees those only and is refused others."""
    second, third = await make_tenant(db, "second"), await make_tenant(db, "third")
    for t in (tenant, second, third):
        await create_user(client, t, userName=f"u@{t.org_id}.test")
    orgs = [str(tenant.org_id), str(second.org_id)]
    reader = await mint(client, admin_headers, scope="events:read", org_ids=orgs)
    found = await pull_events(client, bearer(reader), expect=2)
    assert sorted(e["orgid"] for e in found) == sorted(orgs)
    typed = await mint(
        client,
        admin_headers,
        scope="events:read",
        org_ids=[str(tenant.org_id)],
        event_types=["user.deprovisioned"],
    )
    status, page = await answer(client, "GET", "/admin/v1/events", bearer(typed))
    assert status == 200 and page["events"] == []
    status, body = await answer(
        client, "GET", "/admin/v1/events", bearer(typed), params={"types": "user.provisioned"}
    )
    assert status == 403 and "user.deprovisioned" in body["detail"]


async def test_org_admin_manages_its_organization_only(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """An org:admin credential creates, lists and revokes its organization's tokens, reads its
    status, activity and guard; everything of another organization is 404, operator work 403."""
    other = await make_tenant(db, "other")
    admin = await mint(client, admin_headers, scope="org:admin", org_ids=[str(tenant.org_id)])
    auth = bearer(admin)
    base = f"/admin/v1/orgs/{tenant.org_id}"
    status, created = await answer(client, "POST", f"{base}/tokens", auth, json={})
    assert status == 201 and created["token"].startswith("scim_")
    for path in ("", "/tokens", "/status", "/activity", "/guard"):
        status, body = await answer(client, "GET", base + path, auth)
        assert status == 200, (path, body)
    status, _ = await answer(client, "DELETE", f"/admin/v1/tokens/{created['info']['id']}", auth)
    assert status == 200
    status, body = await answer(client, "DELETE", f"/admin/v1/tokens/{other.token_id}", auth)
    assert status == 404 and body["detail"] == f"Token {other.token_id} not found"
    for path in ("", "/tokens", "/status", "/guard"):
        status, _ = await answer(client, "GET", f"/admin/v1/orgs/{other.org_id}{path}", auth)
        assert status == 404, path
    status, _ = await answer(client, "POST", f"{base}/scim/disable", auth)
    assert status == 403
    status, _ = await answer(client, "POST", "/admin/v1/orgs", auth, json={"name": "x"})
    assert status == 403
    assert await db.fetchval(
        "SELECT revoked_at IS NULL FROM scim_tokens WHERE id = $1", other.token_id
    )


async def test_credentials_are_digests_shown_once_expire_and_revoke(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """Only the SHA-256 digest is stored; lists show the public prefix and last use, never the
    secret; a revoked or expired credential is 401 like an unknown one."""
    made = await mint(client, admin_headers, scope="operator", description="ops", ttl_days=30)
    token, info = made["token"], made["info"]
    assert info["display_prefix"] == token[:14] and info["expires_at"] is not None
    row = await db.fetchrow("SELECT * FROM admin_credentials WHERE id = $1", info["id"])
    assert row["digest"] == token_digest(token) and token not in str(dict(row))
    status, _ = await answer(client, "GET", "/admin/v1/orgs", bearer(made))
    assert status == 200
    status, listed = await answer(client, "GET", "/admin/v1/credentials", admin_headers)
    assert status == 200 and token not in str(listed)
    (shown,) = listed["credentials"]
    assert shown["state"] == "active" and shown["last_used_at"] is not None
    unknown = {"Authorization": "Bearer scimadm_" + "A" * 43}
    status, unknown_body = await answer(client, "GET", "/admin/v1/orgs", unknown)
    assert status == 401
    await db.execute("UPDATE admin_credentials SET expires_at = now() WHERE id = $1", info["id"])
    assert await answer(client, "GET", "/admin/v1/orgs", bearer(made)) == (401, unknown_body)
    await db.execute("UPDATE admin_credentials SET expires_at = NULL WHERE id = $1", info["id"])
    status, revoked = await answer(
        client, "DELETE", f"/admin/v1/credentials/{info['id']}", admin_headers
    )
    assert status == 200 and revoked["state"] == "revoked"
    assert await answer(client, "GET", "/admin/v1/orgs", bearer(made)) == (401, unknown_body)


async def test_bad_credential_requests(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    org = str(tenant.org_id)
    for body in (
        {"scope": "root"},
        {"scope": "org:admin"},
        {"scope": "org:admin", "org_ids": [org, "00000000-0000-0000-0000-000000000001"]},
        {"scope": "operator", "org_ids": [org]},
        {"scope": "events:read", "org_ids": [org], "event_types": ["user.exploded"]},
        {"scope": "org:admin", "org_ids": [org], "event_types": ["user.updated"]},
        {"scope": "operator", "ttl_days": 0},
    ):
        await mint(client, admin_headers, status=400, **body)
    missing = "00000000-0000-0000-0000-000000000001"
    await mint(client, admin_headers, status=404, scope="events:read", org_ids=[missing])
