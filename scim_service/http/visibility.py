"""What an admin credential may see (issue 22): the organizations of its scope and the event
types it may read, as the handlers filter their answers by them. What it may call is
http/authz.py."""

from __future__ import annotations

import uuid

from scim_service import errors
from scim_service.provisioning.credentials import AdminPrincipal


def not_found(org_id: uuid.UUID | str) -> errors.NotFound:
    return errors.NotFound(f"Organization {org_id} not found")


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
