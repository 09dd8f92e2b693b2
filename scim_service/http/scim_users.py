"""/scim/v2/Users (RFC 7644 §3.3-§3.6): thin handlers over `provisioning.users`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiohttp import web

from scim_service.http.responses import (
    connection,
    encode_in_worker,
    query_projection,
    read_scim_body,
    scim_json,
    scim_list,
    scope,
)
from scim_service.keys import BASE_URL
from scim_service.provisioning import users
from scim_service.provisioning.etags import matches_any
from scim_service.provisioning.scope import Scope
from scim_service.provisioning.users import StoredUser
from scim_service.scim import schema as s
from scim_service.scim.mapping import etag, user_location, user_resource
from scim_service.scim.projection import Projection, apply_projection, parse_projection
from scim_service.scim.query import (
    ListQuery,
    query_from_params,
    query_from_search_body,
)

UserWrite = Callable[[asyncpg.Connection, Scope, uuid.UUID, Any, str | None], Awaitable[StoredUser]]


# A page of more users than this is rendered in a worker thread: a stored user can hold 800
# multi-valued elements (see scim/limits.py), about 0.5 ms to render each.
RENDER_IN_THREAD_USERS = 20


def render(request: web.Request, user: StoredUser, projection: Projection) -> dict[str, Any]:
    return _render(request.app[BASE_URL], user, projection)


async def render_page(
    request: web.Request, page: Sequence[StoredUser], projection: Projection
) -> list[Any]:
    """Users rendered for a list answer; in a worker thread when the page is big."""
    base_url = request.app[BASE_URL]

    def work() -> list[Any]:
        return [_render(base_url, u, projection) for u in page]

    def work_encoded() -> list[Any]:
        return [encode_in_worker(_render(base_url, u, projection)) for u in page]

    if len(page) > RENDER_IN_THREAD_USERS:
        return await asyncio.to_thread(work_encoded)
    return work()


def _render(base_url: str, user: StoredUser, projection: Projection) -> dict[str, Any]:
    resource = user_resource(
        user_id=user.id,
        attrs=user.attrs,
        setup_state=user.setup_state,
        setup_completed_at=user.setup_completed_at,
        version=user.version,
        created_at=user.created_at,
        updated_at=user.updated_at,
        groups=user.groups,
        base_url=base_url,
    )
    return apply_projection(resource, projection)


def _one(
    request: web.Request, user: StoredUser, projection: Projection, status: int = 200
) -> web.Response:
    headers = {"ETag": etag(user.version)}
    if status == 201:
        headers["Location"] = user_location(request.app[BASE_URL], user.id)
    return scim_json(render(request, user, projection), status=status, headers=headers)


async def create_user(request: web.Request) -> web.Response:
    body = await read_scim_body(request)
    async with connection(request) as conn:
        user = await users.create_user(conn, scope(request), body)
    return _one(request, user, query_projection(request, s.USER_TYPE), status=201)


async def get_user(request: web.Request) -> web.Response:
    user_id = users.parse_id(request.match_info["id"])
    projection = query_projection(request, s.USER_TYPE)
    async with connection(request) as conn:
        user = await users.get_user(
            conn, scope(request), user_id, with_groups=not projection.excludes("groups")
        )
    inm = request.headers.get("If-None-Match")
    if inm is not None and matches_any(inm, user.version):
        return web.Response(status=304, headers={"ETag": etag(user.version)})
    return _one(request, user, projection)


async def _write(request: web.Request, write: UserWrite) -> web.Response:
    """PUT and PATCH: the write, then the user as the answer (with its groups)."""
    user_id = users.parse_id(request.match_info["id"])
    body = await read_scim_body(request)
    projection = query_projection(request, s.USER_TYPE)
    async with connection(request) as conn:
        user = await write(conn, scope(request), user_id, body, request.headers.get("If-Match"))
        if not projection.excludes("groups"):
            await users.load_groups(conn, scope(request), user)
    return _one(request, user, projection)


async def replace_user(request: web.Request) -> web.Response:
    return await _write(request, users.replace_user)


async def patch_user(request: web.Request) -> web.Response:
    return await _write(request, users.patch_user)


async def delete_user(request: web.Request) -> web.Response:
    user_id = users.parse_id(request.match_info["id"])
    async with connection(request) as conn:
        await users.delete_user(conn, scope(request), user_id, request.headers.get("If-Match"))
    return web.Response(status=204)


async def list_users(request: web.Request) -> web.StreamResponse:
    return await search(
        request, query_from_params(request.query), query_projection(request, s.USER_TYPE)
    )


async def search_users(request: web.Request) -> web.StreamResponse:
    query = query_from_search_body(await read_scim_body(request))
    projection = parse_projection(s.USER_TYPE, query.attributes, query.excluded_attributes)
    return await search(request, query, projection)


async def search(
    request: web.Request, query: ListQuery, projection: Projection
) -> web.StreamResponse:
    async with connection(request) as conn:
        total, page = await users.search_users(
            conn, scope(request), query, with_groups=not projection.excludes("groups")
        )
    resources = await render_page(request, page, projection)
    return await scim_list(request, total, query.start_index, resources)
