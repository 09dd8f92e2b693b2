"""Response and request-body helpers shared by the handlers."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from scim_service import errors
from scim_service.keys import EMITTER, GATE, GUARD, PRINCIPAL, REQUEST_BODY, REQUEST_ID
from scim_service.provisioning.scope import Scope
from scim_service.scim.projection import Projection, parse_projection
from scim_service.scim.query import list_response
from scim_service.scim.schema import ResourceType

SCIM_CONTENT_TYPE = "application/scim+json"

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_ACCEPTED_TYPES = (SCIM_CONTENT_TYPE, "application/json")


def encode_in_worker(resource: Any) -> msgspec.Raw:
    """A resource encoded now, for a list answer assembled later. Called in a worker thread
    for big pages: each call holds the GIL only for one resource, so the event loop runs
    between them, and the final encode of the page only copies these bytes."""
    return msgspec.Raw(_encoder.encode(resource))


# A list answer whose resources (pre-encoded in a worker thread) add up to more than this is
# written in pieces of about this size, yielding to the event loop between them: one encode of
# a 40 MB page (1,000 users at every cap) held the loop about 110 ms.
STREAM_LIST_BYTES = 1 << 20


async def scim_list(
    request: web.Request, total: int, start_index: int, resources: list[Any]
) -> web.StreamResponse:
    """A ListResponse (RFC 7644 §3.4.2); a big page of pre-encoded resources is streamed."""
    raw = bool(resources) and all(isinstance(r, msgspec.Raw) for r in resources)
    size = sum(len(r) for r in resources) if raw else 0
    if size < STREAM_LIST_BYTES:
        return scim_json(list_response(total, start_index, resources))
    envelope = list_response(total, start_index, [])
    envelope["itemsPerPage"] = len(resources)
    head = _encoder.encode(envelope)
    head = head[: head.rindex(b"[]")] + b"["  # ... "Resources":[
    resp = web.StreamResponse(status=200)
    resp.content_type = SCIM_CONTENT_TYPE
    resp.content_length = len(head) + size + len(resources) - 1 + 2
    resp.headers["X-Request-ID"] = request[REQUEST_ID]
    try:
        await resp.prepare(request)
        piece = bytearray(head)
        for i, item in enumerate(resources):
            if i:
                piece += b","
            piece += item
            if len(piece) >= STREAM_LIST_BYTES:
                await resp.write(bytes(piece))
                piece.clear()
                await asyncio.sleep(0)  # the loop runs between pieces
        piece += b"]}"
        await resp.write(bytes(piece))
        await resp.write_eof()
    except ConnectionError:  # the client went away mid-answer: its own outcome (no 5xx)
        raise errors.ClientClosed() from None
    return resp


def scim_json(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=_encoder.encode(body),
        content_type=SCIM_CONTENT_TYPE,
        headers=headers,
    )


def admin_json(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(status=status, body=_encoder.encode(body), content_type="application/json")


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Read and decode a JSON request body, with SCIM errors for every way it can be wrong."""
    if (
        request.body_exists
        and request.content_type not in _ACCEPTED_TYPES
        and request.headers.get("Content-Type")
    ):
        raise errors.UnsupportedMediaType(
            f"Content-Type {request.content_type!r} is not supported; "
            "send application/scim+json or application/json"
        )
    raw = await request.read()
    request[REQUEST_BODY] = raw  # for the activity log (masked there, off the request path)
    if not raw.strip():
        raise errors.InvalidSyntax("The request body is empty; a JSON object is required")
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise errors.InvalidValue(f"Invalid request body: {exc}") from exc
    except msgspec.DecodeError as exc:  # malformed JSON, invalid UTF-8
        raise errors.InvalidSyntax(f"The request body is not valid JSON: {exc}") from exc
    except RecursionError:  # msgspec's depth guard (about 1,000 levels here)
        raise errors.InvalidSyntax("The request body is nested too deeply") from None


async def read_scim_body(request: web.Request) -> Any:
    """A SCIM request body as plain JSON values (names are normalised later, case-insensitively)."""
    return await read_json(request, Any)


def query_values(request: web.Request, name: str) -> list[str]:
    """All values of a query parameter, its name matched case-insensitively."""
    low = name.lower()
    return [v for k, v in request.query.items() if k.lower() == low]


def query_projection(request: web.Request, rtype: ResourceType) -> Projection:
    return parse_projection(
        rtype,
        query_values(request, "attributes") or None,
        query_values(request, "excludedAttributes") or None,
    )


def scope(request: web.Request) -> Scope:
    """The organization of the caller's token, with this process's event emitter."""
    return Scope(request[PRINCIPAL].org_id, request.app[EMITTER], request.app[GUARD])


def connection(request: web.Request) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """The request's pooled connection, through the fair-share gate (scim_service/fairness.py):
    counted against the caller's organization, 429/503 instead of an unbounded wait."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        return request.app[GATE].connection(None)
    # A write of one resource queues for it outside the organization's slots (fairness.py).
    resource = request.match_info.get("id") if request.method in _WRITES else None
    return request.app[GATE].connection(principal.org_id, resource)


_WRITES = frozenset({"PUT", "PATCH", "DELETE"})
