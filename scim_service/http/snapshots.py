"""The bootstrap snapshot and the state digest (admin token): thin handlers over
provisioning/snapshot.py. The contract is in the README ("Consuming events")."""

from __future__ import annotations

import uuid

from aiohttp import web

from scim_service.http import query
from scim_service.http.admin import of_org, path_uuid
from scim_service.http.responses import admin_json, connection
from scim_service.provisioning import snapshot

SNAPSHOT_LIMIT = 1000
SNAPSHOT_DEFAULT = 200
MEMBERS_LIMIT = 10000
MEMBERS_DEFAULT = 1000


def _page(request: web.Request, default: int, high: int) -> tuple[uuid.UUID | None, int]:
    """A snapshot page's `page` (the last id of the previous page) and `limit`."""
    return query.uuid_of(request, "page"), query.whole(request, "limit", default, 1, high)


async def snapshot_users(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/users?page=&limit="""
    after, limit = _page(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    return await of_org(request, lambda conn, org_id: snapshot.users(conn, org_id, after, limit))


async def snapshot_groups(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/groups?page=&limit= (members: the members endpoint)"""
    after, limit = _page(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    return await of_org(request, lambda conn, org_id: snapshot.groups(conn, org_id, after, limit))


async def snapshot_members(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/groups/{group_id}/members?page=&limit="""
    org_id = path_uuid(request, "org_id", "Organization")
    group_id = path_uuid(request, "group_id", "Group")
    after, limit = _page(request, MEMBERS_DEFAULT, MEMBERS_LIMIT)
    async with connection(request) as conn:
        body = await snapshot.members(conn, org_id, group_id, after, limit)
    return admin_json(body)


async def org_digest(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/digest"""
    return await of_org(request, snapshot.digest)
