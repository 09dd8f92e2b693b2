"""HTTP behaviour every client sees: auth errors, SCIM error bodies, request ids, limits."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web

from scim_service.app import create_app, create_publisher_app
from scim_service.config import Settings
from scim_service.provisioning import tenants
from tests.conftest import Tenant

SPC = "/scim/v2/ServiceProviderConfig"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


async def scim_error(resp: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """Assert an RFC 7644 §3.12 error response and return its body."""
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    body = await resp.json(content_type=None)
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status), "status is a string in SCIM errors"
    assert body.get("scimType") == scim_type
    return body


async def test_valid_token_reaches_scim(client: Any, tenant: Tenant) -> None:
    resp = await client.get(SPC, headers=tenant.headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/scim+json"
    body = await resp.json(content_type=None)
    assert body["meta"]["location"] == "http://scim.test/scim/v2/ServiceProviderConfig"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authorization: Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer"}, "Bearer"),
        ({"Authorization": "Bearer scim_nope"}, "not valid"),
    ],
)
async def test_missing_or_wrong_token_is_401(
    client: Any, tenant: Tenant, headers: dict[str, str], detail: str
) -> None:
    resp = await client.get(SPC, headers=headers)
    body = await scim_error(resp, 401)
    assert detail in body["detail"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_unknown_scim_path_needs_auth_first(client: Any, tenant: Tenant) -> None:
    await scim_error(await client.get("/scim/v2/Nope"), 401)
    body = await scim_error(await client.get("/scim/v2/Nope", headers=tenant.headers), 404)
    assert "/scim/v2/Nope" in body["detail"]


async def test_revoked_and_expired_tokens_are_401(
    client: Any, db: asyncpg.Connection, tenant: Tenant
) -> None:
    await tenants.revoke_token(db, tenant.token_id)
    body = await scim_error(await client.get(SPC, headers=tenant.headers), 401)
    assert "revoked" in body["detail"]
    new = await tenants.create_token(db, tenant.org_id, ttl_days=1)
    await db.execute("UPDATE scim_tokens SET expires_at = now() WHERE id = $1", new.info.id)
    body = await scim_error(
        await client.get(SPC, headers={"Authorization": f"Bearer {new.token}"}), 401
    )
    assert "expired" in body["detail"]


async def test_scim_switch(client: Any, db: asyncpg.Connection, tenant: Tenant) -> None:
    """Disabled: every SCIM endpoint is 403 with the fixed detail; enabled again: works."""
    await tenants.set_scim_enabled(db, tenant.org_id, False)
    for path in (SPC, "/scim/v2/Users", "/scim/v2/Anything"):
        body = await scim_error(await client.get(path, headers=tenant.headers), 403)
        assert body["detail"] == "SCIM provisioning is disabled for this organization"
    await tenants.set_scim_enabled(db, tenant.org_id, True)
    assert (await client.get(SPC, headers=tenant.headers)).status == 200


async def test_one_org_token_does_not_open_another_org(client: Any, db: asyncpg.Connection) -> None:
    from tests.conftest import make_tenant

    a = await make_tenant(db, "a")
    b = await make_tenant(db, "b")
    await tenants.set_scim_enabled(db, b.org_id, False)
    assert (await client.get(SPC, headers=a.headers)).status == 200
    assert (await client.get(SPC, headers=b.headers)).status == 403


async def test_request_id_is_kept_or_generated(client: Any, tenant: Tenant) -> None:
    resp = await client.get(SPC, headers={**tenant.headers, "X-Request-ID": "idp-req-42"})
    assert resp.headers["X-Request-ID"] == "idp-req-42"
    resp = await client.get(SPC, headers=tenant.headers)
    generated = resp.headers["X-Request-ID"]
    assert len(generated) == 32
    # A hostile request id (header injection, huge) is replaced, not echoed.
    resp = await client.get(SPC, headers={**tenant.headers, "X-Request-ID": "x" * 500})
    assert resp.headers["X-Request-ID"] != "x" * 500
    # Errors carry it too.
    resp = await client.get(SPC, headers={"X-Request-ID": "abc-1"})
    assert resp.status == 401 and resp.headers["X-Request-ID"] == "abc-1"


async def test_wrong_method_is_405(client: Any, tenant: Tenant) -> None:
    resp = await client.delete(SPC, headers=tenant.headers)
    await scim_error(resp, 405)
    assert "GET" in resp.headers["Allow"]


async def test_oversized_body_is_413(client: Any, tenant: Tenant) -> None:
    resp = await client.post(
        "/scim/v2/Users",
        data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={**tenant.headers, "Content-Type": "application/scim+json"},
    )
    body = await scim_error(resp, 413)
    assert "1048576" in body["detail"]


async def test_unexpected_exception_is_a_bare_500(
    aiohttp_client: Any, settings: Settings, tenant: Tenant
) -> None:
    """A 500 says nothing about internals; the request id lets an operator find the log."""

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: password=hunter2")

    app = create_app(settings)
    app.router.add_get("/scim/v2/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/scim/v2/boom", headers={**tenant.headers, "X-Request-ID": "r-500"})
    body = await scim_error(resp, 500)
    assert body["detail"] == "Internal server error (request id r-500)"
    assert "hunter2" not in await resp.text()
    assert "Traceback" not in await resp.text()


async def test_health_endpoints_need_no_auth(client: Any) -> None:
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ready"


async def test_publisher_listener_serves_probes_but_no_scim_api(
    settings: Settings, tenant: Tenant, aiohttp_client: Any, admin_headers: dict[str, str]
) -> None:
    """`scim-service publisher` listens only for probes (and metrics): the SCIM and admin APIs
    are not there, so even a valid token gets 404, not 401 (a probe or an IdP pointed at the
    wrong container learns where it is)."""
    client = await aiohttp_client(create_publisher_app(settings))
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    for headers in (tenant.headers, {}):
        body = await scim_error(await client.get(SPC, headers=headers), 404)
        assert "No endpoint" in body["detail"]
    resp = await client.get("/admin/v1/orgs", headers=admin_headers)
    assert resp.status == 404
    assert (await resp.json())["detail"] == "No endpoint at /admin/v1/orgs"
