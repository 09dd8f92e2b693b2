"""SCIM discovery endpoints (RFC 7644 §4): what this server supports, said truthfully."""

from __future__ import annotations

from aiohttp import web

from scim_service import errors
from scim_service.http.responses import scim_json
from scim_service.keys import BASE_URL
from scim_service.scim import discovery
from scim_service.scim import schema as s
from scim_service.scim.query import list_response


def _base(request: web.Request) -> str:
    return request.app[BASE_URL]


async def service_provider_config(request: web.Request) -> web.Response:
    return scim_json(discovery.service_provider_config(_base(request)))


async def resource_types(request: web.Request) -> web.Response:
    items = [rt.to_scim(_base(request)) for rt in s.RESOURCE_TYPES.values()]
    return scim_json(list_response(len(items), 1, items))


async def resource_type(request: web.Request) -> web.Response:
    rt = s.RESOURCE_TYPES.get(request.match_info["id"])
    if rt is None:
        raise errors.NotFound(f"ResourceType {request.match_info['id']} not found")
    return scim_json(rt.to_scim(_base(request)))


async def schemas(request: web.Request) -> web.Response:
    items = [schema.to_scim(_base(request)) for schema in s.SCHEMAS.values()]
    return scim_json(list_response(len(items), 1, items))


async def schema(request: web.Request) -> web.Response:
    found = s.SCHEMAS.get(request.match_info["id"])
    if found is None:
        raise errors.NotFound(f"Schema {request.match_info['id']} not found")
    return scim_json(found.to_scim(_base(request)))
