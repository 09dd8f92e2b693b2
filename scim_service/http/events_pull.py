"""The pull API and the bootstrap snapshot (admin token): thin handlers over events/pull.py
and provisioning/snapshot.py. The contract is in the README ("Consuming events")."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.events import envelope, schemas
from scim_service.events import pull as events_pull
from scim_service.http.admin import path_uuid
from scim_service.http.authz import event_filter
from scim_service.http.responses import admin_json, connection
from scim_service.keys import ADMIN_PRINCIPAL, FEED, GATE
from scim_service.provisioning import snapshot

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


def _cursor(request: web.Request, name: str) -> events_pull.Position | None:
    raw = request.query.get(name)
    return events_pull.decode_cursor(raw, name) if raw else None


async def list_events(request: web.Request) -> web.Response:
    """GET /admin/v1/events?after=&until=&limit=&org_id=&types=&wait="""
    after, until = _cursor(request, "after"), _cursor(request, "until")
    limit = _limit(request, events_pull.DEFAULT_LIMIT, events_pull.MAX_LIMIT)
    wait = _number(request, "wait", 0.0, 0.0, events_pull.MAX_WAIT)
    org_id, types, keep = event_filter(
        request.get(ADMIN_PRINCIPAL), _uuid_param(request, "org_id"), _types(request)
    )
    page = await events_pull.read_or_wait(
        lambda: request.app[GATE].connection(None),
        request.app.get(FEED),
        after,
        limit=limit,
        wait=wait,
        org_id=org_id,
        types=types,
        until=until,
    )
    body = EventsPage(
        events=[msgspec.Raw(p) for p in page.payloads if keep is None or _org_of(p) in keep],
        next_cursor=events_pull.encode_cursor(page.next),
        has_more=page.full,
    )
    return admin_json(body)


class _OrgOf(msgspec.Struct):
    orgid: uuid.UUID


_org_decoder = msgspec.json.Decoder(_OrgOf)


def _org_of(payload: bytes) -> uuid.UUID:
    """The `orgid` extension of a CloudEvent (a credential of several organizations)."""
    return _org_decoder.decode(payload).orgid


async def event_schemas(request: web.Request) -> web.Response:
    """GET /admin/v1/events/schemas"""
    return admin_json(EventSchemas(schemas=schemas.schemas(), asyncapi=schemas.asyncapi()))


def _page(request: web.Request, default: int, high: int) -> tuple[uuid.UUID | None, int]:
    """A snapshot page's `page` (the last id of the previous page) and `limit`."""
    return _uuid_param(request, "page"), _limit(request, default, high)


async def snapshot_users(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/users?page=&limit="""
    org_id = path_uuid(request, "org_id", "Organization")
    after, limit = _page(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    async with connection(request) as conn:
        body = await snapshot.users(conn, org_id, after, limit)
    return admin_json(body)


async def snapshot_groups(request: web.Request) -> web.Response:
    """GET /admin/v1/orgs/{org_id}/groups?page=&limit= (members: the members endpoint)"""
    org_id = path_uuid(request, "org_id", "Organization")
    after, limit = _page(request, SNAPSHOT_DEFAULT, SNAPSHOT_LIMIT)
    async with connection(request) as conn:
        body = await snapshot.groups(conn, org_id, after, limit)
    return admin_json(body)


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
    org_id = path_uuid(request, "org_id", "Organization")
    async with connection(request) as conn:
        body = await snapshot.digest(conn, org_id)
    return admin_json(body)
