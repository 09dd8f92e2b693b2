"""What the /Users and /Groups handlers share (RFC 7644 §3.4-§3.6): reading a list or
.search request, conditional GET, the one-resource answer, DELETE, and rendering a page in a
worker thread when it is big."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from scim_service.http.responses import (
    connection,
    encode_in_worker,
    query_projection,
    read_scim_body,
    scim_json,
    scope,
)
from scim_service.provisioning.etags import matches_any
from scim_service.provisioning.scope import Scope
from scim_service.scim.mapping import etag
from scim_service.scim.projection import Projection, parse_projection
from scim_service.scim.query import ListQuery, query_from_params, query_from_search_body
from scim_service.scim.schema import ResourceType

R = TypeVar("R")
Delete = Callable[[asyncpg.Connection, Scope, uuid.UUID, str | None], Awaitable[object]]


def list_request(request: web.Request, rtype: ResourceType) -> tuple[ListQuery, Projection]:
    """GET /Users, /Groups: the query and projection from the query string."""
    return query_from_params(request.query), query_projection(request, rtype)


async def search_request(request: web.Request, rtype: ResourceType) -> tuple[ListQuery, Projection]:
    """POST /.search: the query and projection from the SearchRequest body (§3.4.3)."""
    query = query_from_search_body(await read_scim_body(request))
    return query, parse_projection(rtype, query.attributes, query.excluded_attributes)


def not_modified(request: web.Request, version: int) -> web.Response | None:
    """304 when If-None-Match names the current version."""
    inm = request.headers.get("If-None-Match")
    if inm is not None and matches_any(inm, version):
        return web.Response(status=304, headers={"ETag": etag(version)})
    return None


def one(body: Any, version: int, *, location: str | None = None) -> web.Response:
    """One resource with its ETag; a created one (location given) as 201 with Location."""
    headers = {"ETag": etag(version)}
    if location is not None:
        headers["Location"] = location
    return scim_json(body, status=200 if location is None else 201, headers=headers)


async def delete(
    request: web.Request, parse_id: Callable[[str], uuid.UUID], remove: Delete
) -> web.Response:
    resource_id = parse_id(request.match_info["id"])
    async with connection(request) as conn:
        await remove(conn, scope(request), resource_id, request.headers.get("If-Match"))
    return web.Response(status=204)


async def render_all(
    page: Sequence[R], render: Callable[[R], dict[str, Any]], *, in_thread: bool
) -> list[Any]:
    """The page rendered; `in_thread`: each resource encoded in a worker thread, so the event
    loop runs between them."""
    if in_thread:
        return await asyncio.to_thread(lambda: [encode_in_worker(render(r)) for r in page])
    return [render(r) for r in page]
