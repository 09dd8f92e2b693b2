"""Tolerant SCIM paths: endpoint names in any case, trailing slashes ignored.

RFC 7644 §3.2 spells the endpoints `/Users`, `/Groups`, `/ServiceProviderConfig`, ...; several
clients and reference implementations send `/users` or `/serviceproviderconfig`, and some
append a slash (`/Users/`, `/Users/?filter=...`, `/Users/{id}/`). Those mean the same resource,
and IdPs do not follow redirects on POST, so the request is answered in place. The route table
keeps the canonical spelling (an exact dict lookup for every canonical request); only a request
that matched no route is looked at again here, and `Location`/`meta.location` are built from
the canonical names whatever the request said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SCIM_PREFIX = "/scim/v2"
_ENDPOINTS = {
    name.lower(): name
    for name in ("Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas", ".search")
}
_WITH_ID = frozenset(("Users", "Groups", "ResourceTypes", "Schemas"))
_SEARCHABLE = frozenset(("Users", "Groups"))


def canonical_scim_path(raw_path: str) -> str | None:
    """The canonical spelling of a SCIM endpoint path that differs from `raw_path` only in the
    case of `/scim/v2` and the endpoint names or by trailing slashes; None when `raw_path` is
    no such path (or already canonical). Resource ids are kept exactly as sent."""
    n = len(SCIM_PREFIX)
    if raw_path[:n].lower() != SCIM_PREFIX or raw_path[n : n + 1] != "/":
        return None
    parts = raw_path[n:].rstrip("/").split("/")  # ["", "users"] or ["", "users", "<id>"]
    if not 2 <= len(parts) <= 3:
        return None
    name = _ENDPOINTS.get(parts[1].lower())
    if name is None:
        return None
    parts[1] = name
    if len(parts) == 3:
        if name not in _WITH_ID or not parts[2]:
            return None
        if name in _SEARCHABLE and parts[2].lower() == ".search":
            parts[2] = ".search"
    canonical = SCIM_PREFIX + "/".join(parts)
    return canonical if canonical != raw_path else None


async def canonical_route(request: web.Request, handler: Handler) -> tuple[web.Request, Handler]:
    """For a request that matched no route: the same request on its canonical path and that
    route's handler (which may answer 405 for a method the endpoint lacks), or the request
    and handler unchanged when the canonical path matches nothing either (404)."""
    path = canonical_scim_path(request.rel_url.raw_path)
    if path is None:
        return request, handler
    url = request.rel_url.with_path(path, encoded=True, keep_query=True)
    retry = request.clone(rel_url=url)
    match = await request.app.router.resolve(retry)
    missed = match.http_exception
    if missed is not None and missed.status == 404:
        return request, handler
    match.add_app(request.app)
    match.freeze()
    retry._match_info = match  # what aiohttp's Application._handle does after resolving
    return retry, match.handler
