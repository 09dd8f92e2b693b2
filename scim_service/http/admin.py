"""Admin API (`/admin/v1`, bearer SCIM_ADMIN_TOKEN): thin handlers over the service layer
(`scim_service.provisioning`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.http import answers, query
from scim_service.http.responses import admin_json, connection, read_json
from scim_service.http.scim_users import render as render_user
from scim_service.http.visibility import visible_orgs
from scim_service.keys import ADMIN_PRINCIPAL, AUTH, BASE_URL, EMITTER, GUARD, PUBLISHER, SETTINGS
from scim_service.provisioning import guard, outbox, roles, status, tenants, users
from scim_service.provisioning.scope import Scope
from scim_service.provisioning.tenants import TokenInfo
from scim_service.scim.projection import Projection


class CreateOrg(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    id: uuid.UUID | None = None
    scim_enabled: bool = True


class CreateToken(msgspec.Struct, forbid_unknown_fields=True):
    description: str = ""
    ttl_days: int | None = None


class CreatedToken(msgspec.Struct, kw_only=True):
    """The creation answer: the token appears here once and is never shown again."""

    token: str
    scim_base_url: str
    info: TokenInfo


def path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound(f"{what} {raw} not found") from None


async def create_org(request: web.Request) -> web.Response:
    body = await read_json(request, CreateOrg)
    async with connection(request) as conn:
        org = await tenants.create_org(
            conn, body.name, org_id=body.id, scim_enabled=body.scim_enabled
        )
    return admin_json(org, status=201)


async def list_orgs(request: web.Request) -> web.Response:
    async with connection(request) as conn:
        orgs = await tenants.list_orgs(conn)
    return admin_json(answers.OrgList(orgs))


OrgOperation = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[Any]]


async def of_org(request: web.Request, run: OrgOperation, *, wake: bool = False) -> web.Response:
    """An operation on the organization in the path, its answer as JSON; `wake`: it queued
    deliveries, so the publisher of this process looks at once."""
    org_id = path_uuid(request, "org_id", "Organization")
    async with connection(request) as conn:
        found = await run(conn, org_id)
    if wake:
        _wake_publisher(request)
    return admin_json(found)


async def get_org(request: web.Request) -> web.Response:
    return await of_org(request, tenants.get_org)


async def enable_scim(request: web.Request) -> web.Response:
    return await _set_scim(request, True)


async def disable_scim(request: web.Request) -> web.Response:
    return await _set_scim(request, False)


async def _set_scim(request: web.Request, enabled: bool) -> web.Response:
    org_id = path_uuid(request, "org_id", "Organization")
    async with connection(request) as conn:
        org = await tenants.set_scim_enabled(conn, org_id, enabled)
    request.app[AUTH].forget()  # this process at once; the others on the trigger's NOTIFY
    return admin_json(org)


async def create_token(request: web.Request) -> web.Response:
    org_id = path_uuid(request, "org_id", "Organization")
    body = await read_json(request, CreateToken) if request.body_exists else CreateToken()
    async with connection(request) as conn:
        new = await tenants.create_token(
            conn, org_id, description=body.description, ttl_days=body.ttl_days
        )
    created = CreatedToken(token=new.token, scim_base_url=request.app[BASE_URL], info=new.info)
    return admin_json(created, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    org_id = path_uuid(request, "org_id", "Organization")
    async with connection(request) as conn:
        tokens = await tenants.list_tokens(conn, org_id)
    return admin_json(answers.TokenList(tokens))


async def revoke_token(request: web.Request) -> web.Response:
    token_id = path_uuid(request, "token_id", "Token")
    visible = visible_orgs(request.get(ADMIN_PRINCIPAL))  # an org admin: its own tokens only
    async with connection(request) as conn:
        info = await tenants.revoke_token(conn, token_id, visible=visible)
    request.app[AUTH].forget()  # this process at once; the others on the trigger's NOTIFY
    return admin_json(info)


async def complete_user_setup(request: web.Request) -> web.Response:
    """The platform reports that a user has created their master key (account setup done)."""
    org_id = path_uuid(request, "org_id", "Organization")
    user_id = path_uuid(request, "user_id", "User")
    async with connection(request) as conn:
        await tenants.get_org(conn, org_id)
        user = await users.complete_setup(
            conn, Scope(org_id, request.app[EMITTER], request.app[GUARD]), user_id
        )
    return admin_json(render_user(request, user, Projection()))


# --- events ---------------------------------------------------------------------------------


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True):
    sink: str | None = None
    event_ids: list[uuid.UUID] | None = None


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    since: datetime | None = None
    from_event_id: uuid.UUID | None = None
    sinks: list[str] | None = None
    org_id: uuid.UUID | None = None


async def event_stats(request: web.Request) -> web.Response:
    async with connection(request) as conn:
        stats = await outbox.stats(conn, request.app[SETTINGS])
    return admin_json(answers.EventStats(stats))


async def list_dead_letters(request: web.Request) -> web.Response:
    sink = request.query.get("sink")
    async with connection(request) as conn:
        found = await outbox.dead_letters(conn, request.app[SETTINGS], sink)
    return admin_json(answers.DeadLetters(found))


async def retry_dead_letters(request: web.Request) -> web.Response:
    body = await read_json(request, RetryRequest) if request.body_exists else RetryRequest()
    async with connection(request) as conn:
        ids = await outbox.retry(conn, request.app[SETTINGS], body.sink, body.event_ids)
    _wake_publisher(request)
    return admin_json(answers.Retried(ids))


async def replay_events(request: web.Request) -> web.Response:
    body = await read_json(request, ReplayRequest)
    async with connection(request) as conn:
        queued = await outbox.replay(
            conn,
            request.app[SETTINGS],
            since=body.since,
            from_event=body.from_event_id,
            sinks=body.sinks,
            org_id=body.org_id,
        )
    _wake_publisher(request)
    return admin_json(answers.Queued(queued))


class MoveRequest(msgspec.Struct, forbid_unknown_fields=True):
    to: str


async def discard_orphans(request: web.Request) -> web.Response:
    sink = request.match_info["sink"]
    async with connection(request) as conn:
        count = await outbox.discard_orphans(conn, request.app[SETTINGS], sink)
    return admin_json(answers.Discarded(sink, count))


async def move_orphans(request: web.Request) -> web.Response:
    sink = request.match_info["sink"]
    body = await read_json(request, MoveRequest)
    async with connection(request) as conn:
        count = await outbox.move_orphans(conn, request.app[SETTINGS], sink, body.to)
    _wake_publisher(request)
    return admin_json(answers.Moved(sink, body.to, count))


async def signing_key(request: web.Request) -> web.Response:
    key = outbox.public_key(request.app[SETTINGS])
    return admin_json(answers.SigningKey("ed25519", key))


def _wake_publisher(request: web.Request) -> None:
    publisher = request.app.get(PUBLISHER)
    if publisher is not None:
        publisher.wake()


# --- the mass-deprovisioning guard ----------------------------------------------------------


async def guard_state(request: web.Request) -> web.Response:
    return await of_org(request, lambda conn, org_id: guard.state(conn, org_id, request.app[GUARD]))


async def configure_guard(request: web.Request) -> web.Response:
    path_uuid(request, "org_id", "Organization")  # 404 before reading the body
    body = await read_json(request, guard.GuardSettings)
    policy = request.app[GUARD]
    return await of_org(request, lambda conn, org_id: guard.configure(conn, org_id, body, policy))


async def release_guard(request: web.Request) -> web.Response:
    emitter = request.app[EMITTER]
    return await of_org(
        request, lambda conn, org_id: guard.release(conn, org_id, emitter), wake=True
    )


async def reject_guard(request: web.Request) -> web.Response:
    """Also served at .../guard/discard (the name before the rejection restored the store)."""
    emitter = request.app[EMITTER]
    return await of_org(
        request, lambda conn, org_id: guard.reject(conn, org_id, emitter), wake=True
    )


# --- role mappings ---------------------------------------------------------------------------


async def get_roles(request: web.Request) -> web.Response:
    return await of_org(request, roles.get_roles)


async def set_roles(request: web.Request) -> web.Response:
    org_id = path_uuid(request, "org_id", "Organization")
    body = await read_json(request, roles.RoleConfig)
    scope = Scope(org_id, request.app[EMITTER], request.app[GUARD])
    async with connection(request) as conn:
        found = await roles.set_roles(conn, scope, body)
    _wake_publisher(request)
    return admin_json(found)


# --- the activity log -----------------------------------------------------------------------


async def list_activity(request: web.Request) -> web.Response:
    """`?errors=true` only failed requests; `?after=ID` the entries after one (to follow);
    `?limit=` at most 1,000 (default 100)."""
    org_id = path_uuid(request, "org_id", "Organization")
    errors_only = request.query.get("errors", "").lower() in ("1", "true", "yes")
    after = query.optional_whole(request, "after")
    limit = query.whole(request, "limit", 100) or 100
    async with connection(request) as conn:
        found = await status.activity(
            conn, org_id, errors_only=errors_only, after=after, limit=limit
        )
    return admin_json(answers.ActivityList(found))


async def org_status(request: web.Request) -> web.Response:
    """The checklist for a failing "Test Connection": SCIM on/off, tokens, last success per
    IdP, the last hour's error rate, events per sink, the guard."""
    settings = request.app[SETTINGS]
    return await of_org(request, lambda conn, org_id: status.org_status(conn, org_id, settings))
