"""POST /scim/v2/.search (RFC 7644 §3.4.3): one query across Users and Groups.

Results are Users then Groups (each in its own sort order), paged over the concatenation. A
filter naming an attribute one resource type lacks simply matches nothing of that type; a
filter no resource type understands is 400 invalidFilter. A sortBy that one type lacks leaves
that type in its default order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from scim_service.errors import InvalidFilter, InvalidValue, ScimError
from scim_service.http import scim_groups, scim_users
from scim_service.http.responses import connection, read_scim_body, scim_json, scope
from scim_service.provisioning import groups, users
from scim_service.scim import schema as s
from scim_service.scim.projection import parse_projection
from scim_service.scim.query import ListQuery, list_response, query_from_search_body
from scim_service.store.filters import sort_expression
from scim_service.store.groups import GROUP_SPEC
from scim_service.store.users import USER_SPEC

Fetch = Callable[[ListQuery], Awaitable[tuple[int, list[dict[str, Any]]]]]


async def search_all(request: web.Request) -> web.Response:
    query = query_from_search_body(await read_scim_body(request))
    sc = scope(request)
    async with connection(request) as conn:
        user_proj = parse_projection(s.USER_TYPE, query.attributes, query.excluded_attributes)
        group_proj = parse_projection(s.GROUP_TYPE, query.attributes, query.excluded_attributes)

        async def fetch_users(q: ListQuery) -> tuple[int, list[dict[str, Any]]]:
            total, page = await users.search_users(
                conn, sc, q, with_groups=not user_proj.excludes("groups")
            )
            return total, await scim_users.render_page(request, page, user_proj)

        async def fetch_groups(q: ListQuery) -> tuple[int, list[dict[str, Any]]]:
            total, page = await groups.search_groups(
                conn, sc, q, with_members=not group_proj.excludes("members")
            )
            return total, await scim_groups.render_page(request, page, group_proj)

        kinds = [(fetch_users, USER_SPEC), (fetch_groups, GROUP_SPEC)]
        resources: list[dict[str, Any]] = []
        grand_total = 0
        offset, wanted = query.offset, query.count
        errors: list[ScimError] = []
        for fetch, spec in kinds:
            q = query
            if q.sort_by:
                try:
                    sort_expression(spec, q.sort_by)
                except InvalidValue:
                    q = msgspec.structs.replace(q, sort_by=None, descending=False)
            try:
                total, _ = await fetch(msgspec.structs.replace(q, count=0))
            except InvalidFilter as exc:
                errors.append(exc)
                continue
            grand_total += total
            if wanted > 0 and offset < total:
                _, page = await fetch(
                    msgspec.structs.replace(q, start_index=offset + 1, count=wanted)
                )
                resources.extend(page)
                wanted -= len(page)
            offset = max(0, offset - total)
        if len(errors) == len(kinds):
            raise errors[0]
    return scim_json(list_response(grand_total, query.start_index, resources))
