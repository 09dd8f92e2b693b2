"""The request middleware: request id, authentication, error rendering, one log line."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
import structlog
from aiohttp import web

from scim_service import errors
from scim_service.activity import ActivityLog, Record, token_prefix_of
from scim_service.http import audit, connections
from scim_service.http.authz import authorize
from scim_service.http.paths import SCIM_PREFIX, canonical_route
from scim_service.http.responses import SCIM_CONTENT_TYPE
from scim_service.keys import (
    ACTIVITY,
    ADMIN_DIGEST,
    ADMIN_PRINCIPAL,
    AUTH,
    AUTH_FAILURE,
    AUTH_ORG,
    GATE,
    METRICS,
    PRINCIPAL,
    REQUEST_BODY,
    REQUEST_ID,
    SETTINGS,
    SKIPPED_MEMBERS,
)
from scim_service.logs import get_logger
from scim_service.provisioning import credentials
from scim_service.store.db import driver_error
from scim_service.tokens import ADMIN_TOKEN_PREFIX, looks_like_token, matches_digest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


log = get_logger("scim_service.http")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-ID")
    if incoming and _REQUEST_ID_RE.match(incoming):
        return incoming
    return os.urandom(16).hex()  # 32 hex characters, like uuid4().hex, at half the cost


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "<unmatched>"


def _error_body(err: errors.ScimError) -> bytes:
    body = err.to_body()
    try:
        return msgspec.json.encode(body)
    except UnicodeEncodeError:
        # The detail echoes request bytes that are not UTF-8 (aiohttp decodes headers with
        # surrogateescape, e.g. an If-Match of raw Latin-1): show them escaped, never fail.
        body["detail"] = body["detail"].encode("utf-8", "backslashreplace").decode("utf-8")
        return msgspec.json.encode(body)


def error_response(request: web.Request, err: errors.ScimError) -> web.Response:
    is_scim = request.path.startswith("/scim")
    resp = web.Response(
        status=err.status,
        body=_error_body(err),
        content_type=SCIM_CONTENT_TYPE if is_scim else "application/json",
    )
    if isinstance(err, errors.Unauthorized):
        resp.headers["WWW-Authenticate"] = (
            'Bearer realm="scim"' if is_scim else 'Bearer realm="admin"'
        )
    if err.retry_after is not None:  # RFC 9110 §10.2.3: delay-seconds, a whole number
        resp.headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
    if isinstance(err, errors.MethodNotAllowed) and err.allowed:
        resp.headers["Allow"] = ", ".join(sorted(err.allowed))
    return resp


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> errors.ScimError:
    if isinstance(exc, web.HTTPNotFound):
        return errors.NotFound(f"No endpoint at {request.path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return errors.MethodNotAllowed(
            f"{request.method} is not supported on {request.path}",
            allowed=tuple(exc.allowed_methods),
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app[SETTINGS].max_body_bytes
        return errors.PayloadTooLarge(f"The request body is larger than {limit} bytes")
    generic = errors.ScimError(exc.reason)
    generic.status = exc.status  # type: ignore[misc]
    return generic


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, authentication, error rendering and the one canonical log line per request
    (one middleware: each extra layer costs every request a few microseconds)."""
    rid = _request_id(request)
    request[REQUEST_ID] = rid
    connections.request_started(request)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    started = time.perf_counter()
    resp: web.StreamResponse
    try:
        if request.match_info.http_exception is not None:  # no route: maybe `/users/`
            request, handler = await canonical_route(request, handler)
            request[REQUEST_ID] = rid
        length = request.content_length
        if length is not None and length > request.app[SETTINGS].max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(
                max_size=request.app[SETTINGS].max_body_bytes, actual_size=length
            )
        await authenticate(request)
        resp = await handler(request)
    except errors.ScimError as exc:
        if isinstance(exc, errors.Unavailable) and exc.reason == errors.LOCK_TIMEOUT:
            _lock_timed_out(request)
        resp = error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = error_response(request, _from_http_exception(request, exc))
    except Exception as exc:
        if _client_gone(request, exc):
            # The body read failed because the client hung up (aiohttp sets the reset on the
            # request's payload): its own outcome, no 5xx and no database signal.
            log.info("client_closed", method=request.method, route=_route_template(request))
            resp = error_response(request, errors.ClientClosed())
            return await _finish(request, resp, rid, started)
        # Driver errors raised outside the store's guard (filters, admin writes, token lookups):
        # a value the database rejects is a 400, the database going away a 503.
        translated = driver_error(exc)
        if translated is None:
            log.exception("unhandled_error", method=request.method, route=_route_template(request))
            translated = errors.InternalError(f"Internal server error (request id {rid})")
        elif (
            isinstance(translated, errors.Unavailable) and translated.reason == errors.LOCK_TIMEOUT
        ):
            _lock_timed_out(request)
        elif isinstance(translated, errors.Unavailable):
            log.warning("database_unavailable", reason=translated.reason, error=type(exc).__name__)
        else:
            log.info("data_error", sqlstate=getattr(exc, "sqlstate", None))
        resp = error_response(request, translated)
    return await _finish(request, resp, rid, started)


def _lock_timed_out(request: web.Request) -> None:
    """A row lock another transaction held past SCIM_DB_REQUEST_LOCK_TIMEOUT: contention on one
    resource (503 with Retry-After), not the database going away, so it is logged and counted
    as such (`scim_rejected_requests_total{status="503",reason="lock_timeout"}`)."""
    log.info("resource_busy", reason=errors.LOCK_TIMEOUT, route=_route_template(request))
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.rejected(503, errors.LOCK_TIMEOUT)


def _client_gone(request: web.Request, exc: Exception) -> bool:
    """Whether `exc` is the client hanging up: the very exception aiohttp set on the request's
    payload when the connection was lost (a socket error of the database is not)."""
    return isinstance(exc, ConnectionError) and request.content.exception() is exc


async def _finish(
    request: web.Request, resp: web.StreamResponse, rid: str, started: float
) -> web.StreamResponse:
    """The request id header, the metrics, the one log line, the audit trail, the activity log."""
    connections.request_finished(request)
    resp.headers["X-Request-ID"] = rid
    principal = request.get(PRINCIPAL)
    route = _route_template(request)
    elapsed = time.perf_counter() - started
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe_request(request.method, route, resp.status, elapsed)
    log.info(
        "http_request",
        method=request.method,
        route=route,
        status=resp.status,
        duration_ms=round(elapsed * 1000, 3),
        org_id=str(principal.org_id) if principal is not None else None,
    )
    if ADMIN_PRINCIPAL in request:  # an authenticated admin request: the audit trail
        await audit.record(request, resp)
    activity = request.app.get(ACTIVITY)
    if activity is not None and request.path.startswith(SCIM_PREFIX):
        _record(request, activity, resp, route, elapsed)
    return resp


def _record(
    request: web.Request,
    activity: ActivityLog,
    resp: web.StreamResponse,
    route: str,
    elapsed: float,
) -> None:
    """Hand the request to the activity log (a queue append; the work happens later)."""
    status = resp.status
    skipped = request.get(SKIPPED_MEMBERS, ())
    if not activity.wants(status) and not (skipped and activity.mode != "off"):
        return
    principal = request.get(PRINCIPAL)
    failure = request.get(AUTH_FAILURE)
    if principal is None and failure is None:
        return  # no organization to file it under (a path outside the SCIM API's routes)
    org_id = principal.org_id if principal is not None else request.get(AUTH_ORG)
    prefix = token_prefix_of(request.headers.get("Authorization"))
    if org_id is None:  # only a public prefix to file it by: unverified
        if prefix is None:
            return  # filed nowhere
        if not activity.admit_unverified(request.remote or "?", prefix):
            return  # over the per-source and prefix rate: counted, not kept
    keep = activity.keep_bodies(status)
    body = resp.body if isinstance(resp, web.Response) else None
    activity.record(
        Record(
            org_id=org_id,
            at=datetime.now(UTC),
            method=request.method,
            route=route,
            path=request.path,
            status=status,
            duration_ms=round(elapsed * 1000, 3),
            user_agent=request.headers.get("User-Agent"),
            token_prefix=prefix,
            auth_failure=failure,
            request_id=request[REQUEST_ID],
            request_body=request.get(REQUEST_BODY) if keep else None,
            response_body=body if isinstance(body, bytes) and (keep or status >= 400) else None,
            keep_bodies=keep,
            skipped_members=skipped,
        )
    )


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise errors.Unauthorized()
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.Unauthorized("Use 'Authorization: Bearer <token>'", reason="malformed")
    return value.strip()


async def authenticate(request: web.Request) -> None:
    """SCIM paths: a SCIM token resolves to its organization. Admin paths: the admin token."""
    path = request.path
    scim = path.startswith("/scim/") or path == "/scim"
    if not scim and not (path.startswith("/admin/") or path == "/admin"):
        return
    auth = request.app.get(AUTH)
    if auth is None:  # a listener without the APIs (the metrics port, the publisher's)
        raise errors.NotFound(f"No endpoint at {path}")
    try:
        if scim:
            principal = await auth.authenticate(bearer_token(request))
            request[PRINCIPAL] = principal
            request.app[GATE].check_rate(principal.token_id)  # 429 over SCIM_TOKEN_RATE_LIMIT
            return
        token = bearer_token(request)
        if looks_like_token(token, ADMIN_TOKEN_PREFIX):  # a scoped credential (issue 22)
            async with request.app[GATE].connection(None) as conn:
                admin = await credentials.authenticate(conn, token)
        else:  # SCIM_ADMIN_TOKEN: the bootstrap operator credential
            digest = request.app.get(ADMIN_DIGEST)
            if digest is None:
                raise errors.NotFound("The admin API is disabled (SCIM_ADMIN_TOKEN is not set)")
            if not matches_digest(token, digest):
                raise errors.Unauthorized("The admin token is not valid", reason="admin")
            admin = credentials.BOOTSTRAP
        request[ADMIN_PRINCIPAL] = admin
    except errors.Unauthorized as exc:
        request.app[METRICS].auth_failure(exc.reason)
        request[AUTH_FAILURE] = exc.reason
        if exc.owner_org is not None:
            request[AUTH_ORG] = exc.owner_org
        raise
    except errors.Forbidden as exc:
        request.app[METRICS].auth_failure("disabled")
        request[AUTH_FAILURE] = "disabled"
        if exc.owner_org is not None:
            request[AUTH_ORG] = exc.owner_org
        raise
    authorize(request, admin)  # 403 outside its scope, 404 for an org it may not see
