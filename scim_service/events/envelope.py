"""Event types and their CloudEvents 1.0 envelope (structured JSON mode).

Every event carries the extension attributes `orgid` and `resourceversion`: a per-resource
number that grows by exactly one with each event of that resource, so a consumer can order the
events of one `subject` and notice a gap. The JSON shape of each type is part of the contract
with downstream services (README, "Consuming events") and is pinned by tests.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

USER_PROVISIONED = "user.provisioned"
USER_UPDATED = "user.updated"
USER_DEPROVISIONED = "user.deprovisioned"
USER_REACTIVATED = "user.reactivated"
USER_SETUP_COMPLETED = "user.setup_completed"
GROUP_CHANGED = "group.changed"
# The mass-deprovisioning guard tripped: this organization's access-reducing changes are held.
DIRECTORY_GUARD_TRIPPED = "directory.guard_tripped"
# An administrator released the held changes (delivered next, in order) or rejected them.
DIRECTORY_GUARD_RELEASED = "directory.guard_released"
DIRECTORY_GUARD_REJECTED = "directory.guard_rejected"
EVENT_TYPES = (
    USER_PROVISIONED,
    USER_UPDATED,
    USER_DEPROVISIONED,
    USER_REACTIVATED,
    USER_SETUP_COMPLETED,
    GROUP_CHANGED,
    DIRECTORY_GUARD_TRIPPED,
    DIRECTORY_GUARD_RELEASED,
    DIRECTORY_GUARD_REJECTED,
)

# A group.changed event lists at most this many added (or removed) user ids; a bigger change
# becomes several consecutive events, each with its own resourceversion.
MEMBER_CHUNK = 1000


class Name(msgspec.Struct, kw_only=True):
    formatted: str | None = None
    given_name: str | None = None
    family_name: str | None = None


class UserProfile(msgspec.Struct, kw_only=True):
    """The public profile fields of a user, as downstream services show them."""

    user_name: str
    external_id: str | None
    display_name: str | None
    email: str | None
    name: Name | None
    title: str | None
    active: bool
    # The user's effective role (README "Roles from IdP groups"; null: none).
    role: str | None = None


class UserProvisioned(msgspec.Struct, kw_only=True):
    org_id: str
    user_id: str
    external_id: str | None
    user_name: str
    email: str | None
    name: Name | None
    display_name: str | None
    active: bool
    role: str | None = None  # the user's effective role (README "Roles from IdP groups")
    # The platform is end-to-end encrypted: a provisioned user exists but must still finish
    # account setup (create their master key) at first login. The platform invites them.
    setup_state: Literal["pending"] = "pending"


class UserUpdated(msgspec.Struct, kw_only=True):
    org_id: str
    user_id: str
    changed: list[str]  # attribute names (extension attributes as urn:...:name)
    profile: UserProfile
    # The values before this change of exactly the attributes in `changed` (SCIM JSON values,
    # keyed like `changed`; null: the attribute was absent). Same convention in group.changed.
    previous: dict[str, Any] = msgspec.field(default_factory=dict)


class UserDeprovisioned(msgspec.Struct, kw_only=True):
    org_id: str
    user_id: str
    user_name: str
    external_id: str | None
    reason: Literal["deactivated", "deleted"]


class UserReactivated(msgspec.Struct, kw_only=True):
    org_id: str
    user_id: str
    user_name: str
    external_id: str | None


class UserSetupCompleted(msgspec.Struct, kw_only=True):
    org_id: str
    user_id: str
    user_name: str
    setup_state: Literal["complete"] = "complete"
    completed_at: datetime


class GroupChanged(msgspec.Struct, kw_only=True):
    org_id: str
    group_id: str
    display_name: str
    external_id: str | None
    # created, renamed, updated (externalId), members_added, members_removed, deleted
    changes: list[str]
    added: list[str]
    removed: list[str]
    member_count: int
    previous_display_name: str | None = None  # kept for existing consumers: previous.displayName
    # The values before this change of the group's attributes that changed (displayName,
    # externalId, ...), keyed by SCIM attribute name like user.updated's `previous`.
    previous: dict[str, Any] = msgspec.field(default_factory=dict)


class GuardTripped(msgspec.Struct, kw_only=True):
    """Subject: the organization. Its access-reducing changes (deprovisions, membership
    removals, and what follows them on the same resources) are held from now on until an
    administrator releases (delivers, in order) or rejects them (never delivered)."""

    org_id: str
    tripped_at: datetime
    deprovisioned: int  # distinct users deprovisioned within the window, when it tripped
    active_users: int  # active users at the start of the window (active now + deprovisioned)
    percent: float
    min_users: int
    window_minutes: float
    # Distinct users who lost access within the window (deprovisioned or removed from a group):
    # what the threshold counts.
    affected_users: int = 0


class GuardDecided(msgspec.Struct, kw_only=True):
    """Subject: the organization. directory.guard_released: the held changes follow this event
    on their resources, in order. directory.guard_rejected: they were never delivered and never
    will be; the held users and groups are back in the state you have (their next events
    continue from the version you hold: no gap)."""

    org_id: str
    decided_at: datetime
    tripped_at: datetime | None  # None: staged changes decided before any trip
    users: int  # held users decided
    groups: int  # held groups decided
    events: int  # held events delivered (released) or dropped (rejected)


EventData = (
    UserProvisioned
    | UserUpdated
    | UserDeprovisioned
    | UserReactivated
    | UserSetupCompleted
    | GroupChanged
    | GuardTripped
    | GuardDecided
)


class CloudEvent(msgspec.Struct, kw_only=True):
    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    datacontenttype: str = "application/json"
    orgid: str
    resourceversion: int
    data: EventData


_encoder = msgspec.json.Encoder()


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event a write produces, before the outbox gives it an id, time and version."""

    type: str
    resource_type: Literal["User", "Group", "Organization"]
    subject: uuid.UUID
    data: EventData
    # Not part of the payload: this event lowers the user's role (guard.reductions).
    reduces: bool = False


def encode(
    event: NewEvent,
    *,
    event_id: uuid.UUID,
    source: str,
    time: datetime,
    org_id: uuid.UUID,
    version: int,
) -> bytes:
    return _encoder.encode(
        CloudEvent(
            id=str(event_id),
            source=source,
            type=event.type,
            subject=str(event.subject),
            time=time,
            orgid=str(org_id),
            resourceversion=version,
            data=event.data,
        )
    )


# --- building events from user/group state ---------------------------------------------------


def primary_email(attrs: dict[str, Any]) -> str | None:
    emails = [e for e in attrs.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    for e in emails:
        if e.get("primary") is True:
            return str(e["value"])
    return str(emails[0]["value"]) if emails else None


def _name(attrs: dict[str, Any]) -> Name | None:
    name = attrs.get("name")
    if not isinstance(name, dict):
        return None
    return Name(
        formatted=name.get("formatted"),
        given_name=name.get("givenName"),
        family_name=name.get("familyName"),
    )


def profile(attrs: dict[str, Any], role: str | None = None) -> UserProfile:
    return UserProfile(
        role=role,
        user_name=attrs.get("userName", ""),
        external_id=attrs.get("externalId"),
        display_name=attrs.get("displayName"),
        email=primary_email(attrs),
        name=_name(attrs),
        title=attrs.get("title"),
        active=bool(attrs.get("active", True)),
    )


def changed_attributes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Top-level attribute names whose values differ; extension attributes as `urn:...:name`."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key.startswith("urn:"):
            a, b = old.get(key) or {}, new.get(key) or {}
            out.extend(f"{key}:{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        elif old.get(key) != new.get(key):
            out.append(key)
    return out


def previous_values(old: dict[str, Any], changed: list[str]) -> dict[str, Any]:
    """The old values of the attributes `changed_attributes` named (`urn:...:name` reaches into
    the extension object)."""
    out: dict[str, Any] = {}
    for key in changed:
        if key.startswith("urn:") and key not in old:
            urn, _, name = key.rpartition(":")
            ext = old.get(urn)
            out[key] = ext.get(name) if isinstance(ext, dict) else None
        else:
            out[key] = old.get(key)
    return out


def user_provisioned(
    org_id: uuid.UUID, user_id: uuid.UUID, attrs: dict[str, Any], role: str | None = None
) -> NewEvent:
    p = profile(attrs, role)
    data = UserProvisioned(
        org_id=str(org_id),
        user_id=str(user_id),
        external_id=p.external_id,
        user_name=p.user_name,
        email=p.email,
        name=p.name,
        display_name=p.display_name,
        active=p.active,
        role=role,
    )
    return NewEvent(type=USER_PROVISIONED, resource_type="User", subject=user_id, data=data)


def user_changes(
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    old: dict[str, Any],
    new: dict[str, Any],
    roles: tuple[str | None, str | None] = (None, None),
) -> list[NewEvent]:
    """The events of one user update: reactivated / updated / deprovisioned, in that order.
    `roles`: the effective role before and after (they differ when it comes from the SCIM
    `roles` attribute and that changed: "role" is then in `changed`)."""
    was, now = bool(old.get("active", True)), bool(new.get("active", True))
    changed = [c for c in changed_attributes(old, new) if c != "active"]
    role_before, role = roles
    if role_before != role:
        changed.append("role")
    ids = {"org_id": str(org_id), "user_id": str(user_id)}
    who = {"user_name": new.get("userName", ""), "external_id": new.get("externalId")}
    events: list[NewEvent] = []
    if not was and now:
        events.append(_user(USER_REACTIVATED, user_id, UserReactivated(**ids, **who)))
    if changed:
        events.append(
            _user(
                USER_UPDATED,
                user_id,
                UserUpdated(
                    **ids,
                    changed=changed,
                    profile=profile(new, role),
                    previous={
                        **previous_values(old, [c for c in changed if c != "role"]),
                        **({"role": role_before} if "role" in changed else {}),
                    },
                ),
            )
        )
    if was and not now:
        events.append(
            _user(
                USER_DEPROVISIONED, user_id, UserDeprovisioned(**ids, **who, reason="deactivated")
            )
        )
    return events


def user_role_changed(
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    attrs: dict[str, Any],
    role: str | None,
    previous: str | None,
    *,
    lowered: bool,
) -> NewEvent:
    """user.updated with `changed: ["role"]`: the user's effective role moved (a membership
    change, a group rename or delete, a mapping change)."""
    p = profile(attrs, role)
    data = UserUpdated(
        org_id=str(org_id),
        user_id=str(user_id),
        changed=["role"],
        profile=p,
        previous={"role": previous},
    )
    return NewEvent(
        type=USER_UPDATED, resource_type="User", subject=user_id, data=data, reduces=lowered
    )


def user_deleted(org_id: uuid.UUID, user_id: uuid.UUID, attrs: dict[str, Any]) -> NewEvent:
    data = UserDeprovisioned(
        org_id=str(org_id),
        user_id=str(user_id),
        user_name=attrs.get("userName", ""),
        external_id=attrs.get("externalId"),
        reason="deleted",
    )
    return _user(USER_DEPROVISIONED, user_id, data)


def user_setup_completed(
    org_id: uuid.UUID, user_id: uuid.UUID, attrs: dict[str, Any], completed_at: datetime
) -> NewEvent:
    data = UserSetupCompleted(
        org_id=str(org_id),
        user_id=str(user_id),
        user_name=attrs.get("userName", ""),
        completed_at=completed_at,
    )
    return _user(USER_SETUP_COMPLETED, user_id, data)


def guard_tripped(org_id: uuid.UUID, data: GuardTripped) -> NewEvent:
    return NewEvent(
        type=DIRECTORY_GUARD_TRIPPED, resource_type="Organization", subject=org_id, data=data
    )


def guard_decided(org_id: uuid.UUID, action: str, data: GuardDecided) -> NewEvent:
    kind = DIRECTORY_GUARD_RELEASED if action == "released" else DIRECTORY_GUARD_REJECTED
    return NewEvent(type=kind, resource_type="Organization", subject=org_id, data=data)


def _user(type_: str, user_id: uuid.UUID, data: EventData) -> NewEvent:
    return NewEvent(type=type_, resource_type="User", subject=user_id, data=data)


def group_changed(
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    attrs: dict[str, Any],
    *,
    kinds: list[str],
    added: list[uuid.UUID],
    removed: list[uuid.UUID],
    member_count: int,
    previous_display_name: str | None = None,
    previous: dict[str, Any] | None = None,
) -> list[NewEvent]:
    """One group.changed event, or several when more than MEMBER_CHUNK ids changed: the first
    carries every change kind, each carries at most MEMBER_CHUNK added and removed ids."""
    add = [str(u) for u in added]
    rem = [str(u) for u in removed]
    chunks = max(1, -(-len(add) // MEMBER_CHUNK), -(-len(rem) // MEMBER_CHUNK))
    other = [k for k in kinds if k not in ("members_added", "members_removed")]
    events = []
    for i in range(chunks):
        a = add[i * MEMBER_CHUNK : (i + 1) * MEMBER_CHUNK]
        r = rem[i * MEMBER_CHUNK : (i + 1) * MEMBER_CHUNK]
        changes = (
            (other if i == 0 else [])
            + (["members_added"] if a else [])
            + (["members_removed"] if r else [])
        )
        data = GroupChanged(
            org_id=str(org_id),
            group_id=str(group_id),
            display_name=attrs.get("displayName", ""),
            external_id=attrs.get("externalId"),
            changes=changes,
            added=a,
            removed=r,
            member_count=member_count,
            previous_display_name=previous_display_name if i == 0 else None,
            previous=(previous or {}) if i == 0 else {},
        )
        events.append(
            NewEvent(type=GROUP_CHANGED, resource_type="Group", subject=group_id, data=data)
        )
    return events
