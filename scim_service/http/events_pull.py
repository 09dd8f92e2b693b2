"""The pull API and the bootstrap snapshot (admin token): thin handlers over events/pull.py
and store/pull.py. The contract is in the README ("Consuming events")."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.events import envelope, schemas
from scim_service.events import pull as events_pull
from scim_service.http.admin import path_uuid
from scim_service.http.responses import admin_json, connection
from scim_service.keys import FEED, GATE
from scim_service.provisioning import tenants
from scim_service.store import pull

EVENT_TYPES = envelope.EVENT_TYPES
SNAPSHOT_LIMIT = 1000
SNAPSHOT_DEFAULT = 200
MEMBERS_LIMIT = 10000
MEMBERS_DEFAULT = 1000


class EventsPage(msgspec.Struct, kw_only=True):
    """A page of the pull API: CloudEvents exactly as pushed, and where to continue."""

    events: list[msgspec.Raw]
    next_cursor: str
    has_more: bool


class EventSchemas(msgspec.Struct, kw_only=True):
    """Generated from the event structs (events/schemas.py)."""

    schemas: dict[str, dict[str, Any]]
    """Event type → its JSON Schema (2020-12)."""
    asyncapi: dict[str, Any]
    """The AsyncAPI 3.0 document of the webhook and NATS channels."""


class UserItem(msgspec.Struct, kw_only=True):
    id: str
    version: int
    """The resourceversion of the user's latest event: apply only events above it."""
    setup_state: str
    profile: envelope.UserProfile


class GroupItem(msgspec.Struct, kw_only=True):
    id: str
    version: int
    display_name: str
    external_id: str | None
    member_count: int


class UsersSnapshot(msgspec.Struct, kw_only=True):
    users: list[UserItem]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET
    """First page only: the pull cursor taken before the page was read."""


class GroupsSnapshot(msgspec.Struct, kw_only=True):
    groups: list[GroupItem]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET


class MembersSnapshot(msgspec.Struct, kw_only=True):
    group_id: str
    version: int
    """The group's resourceversion when this page was read (hold the first page's)."""
    members: list[str]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise errors.InvalidValue(f"'{name}' must be a number from {low:g} to {high:g}")
    return value


def _limit(request: web.Request, default: int, high: int) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= high:
        raise errors.InvalidValue(f"'limit' must be a whole number from 1 to {high}")
    return int(raw)


def _uuid_param(request: web.Request, name: str) -> uuid.UUID | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.InvalidValue(f"'{name}' must be a UUID") from None


def _types(request: web.Request) -> list[str] | None:
    wanted = [t.strip() for v in request.query.getall("types", []) for t in v.split(",")]
    wanted = [t for t in wanted if t]
    unknown = sorted(set(wanted) - set(EVENT_TYPES))
    if unknown:
        shown = ", ".join(t[:64] for t in unknown[:5])
        raise errors.InvalidValue(f"Unknown event type(s) {shown}; known: {', '.join(EVENT_TYPES)}")
    return wanted or None


async def list_events(request: web.Request) -> web.Response:
    """GET /admin/v1/events?after=&limit=&org_id=&types=&wait="""
    raw_after = request.query.get("after")
    after = events_pull.decode_cursor(raw_after) if raw_after else None
    limit = _limit(request, events_pull.DEFAULT_LIMIT, events_pull.MAX_LIMIT)
    wait = _number(request, "wait", 0.0, 0.0, events_pull.MAX_WAIT)
    page = await events_pull.read_or_wait(
        lambda: request.app[GATE].connection(None),
        request.app.get(FEED),
        after,
        limit=limit,
        wait=wait,
        org_id=_uuid_param(request, "org_id"),
        types=_types(request),
    )
    body = EventsPage(
        events=[msgspec.Raw(p) for p in page.payloads],
        next_cursor=events_pull.encode_cursor(page.next),
        has_more=page.full,
    )
    return admin_json(body)


async def event_schemas(request: web.Request) -> web.Response:
    """GET /admin/v1/events/schemas"""
    return admin_json(EventSchemas(schemas=schemas.schemas(), asyncapi=schemas.asyncapi()))


def _next_page(count: int, limit: int, last: uuid.UUID | None) -> str | None:
    return str(last) if count >= limit and last is not None else None


def _cursor(cursor: pull.Position | None) -> str | msgspec.UnsetType:
    return events_pull.encode_cursor(cursor) if cursor is not None else msgspec.UNSET


async def snapshot_users(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/users?page=&limit="""
    org_id = path_uuid(request, "org_id", "Organization")
    after = _uuid_param(request, "page")
    limit = _limit(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    async with connection(request) as conn:
        await tenants.get_org(conn, org_id)
        cursor = await pull.head(conn) if after is None else None
        rows = await pull.users_page(conn, org_id, after, limit)
    items = [
        UserItem(
            id=str(r["id"]),
            version=r["event_seq"],
            setup_state=r["setup_state"],
            profile=envelope.profile(r["attrs"]),
        )
        for r in rows
    ]
    last = rows[-1]["id"] if rows else None
    body = UsersSnapshot(
        users=items, next_page=_next_page(len(rows), limit, last), events_cursor=_cursor(cursor)
    )
    return admin_json(body)


async def snapshot_groups(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/groups?page=&limit= (members: the members endpoint)"""
    org_id = path_uuid(request, "org_id", "Organization")
    after = _uuid_param(request, "page")
    limit = _limit(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    async with connection(request) as conn:
        await tenants.get_org(conn, org_id)
        cursor = await pull.head(conn) if after is None else None
        rows = await pull.groups_page(conn, org_id, after, limit)
    items = [
        GroupItem(
            id=str(r["id"]),
            version=r["event_seq"],
            display_name=r["display_name"],
            external_id=r["external_id"],
            member_count=r["member_count"],
        )
        for r in rows
    ]
    last = rows[-1]["id"] if rows else None
    body = GroupsSnapshot(
        groups=items, next_page=_next_page(len(rows), limit, last), events_cursor=_cursor(cursor)
    )
    return admin_json(body)


async def snapshot_members(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/groups/{group_id}/members?page=&limit="""
    org_id = path_uuid(request, "org_id", "Organization")
    group_id = path_uuid(request, "group_id", "Group")
    after = _uuid_param(request, "page")
    limit = _limit(request, MEMBERS_DEFAULT, MEMBERS_LIMIT)
    async with connection(request) as conn:
        await tenants.get_org(conn, org_id)
        cursor = await pull.head(conn) if after is None else None
        found = await pull.members_page(conn, org_id, group_id, after, limit)
    if found is None:
        raise errors.NotFound(f"Group {group_id} not found")
    version, members = found
    last = members[-1] if members else None
    body = MembersSnapshot(
        group_id=str(group_id),
        version=version,
        members=[str(m) for m in members],
        next_page=_next_page(len(members), limit, last),
        events_cursor=_cursor(cursor),
    )
    return admin_json(body)
