"""The pull API (admin token): thin handlers over events/pull.py. The contract is in the
README ("Consuming events")."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.events import envelope, schemas
from scim_service.events import pull as events_pull
from scim_service.http import query
from scim_service.http.responses import admin_json
from scim_service.http.visibility import event_filter
from scim_service.keys import ADMIN_PRINCIPAL, FEED, GATE

EVENT_TYPES = envelope.EVENT_TYPES


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
    limit = query.whole(request, "limit", events_pull.DEFAULT_LIMIT, 1, events_pull.MAX_LIMIT)
    wait = query.number(request, "wait", 0.0, 0.0, events_pull.MAX_WAIT)
    org_id, types, keep = event_filter(
        request.get(ADMIN_PRINCIPAL), query.uuid_of(request, "org_id"), _types(request)
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
