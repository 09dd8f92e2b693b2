"""Role mappings per organization (issue 25): IdP groups → application roles.

WorkOS, Stytch and Clerk map IdP groups to application roles so that consumers need not
re-derive them from group events. An organization's configuration is a default role and a list
of mappings, each naming a group (by `id`, `displayName` or `externalId`) with a role and a
priority. A user's effective role is the role of the highest-priority mapping whose group they
are a member of (the first given wins a tie), else the default role (`null`: no role).
Optionally (`source: "scim_roles"`) the role comes from the user's SCIM `roles` attribute
instead (Entra app-role assignments): its primary value, else its first, else the default.

For the admin API (`GET`/`PUT /admin/v1/orgs/{org_id}/roles`) and the CLI (`scim-service roles
ORG_ID`). The effective role of any number of users is one set-based statement
(store/roles.py `effective_roles`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from scim_service import errors
from scim_service.logs import get_logger
from scim_service.provisioning import role_events, tx
from scim_service.provisioning.scope import Scope
from scim_service.store import roles as store

log = get_logger("scim_service.roles")

MAX_MAPPINGS = 1000
MAX_ROLE = 100  # characters of a role name
MAX_PRIORITY = 1_000_000

RoleSource = Literal["groups", "scim_roles"]


class GroupRef(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    rename={"id_": "id"},
):
    """Exactly one of the three: the group's `id`, its `displayName` (case-insensitive) or its
    `externalId`."""

    displayName: str | None = None
    externalId: str | None = None
    id_: str | None = None


class Mapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    group: GroupRef
    role: str
    priority: int = 0


class RoleConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole configuration (PUT replaces it)."""

    default_role: str | None = None
    mappings: list[Mapping] = msgspec.field(default_factory=list)
    source: RoleSource = "groups"


class MappedGroup(msgspec.Struct, frozen=True, kw_only=True):
    """The group a mapping names now (none: no such group yet)."""

    id: uuid.UUID
    displayName: str
    member_count: int


class MappingState(msgspec.Struct, frozen=True, kw_only=True):
    group: GroupRef
    role: str
    priority: int
    matched: MappedGroup | None


class RoleState(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    default_role: str | None
    source: RoleSource
    mappings: list[MappingState]
    updated_at: datetime | None


def _role(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    role = value.strip()
    if not role:
        raise errors.InvalidValue(f"{where}: a role must not be empty (null: no role)")
    if len(role) > MAX_ROLE:
        raise errors.InvalidValue(f"{where}: a role is at most {MAX_ROLE} characters")
    return role


def _ref(ref: GroupRef, where: str) -> tuple[str, str]:
    given = [
        (kind, value)
        for kind, value in (
            ("id", ref.id_),
            ("displayName", ref.displayName),
            ("externalId", ref.externalId),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise errors.InvalidValue(
            f"{where}.group: name the group by exactly one of id, displayName, externalId"
        )
    kind, value = given[0]
    value = value.strip()
    if not value or len(value) > 1000:
        raise errors.InvalidValue(f"{where}.group.{kind}: 1 to 1000 characters")
    if kind == "id":
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise errors.InvalidValue(f"{where}.group.id: {value!r} is not a group id") from None
    return kind, value


def validate(config: RoleConfig) -> list[tuple[str, str, str, int]]:
    """The mappings as (kind, value, role, priority) rows; 400 `invalidValue` naming the first
    problem (the configuration is then left as it was)."""
    if len(config.mappings) > MAX_MAPPINGS:
        raise errors.InvalidValue(f"mappings: at most {MAX_MAPPINGS}")
    _role(config.default_role, "default_role")
    rows: list[tuple[str, str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for i, m in enumerate(config.mappings):
        where = f"mappings[{i}]"
        kind, value = _ref(m.group, where)
        role = _role(m.role, f"{where}.role")
        assert role is not None
        if not -MAX_PRIORITY <= m.priority <= MAX_PRIORITY:
            raise errors.InvalidValue(
                f"{where}.priority: between -{MAX_PRIORITY} and {MAX_PRIORITY}"
            )
        key = (kind, value.lower())
        if key in seen:
            raise errors.InvalidValue(f"{where}.group: the same group is mapped twice")
        seen.add(key)
        rows.append((kind, value, role, m.priority))
    return rows


async def get_roles(conn: asyncpg.Connection, org_id: uuid.UUID) -> RoleState:
    """The configuration, each mapping with the group it names now (404: no organization)."""
    from scim_service.provisioning import tenants

    await tenants.get_org(conn, org_id)
    settings = await store.settings(conn, org_id)
    mappings = [
        MappingState(
            group=_group_ref(r["match_kind"], r["match_value"]),
            role=r["role"],
            priority=r["priority"],
            matched=None
            if r["group_id"] is None
            else MappedGroup(
                id=r["group_id"],
                displayName=r["group_display_name"],
                member_count=r["member_count"],
            ),
        )
        for r in await store.mappings(conn, org_id)
    ]
    return RoleState(
        org_id=org_id,
        default_role=settings["default_role"] if settings else None,
        source=settings["role_source"] if settings else "groups",
        mappings=mappings,
        updated_at=settings["updated_at"] if settings else None,
    )


def _group_ref(kind: str, value: str) -> GroupRef:
    if kind == "id":
        return GroupRef(id_=value)
    if kind == "displayName":
        return GroupRef(displayName=value)
    return GroupRef(externalId=value)


async def set_roles(conn: asyncpg.Connection, scope: Scope, config: RoleConfig) -> RoleState:
    """Replace the configuration in one transaction, serialised per organization; every user
    whose effective role it moves gets a user.updated ("role") in the same transaction."""
    org_id = scope.org_id
    rows = validate(config)
    default_role = _role(config.default_role, "default_role")

    async def work() -> int:
        if not await store.lock(conn, org_id):
            raise errors.NotFound(f"Organization {org_id} not found")
        before = await role_events.watch_everyone(conn, scope)
        await store.replace(
            conn, org_id, default_role=default_role, source=config.source, rows=rows
        )
        return await role_events.emit_changes(conn, scope, before)

    moved = await tx.write(conn, work)
    log.info(
        "roles_configured",
        org_id=str(org_id),
        mappings=len(rows),
        source=config.source,
        roles_changed=moved,
    )
    return await get_roles(conn, org_id)


async def effective_roles(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """The effective role of each user of the organization in `user_ids`."""
    if not user_ids:
        return {}
    return {u: r.role for u, r in (await store.effective_roles(conn, org_id, user_ids)).items()}


def role_from_attrs(attrs: dict[str, object], default: str | None) -> str | None:
    """The role from a user's SCIM `roles` (source scim_roles): the primary value, else the
    first, else `default` (the same rule as sql/queries/roles.sql effective_roles)."""
    values = [r for r in attrs.get("roles") or [] if isinstance(r, dict) and r.get("value")]  # type: ignore[attr-defined]
    for r in values:
        if r.get("primary") is True:
            return str(r["value"])
    return str(values[0]["value"]) if values else default


async def role_of_new_user(
    conn: asyncpg.Connection, org_id: uuid.UUID, attrs: dict[str, object]
) -> str | None:
    """A user about to be created is in no group: the default role, or its SCIM roles'."""
    settings = await store.settings(conn, org_id)
    if settings is None:
        return None
    if settings["role_source"] == "scim_roles":
        return role_from_attrs(attrs, settings["default_role"])
    return settings["default_role"]  # type: ignore[no-any-return]


async def roles_around_update(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, new: dict[str, object]
) -> tuple[str | None, str | None]:
    """A user's role before an update of its attributes and after it (only the SCIM `roles`
    source can move it: memberships are not attributes)."""
    row = await store.effective_role_row(conn, org_id, user_id)
    if row is None:
        return None, None
    before = row["role"]
    if row["source"] == "scim_roles":
        return before, role_from_attrs(new, row["default_role"])
    return before, before
