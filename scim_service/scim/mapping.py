"""Stored rows → SCIM resources (the output representation, RFC 7643 §3)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from scim_service.scim import schema as s


def etag(version: int) -> str:
    """The weak ETag of a resource version (RFC 7644 §3.14); also `meta.version`."""
    return f'W/"{version}"'


def meta(
    resource_type: str, location: str, created: datetime, modified: datetime, version: int
) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": created,
        "lastModified": modified,
        "location": location,
        "version": etag(version),
    }


def user_location(base_url: str, user_id: uuid.UUID | str) -> str:
    return f"{base_url}/Users/{user_id}"


def group_location(base_url: str, group_id: uuid.UUID | str) -> str:
    return f"{base_url}/Groups/{group_id}"


_USER_ORDER = tuple(a.name for a in s.USER.attributes if a.name != "groups")


def user_resource(
    *,
    user_id: uuid.UUID,
    attrs: dict[str, Any],
    setup_state: str,
    setup_completed_at: datetime | None,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    groups: list[tuple[uuid.UUID, str]] | None,
    base_url: str,
) -> dict[str, Any]:
    schemas = [s.USER_SCHEMA]
    if s.ENTERPRISE_USER_SCHEMA in attrs:
        schemas.append(s.ENTERPRISE_USER_SCHEMA)
    schemas.append(s.PLATFORM_USER_SCHEMA)
    out: dict[str, Any] = {"schemas": schemas, "id": str(user_id)}
    if "externalId" in attrs:
        out["externalId"] = attrs["externalId"]
    # jsonb keeps keys in its own order; answer in the schema's order instead.
    for name in _USER_ORDER:
        value = attrs.get(name)
        if value is not None:
            out[name] = value
    if groups:
        out["groups"] = [
            {
                "value": str(gid),
                "$ref": group_location(base_url, gid),
                "display": name,
                "type": "direct",
            }
            for gid, name in groups
        ]
    if s.ENTERPRISE_USER_SCHEMA in attrs:
        out[s.ENTERPRISE_USER_SCHEMA] = attrs[s.ENTERPRISE_USER_SCHEMA]
    platform: dict[str, Any] = {"setupState": setup_state}
    if setup_completed_at is not None:
        platform["setupCompletedAt"] = setup_completed_at
    out[s.PLATFORM_USER_SCHEMA] = platform
    out["meta"] = meta("User", user_location(base_url, user_id), created_at, updated_at, version)
    return out


def group_resource(
    *,
    group_id: uuid.UUID,
    attrs: dict[str, Any],
    members: list[tuple[uuid.UUID, str]] | None,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    base_url: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"schemas": [s.GROUP_SCHEMA], "id": str(group_id)}
    if "externalId" in attrs:
        out["externalId"] = attrs["externalId"]
    out["displayName"] = attrs.get("displayName")
    if members:
        out["members"] = [
            {
                "value": str(uid),
                "$ref": user_location(base_url, uid),
                "display": display,
                "type": "User",
            }
            for uid, display in members
        ]
    out["meta"] = meta("Group", group_location(base_url, group_id), created_at, updated_at, version)
    return out
