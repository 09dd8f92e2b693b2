"""POST /scim/v2/.search (RFC 7644 §3.4.3): one query across Users and Groups; the paging
across resource types is `provisioning.search`."""

from __future__ import annotations

from aiohttp import web

from scim_service.http import scim_groups, scim_users
from scim_service.http.responses import connection, read_scim_body, scim_list, scope
from scim_service.provisioning import search
from scim_service.scim import schema as s
from scim_service.scim.projection import parse_projection
from scim_service.scim.query import query_from_search_body


async def search_all(request: web.Request) -> web.StreamResponse:
    query = query_from_search_body(await read_scim_body(request))
    user_proj = parse_projection(s.USER_TYPE, query.attributes, query.excluded_attributes)
    group_proj = parse_projection(s.GROUP_TYPE, query.attributes, query.excluded_attributes)
    async with connection(request) as conn:
        found = await search.search_all(
            conn,
            scope(request),
            query,
            with_groups=not user_proj.excludes("groups"),
            with_members=not group_proj.excludes("members"),
        )
    resources = await scim_users.render_page(request, found.users, user_proj)
    resources += await scim_groups.render_page(request, found.groups, group_proj)
    return await scim_list(request, found.total, query.start_index, resources)
