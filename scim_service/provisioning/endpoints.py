"""Webhook endpoints managed at run time (issue 26; scope `operator`): create, list, change,
pause, delete. Delivery is events/endpoints.py. An endpoint's `whsec_` secret is derived from
SCIM_WEBHOOK_ENDPOINT_KEY and its id (nothing secret is stored) and shown in the creation
answer only. Its URL is checked against SSRF (events/ssrf.py) here and at each delivery."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from scim_service import errors
from scim_service.config import Settings
from scim_service.events import ssrf
from scim_service.events.endpoints import endpoint_secret
from scim_service.events.envelope import EVENT_TYPES
from scim_service.events.pull import decode_cursor, encode_cursor
from scim_service.store import endpoints as store
from scim_service.store import pull
from scim_service.store.endpoints import EndpointRow

MAX_URL = 2048
MAX_FILTERS = 100


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str] | None
    """None: every type. An entry ending in `.*` is a prefix (`user.*`)."""
    org_ids: list[uuid.UUID] | None
    """None: every organization."""
    paused: bool
    failing_since: datetime | None
    """Since when every attempt has failed (None: the last one succeeded)."""
    disabled_reason: str | None
    """Why it was paused automatically (SCIM_WEBHOOK_ENDPOINT_DISABLE_AFTER_HOURS), if it was."""
    cursor: str
    """Its position as a pull API cursor: every event up to it is delivered, filtered out, or
    owed (`pending` retrying or queued behind an earlier event of its resource, `dead`)."""
    pending: int
    dead: int
    created_at: datetime
    updated_at: datetime


class NewEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    secret: str
    endpoint: Endpoint


def _public(row: EndpointRow) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=row.event_types,
        org_ids=row.org_ids,
        paused=row.paused,
        failing_since=row.failing_since,
        disabled_reason=row.disabled_reason,
        cursor=encode_cursor(row.position),
        pending=row.pending,
        dead=row.dead,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _check_url(settings: Settings, url: str) -> None:
    if len(url) > MAX_URL:
        raise errors.InvalidValue(f"'url' is longer than {MAX_URL} characters")
    try:
        await ssrf.check_url(url, ssrf.networks(settings.webhook_allowed_networks))
    except ValueError as exc:
        raise errors.InvalidValue(str(exc)) from None


def _check_types(types: list[str] | None) -> None:
    if types is None:
        return
    if not types or len(types) > MAX_FILTERS:
        raise errors.InvalidValue(f"'event_types' must list 1 to {MAX_FILTERS} types (omit: all)")
    for t in types:
        ok = t in EVENT_TYPES or (
            t.endswith(".*") and any(e.startswith(t[:-1]) for e in EVENT_TYPES)
        )
        if not ok:
            raise errors.InvalidValue(
                f"'event_types': {t[:64]!r} is neither an event type ({', '.join(EVENT_TYPES)}) "
                "nor a prefix of one such as 'user.*'"
            )


def _check_orgs(org_ids: list[uuid.UUID] | None) -> None:
    if org_ids is not None and not 1 <= len(org_ids) <= MAX_FILTERS:
        raise errors.InvalidValue(
            f"'org_ids' must list 1 to {MAX_FILTERS} organizations (omit: all)"
        )


async def create(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    org_ids: list[uuid.UUID] | None = None,
    start: str = "now",
) -> NewEndpoint:
    key = settings.webhook_endpoint_key
    if key is None:
        raise errors.Conflict(
            "Webhook endpoints need SCIM_WEBHOOK_ENDPOINT_KEY (the key their secrets derive from)"
        )
    await _check_url(settings, url)
    _check_types(event_types)
    _check_orgs(org_ids)
    position = await pull.head(conn) if start == "now" else decode_cursor(start, "start")
    row = await store.insert(
        conn,
        url=url,
        description=description[:500],
        event_types=event_types,
        org_ids=org_ids,
        start=position,
    )
    return NewEndpoint(secret=endpoint_secret(key, row.id), endpoint=_public(row))


async def list_all(conn: asyncpg.Connection) -> list[Endpoint]:
    return [_public(r) for r in await store.list_all(conn)]


async def get(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> Endpoint:
    found = await store.list_all(conn, endpoint_id)
    if not found:
        raise errors.NotFound(f"Endpoint {endpoint_id} not found")
    return _public(found[0])


class ChangeEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """PATCH body: absent fields stay; `event_types` / `org_ids` null means all."""

    url: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    event_types: list[str] | msgspec.UnsetType | None = msgspec.UNSET
    org_ids: list[uuid.UUID] | msgspec.UnsetType | None = msgspec.UNSET
    paused: bool | msgspec.UnsetType = msgspec.UNSET


def _given(value: object) -> bool:
    return value is not msgspec.UNSET


async def change(
    conn: asyncpg.Connection, settings: Settings, endpoint_id: uuid.UUID, body: ChangeEndpoint
) -> Endpoint:
    if isinstance(body.url, str):
        await _check_url(settings, body.url)
    types = body.event_types if _given(body.event_types) else None
    orgs = body.org_ids if _given(body.org_ids) else None
    _check_types(types if isinstance(types, list) else None)
    _check_orgs(orgs if isinstance(orgs, list) else None)
    found = await store.update(
        conn,
        endpoint_id,
        url=body.url if isinstance(body.url, str) else None,
        description=body.description[:500] if isinstance(body.description, str) else None,
        event_types=types if isinstance(types, list) else None,
        all_types=_given(body.event_types) and body.event_types is None,
        org_ids=orgs if isinstance(orgs, list) else None,
        all_orgs=_given(body.org_ids) and body.org_ids is None,
        paused=body.paused if isinstance(body.paused, bool) else None,
    )
    if not found:
        raise errors.NotFound(f"Endpoint {endpoint_id} not found")
    return await get(conn, endpoint_id)


async def delete(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> None:
    """The endpoint, its position and every event it still owed: gone."""
    if not await store.delete(conn, endpoint_id):
        raise errors.NotFound(f"Endpoint {endpoint_id} not found")


async def retry_dead(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> int:
    await get(conn, endpoint_id)
    return await store.retry_dead(conn, endpoint_id)
