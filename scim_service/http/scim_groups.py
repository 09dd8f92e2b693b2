"""/scim/v2/Groups (RFC 7644 §3.3-§3.6): thin handlers over `provisioning.groups`.

PATCH answers 200 with the group (RFC 7644 §3.5.2 allows 204 or the resource "subject to the
attributes parameter"). Its `members` are included only for groups of at most
PATCH_MEMBERS_LIMIT members and when not excluded: an IdP adding one member to a
50,000-member group must not download the whole list with every change.
"""

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
from scim_service.keys import BASE_URL, SKIPPED_MEMBERS
from scim_service.provisioning import groups
from scim_service.provisioning.groups import StoredGroup
from scim_service.provisioning.scope import Scope
from scim_service.scim import schema as s
from scim_service.scim.mapping import group_location, group_resource
from scim_service.scim.projection import Projection, apply_projection
from scim_service.scim.query import (
    ListQuery,
)

PATCH_MEMBERS_LIMIT = 100
# Rendering costs about 2.6 µs per member here: a page or group with more members than this is
# rendered in a worker thread, so a 50,000-member group (130 ms) does not hold the event loop.
RENDER_IN_THREAD_MEMBERS = 2_000


GroupWrite = Callable[
    [asyncpg.Connection, Scope, uuid.UUID, Any, str | None],
    Awaitable[tuple[StoredGroup, groups.GroupChange]],
]


def render(request: web.Request, group: StoredGroup, projection: Projection) -> dict[str, Any]:
    return _render(request.app[BASE_URL], group, projection)


def _render(base_url: str, group: StoredGroup, projection: Projection) -> dict[str, Any]:
    resource = group_resource(
        group_id=group.id,
        attrs=group.attrs,
        members=group.members,
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
        base_url=base_url,
    )
    return apply_projection(resource, projection)


async def render_page(
    request: web.Request, page: Sequence[StoredGroup], projection: Projection
) -> list[Any]:
    """Groups rendered for an answer; in a worker thread when they carry many members."""
    base_url = request.app[BASE_URL]
    members = sum(len(g.members or ()) for g in page)
    return await resources.render_all(
        page,
        lambda g: _render(base_url, g, projection),
        in_thread=members > RENDER_IN_THREAD_MEMBERS,
    )


async def _one(
    request: web.Request, group: StoredGroup, projection: Projection, status: int = 200
) -> web.Response:
    location = group_location(request.app[BASE_URL], group.id) if status == 201 else None
    (body,) = await render_page(request, [group], projection)
    return resources.one(body, group.version, location=location)


async def create_group(request: web.Request) -> web.Response:
    body = await read_scim_body(request)
    projection = query_projection(request, s.GROUP_TYPE)
    async with connection(request) as conn:
        group, change = await groups.create_group(conn, scope(request), body)
        if change.skipped:
            request[SKIPPED_MEMBERS] = tuple(change.skipped)
        if not projection.excludes("members"):
            await groups.load_members(conn, scope(request), group)
    return await _one(request, group, projection, status=201)


async def get_group(request: web.Request) -> web.Response:
    group_id = groups.parse_id(request.match_info["id"])
    projection = query_projection(request, s.GROUP_TYPE)
    async with connection(request) as conn:
        group = await groups.get_group(conn, scope(request), group_id)
        if (unchanged := resources.not_modified(request, group.version)) is not None:
            return unchanged
        if not projection.excludes("members"):
            await groups.load_members(conn, scope(request), group)
    return await _one(request, group, projection)


async def _write(
    request: web.Request, write: GroupWrite, members_limit: int | None
) -> web.Response:
    """PUT and PATCH: the write, then the group as the answer; its members only when not
    excluded and (for PATCH) the group is at most `members_limit` big."""
    group_id = groups.parse_id(request.match_info["id"])
    body = await read_scim_body(request)
    projection = query_projection(request, s.GROUP_TYPE)
    async with connection(request) as conn:
        group, change = await write(
            conn, scope(request), group_id, body, request.headers.get("If-Match")
        )
        if change.skipped:
            request[SKIPPED_MEMBERS] = tuple(change.skipped)
        small = members_limit is None or group.member_count <= members_limit
        if small and not projection.excludes("members"):
            await groups.load_members(conn, scope(request), group)
    return await _one(request, group, projection)


async def replace_group(request: web.Request) -> web.Response:
    return await _write(request, groups.replace_group, None)


async def patch_group(request: web.Request) -> web.Response:
    return await _write(request, groups.patch_group, PATCH_MEMBERS_LIMIT)


async def delete_group(request: web.Request) -> web.Response:
    return await resources.delete(request, groups.parse_id, groups.delete_group)


async def list_groups(request: web.Request) -> web.StreamResponse:
    return await search(request, *resources.list_request(request, s.GROUP_TYPE))


async def search_groups(request: web.Request) -> web.StreamResponse:
    return await search(request, *await resources.search_request(request, s.GROUP_TYPE))


async def search(
    request: web.Request, query: ListQuery, projection: Projection
) -> web.StreamResponse:
    async with connection(request) as conn:
        total, page = await groups.search_groups(
            conn, scope(request), query, with_members=not projection.excludes("members")
        )
    rendered = await render_page(request, page, projection)
    return await scim_list(request, total, query.start_index, rendered)
