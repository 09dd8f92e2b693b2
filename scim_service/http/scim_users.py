"""/scim/v2/Users (RFC 7644 §3.3-§3.6): thin handlers over `provisioning.users`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiohttp import web

from scim_service.http import resources
from scim_service.http.responses import (
    connection,
    query_projection,
    read_scim_body,
    scim_list,
    scope,
)
from scim_service.keys import BASE_URL
from scim_service.provisioning import users
from scim_service.provisioning.scope import Scope
from scim_service.provisioning.users import StoredUser
from scim_service.scim import schema as s
from scim_service.scim.mapping import user_location, user_resource
from scim_service.scim.projection import Projection, apply_projection
from scim_service.scim.query import (
    ListQuery,
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
    return await resources.render_all(
        page,
        lambda u: _render(base_url, u, projection),
        in_thread=len(page) > RENDER_IN_THREAD_USERS,
    )


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
    base_url = request.app[BASE_URL]
    location = user_location(base_url, user.id) if status == 201 else None
    return resources.one(_render(base_url, user, projection), user.version, location=location)


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
    if (unchanged := resources.not_modified(request, user.version)) is not None:
        return unchanged
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
    return await resources.delete(request, users.parse_id, users.delete_user)


async def list_users(request: web.Request) -> web.StreamResponse:
    return await search(request, *resources.list_request(request, s.USER_TYPE))


async def search_users(request: web.Request) -> web.StreamResponse:
    return await search(request, *await resources.search_request(request, s.USER_TYPE))


async def search(
    request: web.Request, query: ListQuery, projection: Projection
) -> web.StreamResponse:
    async with connection(request) as conn:
        total, page = await users.search_users(
            conn, scope(request), query, with_groups=not projection.excludes("groups")
        )
    rendered = await render_page(request, page, projection)
    return await scim_list(request, total, query.start_index, rendered)
