"""SCIM discovery endpoints (RFC 7644 §4): what this server supports, said truthfully."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

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


class _Described(Protocol):
    def to_scim(self, base_url: str) -> dict[str, Any]: ...


def _every(request: web.Request, table: Mapping[str, _Described]) -> web.Response:
    items = [item.to_scim(_base(request)) for item in table.values()]
    return scim_json(list_response(len(items), 1, items))


def _one(request: web.Request, table: Mapping[str, _Described], what: str) -> web.Response:
    found = table.get(request.match_info["id"])
    if found is None:
        raise errors.NotFound(f"{what} {request.match_info['id']} not found")
    return scim_json(found.to_scim(_base(request)))


async def resource_types(request: web.Request) -> web.Response:
    return _every(request, s.RESOURCE_TYPES)


async def resource_type(request: web.Request) -> web.Response:
    return _one(request, s.RESOURCE_TYPES, "ResourceType")


async def schemas(request: web.Request) -> web.Response:
    return _every(request, s.SCHEMAS)


async def schema(request: web.Request) -> web.Response:
    return _one(request, s.SCHEMAS, "Schema")
