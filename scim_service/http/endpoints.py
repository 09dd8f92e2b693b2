"""Admin API of webhook endpoints (issue 26; scope `operator`): thin handlers over
provisioning/endpoints.py. An endpoint's secret is in its creation answer only."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from scim_service.http.admin import path_uuid
from scim_service.http.answers import EndpointList, RetriedCount
from scim_service.http.responses import admin_json, connection, read_json
from scim_service.http.visibility import visible_orgs
from scim_service.keys import ADMIN_PRINCIPAL, SETTINGS
from scim_service.provisioning import endpoints
from scim_service.provisioning.endpoints import ChangeEndpoint


class CreateEndpoint(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    description: str = ""
    event_types: list[str] | None = None
    org_ids: list[uuid.UUID] | None = None
    start: str = "now"
    """"now" (the default: events from now on), or a pull API cursor to backfill from."""


async def create_endpoint(request: web.Request) -> web.Response:
    body = await read_json(request, CreateEndpoint)
    async with connection(request) as conn:
        new = await endpoints.create(
            conn,
            request.app[SETTINGS],
            url=body.url,
            description=body.description,
            event_types=body.event_types,
            org_ids=body.org_ids,
            start=body.start,
        )
    return admin_json(new, status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    """Every endpoint; an org admin: those that carry its organization's events."""
    async with connection(request) as conn:
        found = await endpoints.list_all(conn)
    orgs = visible_orgs(request.get(ADMIN_PRINCIPAL))
    if orgs is not None:
        found = [e for e in found if e.org_ids is None or orgs & set(e.org_ids)]
    return admin_json(EndpointList(found))


async def get_endpoint(request: web.Request) -> web.Response:
    endpoint_id = path_uuid(request, "endpoint_id", "Endpoint")
    async with connection(request) as conn:
        return admin_json(await endpoints.get(conn, endpoint_id))


async def change_endpoint(request: web.Request) -> web.Response:
    endpoint_id = path_uuid(request, "endpoint_id", "Endpoint")
    body = await read_json(request, ChangeEndpoint)
    async with connection(request) as conn:
        found = await endpoints.change(conn, request.app[SETTINGS], endpoint_id, body)
    return admin_json(found)


async def delete_endpoint(request: web.Request) -> web.Response:
    endpoint_id = path_uuid(request, "endpoint_id", "Endpoint")
    async with connection(request) as conn:
        await endpoints.delete(conn, endpoint_id)
    return web.Response(status=204)


async def retry_endpoint_dead_letters(request: web.Request) -> web.Response:
    endpoint_id = path_uuid(request, "endpoint_id", "Endpoint")
    async with connection(request) as conn:
        count = await endpoints.retry_dead(conn, endpoint_id)
    return admin_json(RetriedCount(count))
