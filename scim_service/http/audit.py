"""The admin audit trail over HTTP (issue 22): the middleware's record of every admin request
that may change something (authenticated, so with a credential; refused ones too). Reading it,
`GET /admin/v1/audit`, is in http/credentials.py."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from scim_service.http.operations import ACTIONS, ADMIN
from scim_service.keys import ADMIN_PRINCIPAL, GATE, REQUEST_BODY, REQUEST_ID
from scim_service.logs import get_logger
from scim_service.provisioning import audit

log = get_logger("scim_service.audit")

_READ_ONLY = frozenset(("GET", "HEAD", "OPTIONS"))


def _json(raw: object) -> dict[str, Any]:
    if not isinstance(raw, bytes) or not raw:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def as_uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _subject(request: web.Request, answer: dict[str, Any]) -> tuple[uuid.UUID | None, str | None]:
    """The target organization and object: the path's ids, else what the answer names."""
    nested = answer.get("info")
    info: dict[str, Any] = nested if isinstance(nested, dict) else answer
    params = {k: v for k, v in request.match_info.items() if k != "org_id"}
    org = as_uuid(request.match_info.get("org_id")) or as_uuid(info.get("org_id"))
    if org is None:
        org = as_uuid(_json(request.get(REQUEST_BODY)).get("org_id"))
    created = info.get("id")
    target = " ".join(f"{k}={v}" for k, v in params.items()) or (
        f"id={created}" if created is not None else None
    )
    if request.path == f"{ADMIN}/orgs" and org is None:
        org = as_uuid(created)
    return org, target


async def record(request: web.Request, resp: web.StreamResponse) -> None:
    """After an admin request that may change something: one audit entry (never fails the
    request: an entry that cannot be written is an error log line)."""
    who = request.get(ADMIN_PRINCIPAL)
    if who is None or request.method in _READ_ONLY:
        return
    resource = request.match_info.route.resource
    route = f"{request.method} {resource.canonical if resource is not None else request.path}"
    body = resp.body if isinstance(resp, web.Response) else None
    answer = _json(body)
    org, target = _subject(request, answer)
    ok = resp.status < 400
    try:
        async with request.app[GATE].connection(None) as conn:
            await audit.record(
                conn,
                who,
                ACTIONS.get(route, route),
                org_id=org,
                target=target,
                status=resp.status,
                ok=ok,
                detail=None if ok else str(answer.get("detail") or "")[:500] or None,
                request_id=request.get(REQUEST_ID),
            )
    except Exception as exc:  # the change is made; losing its entry must be loud
        log.error("audit_write_failed", action=route, error=type(exc).__name__)
