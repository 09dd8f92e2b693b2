"""What each admin credential scope may do (issue 22): one table, read by the middleware for
every admin request and by the OpenAPI document (each operation's scopes).

An operation not in SCOPES needs `operator`. A request outside its credential's scope is 403
with a detail naming the scope it needs; an organization (in the path, or `org_id` of the pull
API) that the credential may not see answers 404, exactly as an unknown one does.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from scim_service import errors
from scim_service.provisioning.credentials import AdminPrincipal

ADMIN = "/admin/v1"
OPERATOR = ("operator",)
ORG_ADMIN = ("operator", "org:admin")
EVENTS_READ = ("operator", "org:admin", "events:read")

SCOPES: dict[str, tuple[str, ...]] = {
    f"GET {ADMIN}/orgs/{{org_id}}": ORG_ADMIN,
    f"POST {ADMIN}/orgs/{{org_id}}/tokens": ORG_ADMIN,
    f"GET {ADMIN}/orgs/{{org_id}}/tokens": ORG_ADMIN,
    f"DELETE {ADMIN}/tokens/{{token_id}}": ORG_ADMIN,  # its own organization's tokens only
    f"POST {ADMIN}/orgs/{{org_id}}/users/{{user_id}}/setup-complete": ORG_ADMIN,
    f"GET {ADMIN}/orgs/{{org_id}}/status": ORG_ADMIN,
    f"GET {ADMIN}/orgs/{{org_id}}/activity": ORG_ADMIN,
    f"GET {ADMIN}/orgs/{{org_id}}/roles": ORG_ADMIN,
    f"PUT {ADMIN}/orgs/{{org_id}}/roles": ORG_ADMIN,
    f"GET {ADMIN}/orgs/{{org_id}}/guard": ORG_ADMIN,
    f"PATCH {ADMIN}/orgs/{{org_id}}/guard": ORG_ADMIN,
    f"POST {ADMIN}/orgs/{{org_id}}/guard/release": ORG_ADMIN,
    f"POST {ADMIN}/orgs/{{org_id}}/guard/reject": ORG_ADMIN,
    f"POST {ADMIN}/orgs/{{org_id}}/guard/discard": ORG_ADMIN,
    f"GET {ADMIN}/audit": ORG_ADMIN,  # an org admin sees its organization's entries
    f"GET {ADMIN}/endpoints": ORG_ADMIN,  # an org admin: those that carry its events
    f"GET {ADMIN}/orgs/{{org_id}}/users": EVENTS_READ,
    f"GET {ADMIN}/orgs/{{org_id}}/groups": EVENTS_READ,
    f"GET {ADMIN}/orgs/{{org_id}}/groups/{{group_id}}/members": EVENTS_READ,
    f"GET {ADMIN}/orgs/{{org_id}}/digest": EVENTS_READ,
    f"GET {ADMIN}/events": EVENTS_READ,
    f"GET {ADMIN}/events/schemas": EVENTS_READ,
    f"GET {ADMIN}/events/signing-key": EVENTS_READ,
}


def scopes_of(operation: str) -> tuple[str, ...]:
    """The scopes that may call "METHOD /path/{param}" (the route table's spelling)."""
    return SCOPES.get(operation, OPERATOR)


def not_found(org_id: uuid.UUID | str) -> errors.NotFound:
    return errors.NotFound(f"Organization {org_id} not found")


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


def visible_orgs(principal: AdminPrincipal | None) -> frozenset[uuid.UUID] | None:
    """The organizations a credential may see (None: every one)."""
    if principal is None or principal.scope == "operator":
        return None
    return principal.org_ids


def event_filter(
    principal: AdminPrincipal | None,
    org_id: uuid.UUID | None,
    types: list[str] | None,
) -> tuple[uuid.UUID | None, list[str] | None, frozenset[uuid.UUID] | None]:
    """The pull API's `org_id` and `types` as a credential may ask for them, and the
    organizations to keep from a page (None: every one). Without `org_id` a credential of one
    organization reads that one; one of several reads theirs only."""
    orgs = visible_orgs(principal)
    if principal is None or orgs is None:
        return org_id, types, None
    if org_id is not None and org_id not in orgs:
        raise not_found(org_id)
    allowed = principal.event_types
    if allowed is not None:
        outside = sorted(set(types or ()) - set(allowed))
        if outside:
            raise errors.Forbidden(
                f"This credential ({principal.prefix}…) may read only the event types "
                f"{', '.join(allowed)}, not {', '.join(t[:64] for t in outside[:5])}"
            )
        types = types or list(allowed)
    if org_id is None and len(orgs) == 1:
        org_id = next(iter(orgs))
    return org_id, types, (None if org_id is not None else orgs)
