"""What each admin credential scope may call (issue 22): the scopes of each operation are in
its declaration (http/operations.py), read here by the middleware for every admin request and
by the OpenAPI document.

A request outside its credential's scope is 403 with a detail naming the scope it needs; an
organization (in the path, or `org_id` of the pull API) that the credential may not see answers
404, exactly as an unknown one does (http/visibility.py).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from scim_service import errors
from scim_service.http.operations import scopes_of
from scim_service.http.visibility import not_found
from scim_service.provisioning.credentials import AdminPrincipal

__all__ = ["authorize", "scopes_of"]


def authorize(request: web.Request, principal: AdminPrincipal) -> None:
    """403 outside the credential's scope; 404 for an organization it may not see."""
    if principal.scope == "operator":
        return
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    allowed = scopes_of(f"{request.method} {route}")
    if principal.scope not in allowed:
        raise errors.Forbidden(
            f"This credential ({principal.scope}, {principal.prefix}…) may not "
            f"{request.method} {route}: that needs the scope {' or '.join(allowed)}"
        )
    raw = request.match_info.get("org_id")
    if raw is not None:
        try:
            org_id = uuid.UUID(raw)
        except ValueError:
            raise not_found(raw) from None
        if not principal.sees(org_id):
            raise not_found(org_id)
