"""The directory status page: what an administrator checks when "Test Connection" fails."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.provisioning import tenants
from tests.conftest import Tenant
from tests.support import Receiver, cli, entries, make_user, ok_json, publisher_settings, until
from tests.support import fixture_receiver as fixture_receiver

OKTA = {"User-Agent": "Okta SCIM Client 1.0.0"}


async def test_status_shows_tokens_idps_errors_events_and_guard(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    database_url: str,
) -> None:
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    await tenants.create_token(db, tenant.org_id, description="next", ttl_days=3)
    resp = await client.get("/scim/v2/Users", headers={**tenant.headers, **OKTA})
    assert resp.status == 200
    await make_user(client, tenant, "s@example.com")
    resp = await client.get("/scim/v2/Users/missing", headers={**tenant.headers, **OKTA})
    assert resp.status == 404
    await until(lambda: receiver.accepted, what="a delivery")
    await entries(client, tenant.org_id, admin_headers, count=3)

    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/status", headers=admin_headers)
    assert resp.status == 200
    s = await resp.json()
    assert s["scim_enabled"] is True
    assert sorted(t["expires_soon"] for t in s["tokens"]) == [False, True]
    assert any("expires at" in w for w in s["warnings"])
    okta = next(x for x in s["last_success"] if x["idp"] == "Okta")
    assert okta["route"] == "/scim/v2/Users" and okta["status"] == 200
    assert {x["idp"] for x in s["last_success"]} == {"Okta", "other"}
    assert s["last_hour"] == {"requests": 3, "errors": 1, "rate": 0.3333}
    await until(lambda: _delivered(client, tenant, admin_headers), what="last delivery shown")
    assert s["guard"] == {
        "enabled": True,
        "tripped": False,
        "tripped_at": None,
        "held": 0,
        "held_resources": 0,
        "last_decision": None,
    }
    metrics = await (await client.get("/metrics")).text()
    assert "scim_tokens_expiring_soon 1.0" in metrics

    await tenants.set_scim_enabled(db, tenant.org_id, False)
    out = ok_json(
        await asyncio.to_thread(cli, database_url, "org", "status", str(tenant.org_id), "--json")
    )
    assert out["scim_enabled"] is False
    assert any("SCIM is switched off" in w for w in out["warnings"])
    proc = await asyncio.to_thread(
        cli,
        database_url,
        "org",
        "status",
        str(tenant.org_id),
        env={"SCIM_WEBHOOK_URL": receiver.url},
    )
    assert proc.returncode == 0, proc.stderr
    assert "SCIM:         OFF" in proc.stdout and "webhook" in proc.stdout


async def _delivered(client: Any, tenant: Tenant, admin: dict[str, str]) -> bool:
    s = await (await client.get(f"/admin/v1/orgs/{tenant.org_id}/status", headers=admin)).json()
    sink = next(x for x in s["sinks"] if x["sink"] == "webhook")
    return sink["last_delivery_at"] is not None and sink["pending"] == 0


async def test_unknown_org_is_404(client: Any, admin_headers: dict[str, str]) -> None:
    resp = await client.get(
        "/admin/v1/orgs/00000000-0000-0000-0000-000000000000/status", headers=admin_headers
    )
    assert resp.status == 404
