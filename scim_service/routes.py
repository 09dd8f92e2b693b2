"""Every route of the service, one line each."""

from __future__ import annotations

from aiohttp import web

from scim_service.http import discovery, health, openapi, scim_groups, scim_search, scim_users
from scim_service.http import metrics as metrics_handler
from scim_service.http.operations import OPERATIONS

SCIM = "/scim/v2"


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

    # The admin API: one declaration per operation (http/operations.py).
    r.add_routes([web.route(op.method, op.key.split(" ", 1)[1], op.handler) for op in OPERATIONS])
