"""Every route of the service, one line each."""

from __future__ import annotations

from aiohttp import web

from scim_service.http import admin, discovery, health

SCIM = "/scim/v2"
ADMIN = "/admin/v1"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", health.healthz, allow_head=True)
    r.add_get("/readyz", health.readyz, allow_head=True)

    r.add_get(f"{SCIM}/ServiceProviderConfig", discovery.service_provider_config)

    r.add_post(f"{ADMIN}/orgs", admin.create_org)
    r.add_get(f"{ADMIN}/orgs", admin.list_orgs)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}", admin.get_org)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/scim/enable", admin.enable_scim)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/scim/disable", admin.disable_scim)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/tokens", admin.create_token)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/tokens", admin.list_tokens)
    r.add_delete(f"{ADMIN}/tokens/{{token_id}}", admin.revoke_token)
