"""Every route of the service, one line each."""

from __future__ import annotations

from aiohttp import web

from scim_service.http import (
    admin,
    credentials,
    discovery,
    endpoints,
    events,
    health,
    openapi,
    scim_groups,
    scim_search,
    scim_users,
    snapshots,
)
from scim_service.http import metrics as metrics_handler

SCIM = "/scim/v2"
ADMIN = "/admin/v1"


def setup_health_routes(app: web.Application, *, metrics: bool) -> None:
    app.router.add_get("/healthz", health.healthz, allow_head=True)
    app.router.add_get("/readyz", health.readyz, allow_head=True)
    if metrics:
        app.router.add_get("/metrics", metrics_handler.metrics)


def setup_routes(app: web.Application, *, metrics: bool = True) -> None:
    setup_health_routes(app, metrics=metrics)
    r = app.router
    r.add_get("/openapi.json", openapi.document)  # unauthenticated, like /healthz

    r.add_get(f"{SCIM}/ServiceProviderConfig", discovery.service_provider_config)
    r.add_get(f"{SCIM}/ResourceTypes", discovery.resource_types)
    r.add_get(f"{SCIM}/ResourceTypes/{{id}}", discovery.resource_type)
    r.add_get(f"{SCIM}/Schemas", discovery.schemas)
    r.add_get(f"{SCIM}/Schemas/{{id}}", discovery.schema)

    r.add_get(f"{SCIM}/Users", scim_users.list_users)
    r.add_post(f"{SCIM}/Users", scim_users.create_user)
    r.add_post(f"{SCIM}/Users/.search", scim_users.search_users)
    r.add_get(f"{SCIM}/Users/{{id}}", scim_users.get_user)
    r.add_put(f"{SCIM}/Users/{{id}}", scim_users.replace_user)
    r.add_patch(f"{SCIM}/Users/{{id}}", scim_users.patch_user)
    r.add_delete(f"{SCIM}/Users/{{id}}", scim_users.delete_user)

    r.add_get(f"{SCIM}/Groups", scim_groups.list_groups)
    r.add_post(f"{SCIM}/Groups", scim_groups.create_group)
    r.add_post(f"{SCIM}/Groups/.search", scim_groups.search_groups)
    r.add_get(f"{SCIM}/Groups/{{id}}", scim_groups.get_group)
    r.add_put(f"{SCIM}/Groups/{{id}}", scim_groups.replace_group)
    r.add_patch(f"{SCIM}/Groups/{{id}}", scim_groups.patch_group)
    r.add_delete(f"{SCIM}/Groups/{{id}}", scim_groups.delete_group)

    r.add_post(f"{SCIM}/.search", scim_search.search_all)

    r.add_post(f"{ADMIN}/orgs", admin.create_org)
    r.add_get(f"{ADMIN}/orgs", admin.list_orgs)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}", admin.get_org)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/scim/enable", admin.enable_scim)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/scim/disable", admin.disable_scim)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/tokens", admin.create_token)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/tokens", admin.list_tokens)
    r.add_delete(f"{ADMIN}/tokens/{{token_id}}", admin.revoke_token)
    r.add_post(
        f"{ADMIN}/orgs/{{org_id}}/users/{{user_id}}/setup-complete", admin.complete_user_setup
    )
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/status", admin.org_status)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/activity", admin.list_activity)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/roles", admin.get_roles)
    r.add_put(f"{ADMIN}/orgs/{{org_id}}/roles", admin.set_roles)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/guard", admin.guard_state)
    r.add_patch(f"{ADMIN}/orgs/{{org_id}}/guard", admin.configure_guard)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/guard/release", admin.release_guard)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/guard/reject", admin.reject_guard)
    r.add_post(f"{ADMIN}/orgs/{{org_id}}/guard/discard", admin.reject_guard)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/users", snapshots.snapshot_users)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/groups", snapshots.snapshot_groups)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/groups/{{group_id}}/members", snapshots.snapshot_members)
    r.add_get(f"{ADMIN}/orgs/{{org_id}}/digest", snapshots.org_digest)
    r.add_get(f"{ADMIN}/events", events.list_events)
    r.add_get(f"{ADMIN}/events/schemas", events.event_schemas)
    r.add_get(f"{ADMIN}/events/stats", admin.event_stats)
    r.add_get(f"{ADMIN}/events/dead-letters", admin.list_dead_letters)
    r.add_post(f"{ADMIN}/events/dead-letters/retry", admin.retry_dead_letters)
    r.add_post(f"{ADMIN}/events/replay", admin.replay_events)
    r.add_post(f"{ADMIN}/events/orphans/{{sink}}/discard", admin.discard_orphans)
    r.add_post(f"{ADMIN}/events/orphans/{{sink}}/move", admin.move_orphans)
    r.add_get(f"{ADMIN}/events/signing-key", admin.signing_key)
    r.add_post(f"{ADMIN}/credentials", credentials.create_credential)
    r.add_get(f"{ADMIN}/credentials", credentials.list_credentials)
    r.add_delete(f"{ADMIN}/credentials/{{credential_id}}", credentials.revoke_credential)
    r.add_get(f"{ADMIN}/audit", credentials.list_audit)
    r.add_post(f"{ADMIN}/endpoints", endpoints.create_endpoint)
    r.add_get(f"{ADMIN}/endpoints", endpoints.list_endpoints)
    r.add_get(f"{ADMIN}/endpoints/{{endpoint_id}}", endpoints.get_endpoint)
    r.add_patch(f"{ADMIN}/endpoints/{{endpoint_id}}", endpoints.change_endpoint)
    r.add_delete(f"{ADMIN}/endpoints/{{endpoint_id}}", endpoints.delete_endpoint)
    r.add_post(
        f"{ADMIN}/endpoints/{{endpoint_id}}/dead-letters/retry",
        endpoints.retry_endpoint_dead_letters,
    )
