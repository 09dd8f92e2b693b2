"""SCIM Group operations (RFC 7644 §3.3-§3.6) for one organization.

Membership changes are set-based statements (one per PATCH operation, whatever its size) run
under the group's row lock, so concurrent PATCHes of one group serialise and none is lost.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from scim_service import errors
from scim_service.events import envelope as ev
from scim_service.events.emitter import following
from scim_service.logs import get_logger
from scim_service.provisioning import role_events, tx
from scim_service.provisioning.etags import check_if_match
from scim_service.provisioning.guard import Before
from scim_service.provisioning.patching import evaluate_patch
from scim_service.provisioning.scope import Scope
from scim_service.scim import schema as s
from scim_service.scim.patch_members import plan_group_patch
from scim_service.scim.query import ListQuery
from scim_service.scim.resource import body_id_of, check_required, normalize_resource
from scim_service.store import groups as store
from scim_service.store.groups import StoredGroup as StoredGroup

log = get_logger("scim_service.groups")


class GroupChange(msgspec.Struct, kw_only=True):
    """What a write did to a group (drives the version bump and, later, its event)."""

    kinds: list[str] = msgspec.field(default_factory=list)  # created, renamed, members_added, ...
    added: list[uuid.UUID] = msgspec.field(default_factory=list)
    removed: list[uuid.UUID] = msgspec.field(default_factory=list)
    previous_display_name: str | None = None
    previous: dict[str, Any] = msgspec.field(default_factory=dict)
    # Member ids the request named that are no user of this organization: skipped (the known
    # ones applied), reported in the activity log and `org status`, never a 400.
    skipped: list[uuid.UUID] = msgspec.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.kinds)

    def events(
        self, org_id: uuid.UUID, group_id: uuid.UUID, attrs: dict[str, Any], member_count: int
    ) -> list[ev.NewEvent]:
        return ev.group_changed(
            org_id,
            group_id,
            attrs,
            kinds=self.kinds,
            added=self.added,
            removed=self.removed,
            member_count=member_count,
            previous_display_name=self.previous_display_name,
            previous=self.previous,
        )


async def _reported(
    conn: asyncpg.Connection,
    scope: Scope,
    work: Any,
) -> tuple[StoredGroup, GroupChange]:
    """Run a group write; a warning line (ids counted, not listed) when it skipped members."""
    group, change = await tx.write(conn, work)
    if change.skipped:
        log.warning(
            "members_skipped",
            org_id=str(scope.org_id),
            group_id=str(group.id),
            skipped=len(change.skipped),
        )
    return group, change


def _user_ids(values: Any) -> list[uuid.UUID]:
    """The member values that are ids (the others fail in the store, or name nobody)."""
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(v))
        except (ValueError, TypeError, AttributeError):
            continue
    return out


def _renamed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return old.get("displayName") != new.get("displayName") or old.get("externalId") != new.get(
        "externalId"
    )


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound(f"Group {raw} not found") from None


def _split_members(attrs: dict[str, Any]) -> tuple[str, ...]:
    """Take `members` out of normalised attrs: memberships live in their own table."""
    members = attrs.pop("members", None) or []
    ids: list[str] = []
    for i, m in enumerate(members):
        value = m.get("value")
        if not value:
            raise errors.InvalidValue(f"members[{i}].value is required")
        kind = m.get("type")
        if kind is not None and kind.lower() != "user":
            raise errors.InvalidValue(f"members[{i}].type {kind!r}: only users can be members")
        ids.append(value)
    return tuple(ids)


def _check_raw_members(body: Any) -> None:
    """A member object without a `value` is malformed, not "nothing" (normalisation would
    quietly drop an element that ends up empty)."""
    if not isinstance(body, dict):
        return
    for key, members in body.items():
        if isinstance(key, str) and key.lower() == "members" and isinstance(members, list):
            for i, m in enumerate(members):
                if isinstance(m, dict) and not any(
                    isinstance(k, str) and k.lower() == "value" and v for k, v in m.items()
                ):
                    raise errors.InvalidValue(f"members[{i}].value is required")


def _new_attrs(body: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    _check_raw_members(body)
    attrs = normalize_resource(s.GROUP_TYPE, body)
    ids = _split_members(attrs)
    check_required(s.GROUP_TYPE, attrs)
    return attrs, ids


async def load_members(conn: asyncpg.Connection, scope: Scope, group: StoredGroup) -> StoredGroup:
    """Fill a group's members (user id, display) from the membership table (in batches when
    the group is big)."""
    if group.member_count > store.MEMBERS_BATCH:
        group.members = await store.members_of_group(conn, scope.org_id, group.id)
    else:
        group.members = (await store.members_of(conn, scope.org_id, [group.id]))[group.id]
    return group


async def create_group(
    conn: asyncpg.Connection, scope: Scope, body: Any
) -> tuple[StoredGroup, GroupChange]:
    attrs, ids = _new_attrs(body)

    async def work() -> tuple[StoredGroup, GroupChange]:
        group_id = uuid.uuid4()
        roles = await role_events.watch_group(
            conn, scope, group_id, [attrs], _user_ids(ids), whole_group=False
        )
        group = await store.insert_group(conn, scope.org_id, group_id, attrs)
        diff = await store.add_members(conn, scope.org_id, group.id, ids)
        added = diff.added
        # Creating a group with its members is one change: version 1, its first event(s).
        change = GroupChange(kinds=["created"], added=sorted(added), skipped=list(diff.skipped))
        events = change.events(scope.org_id, group.id, attrs, len(added))
        group = await scope.write(
            conn,
            events,
            following(group.event_seq, len(events)),
            lambda rows: store.finish_new_group(
                conn, scope.org_id, group.id, members=len(added), events=rows
            ),
        )
        await role_events.emit_changes(conn, scope, roles)
        return group, change

    return await _reported(conn, scope, work)


async def get_group(conn: asyncpg.Connection, scope: Scope, group_id: uuid.UUID) -> StoredGroup:
    """The group without its members (see load_members: the handler decides whether to read
    them, after its conditional-request check)."""
    group = await store.get_group(conn, scope.org_id, group_id)
    if group is None:
        raise errors.NotFound(f"Group {group_id} not found")
    return group


async def replace_group(
    conn: asyncpg.Connection,
    scope: Scope,
    group_id: uuid.UUID,
    body: Any,
    if_match: str | None,
) -> tuple[StoredGroup, GroupChange]:
    """PUT: displayName, externalId and the whole member set are replaced."""
    body_id = body_id_of(body)
    if body_id is not None and str(body_id) != str(group_id):
        raise errors.Mutability(f"id {body_id!r} in the body does not match the URL ({group_id})")
    attrs, ids = _new_attrs(body)

    async def work() -> tuple[StoredGroup, GroupChange]:
        current = await store.lock_group(conn, scope.org_id, group_id)
        check_if_match(if_match, current.version)
        change = _attr_change(current.attrs, attrs)
        roles = await role_events.watch_group(
            conn, scope, group_id, [current.attrs, attrs], _user_ids(ids), whole_group=True
        )
        diff = await store.replace_members(conn, scope.org_id, group_id, ids)
        _record(change, diff.added, diff.removed)
        change.skipped = list(diff.skipped)
        group = await _finish(conn, scope, current, attrs, change)
        await role_events.emit_changes(conn, scope, roles)
        return group, change

    return await _reported(conn, scope, work)


async def patch_group(
    conn: asyncpg.Connection,
    scope: Scope,
    group_id: uuid.UUID,
    body: Any,
    if_match: str | None,
) -> tuple[StoredGroup, GroupChange]:
    """PATCH (RFC 7644 §3.5.2): every operation applies, in order, or none does. A member id
    naming no user of this organization is skipped, not an error (`GroupChange.skipped`): an IdP
    that does not retry a 400 (Okta) would otherwise never add the others."""
    plan = plan_group_patch(body)

    async def work() -> tuple[StoredGroup, GroupChange]:
        current = await store.lock_group(conn, scope.org_id, group_id)
        check_if_match(if_match, current.version)
        attrs = (
            await evaluate_patch(s.GROUP_TYPE, current.attrs, plan.operations)
            if plan.operations
            else current.attrs
        )
        change = _attr_change(current.attrs, attrs)
        roles = await role_events.watch_group(
            conn,
            scope,
            group_id,
            [current.attrs, attrs],
            _user_ids(i for op in plan.members for i in op.ids),
            whole_group=_renamed(current.attrs, attrs)
            or any(op.kind in ("remove_all", "replace") for op in plan.members),
        )
        added: list[uuid.UUID] = []
        removed: list[uuid.UUID] = []
        skipped: dict[uuid.UUID, None] = {}
        for op in plan.members:
            if op.kind == "add":
                diff = await store.add_members(conn, scope.org_id, group_id, op.ids)
                _net(added, removed, diff.added, ())
                skipped.update(dict.fromkeys(diff.skipped))
            elif op.kind == "remove":
                gone = await store.remove_members(conn, scope.org_id, group_id, op.ids)
                _net(added, removed, (), gone)
            elif op.kind == "remove_all":
                gone = await store.remove_all_members(conn, scope.org_id, group_id)
                _net(added, removed, (), gone)
            else:
                diff = await store.replace_members(conn, scope.org_id, group_id, op.ids)
                _net(added, removed, diff.added, diff.removed)
                skipped.update(dict.fromkeys(diff.skipped))
        _record(change, tuple(added), tuple(removed))
        change.skipped = sorted(skipped)
        group = await _finish(conn, scope, current, attrs, change)
        await role_events.emit_changes(conn, scope, roles)
        return group, change

    return await _reported(conn, scope, work)


def _net(added: list[uuid.UUID], removed: list[uuid.UUID], new: Any, gone: Any) -> None:
    """Accumulate the net effect of several member operations in one request."""
    for uid in new:
        if uid in removed:
            removed.remove(uid)  # removed then re-added: no net change
        else:
            added.append(uid)
    for uid in gone:
        if uid in added:
            added.remove(uid)
        else:
            removed.append(uid)


def _record(
    change: GroupChange, added: tuple[uuid.UUID, ...], removed: tuple[uuid.UUID, ...]
) -> None:
    if added:
        change.kinds.append("members_added")
        change.added = sorted(added)
    if removed:
        change.kinds.append("members_removed")
        change.removed = sorted(removed)


def _attr_change(old: dict[str, Any], new: dict[str, Any]) -> GroupChange:
    change = GroupChange()
    if old.get("displayName") != new.get("displayName"):
        change.kinds.append("renamed")
        change.previous_display_name = old.get("displayName")
    if {k: v for k, v in old.items() if k != "displayName"} != {
        k: v for k, v in new.items() if k != "displayName"
    }:
        change.kinds.append("updated")
    change.previous = ev.previous_values(old, ev.changed_attributes(old, new))
    return change


async def _finish(
    conn: asyncpg.Connection,
    scope: Scope,
    current: StoredGroup,
    attrs: dict[str, Any],
    change: GroupChange,
) -> StoredGroup:
    if not change.changed:
        return current  # nothing changed: same version, no event
    delta = len(change.added) - len(change.removed)
    events = change.events(scope.org_id, current.id, attrs, current.member_count + delta)
    return await scope.write(
        conn,
        events,
        following(current.event_seq, len(events)),
        lambda rows: store.update_group(
            conn,
            scope.org_id,
            current.id,
            attrs=attrs if attrs != current.attrs else None,
            member_delta=delta,
            events=rows,
        ),
        [Before.group(current, change.added, change.removed)],
    )


async def delete_group(
    conn: asyncpg.Connection, scope: Scope, group_id: uuid.UUID, if_match: str | None
) -> StoredGroup:
    async def work() -> StoredGroup:
        current = await store.lock_group(conn, scope.org_id, group_id)
        check_if_match(if_match, current.version)
        # The member list of a deleted group is not repeated: "deleted" says they are all gone.
        # (The guard counts and keeps them: read before they go.)
        change = GroupChange(kinds=["deleted"])
        events = change.events(scope.org_id, group_id, current.attrs, 0)
        members = await store.member_ids(conn, group_id) if current.member_count else []
        roles = (
            await role_events.watch_group(conn, scope, group_id, [current.attrs], whole_group=True)
            if members
            else None
        )
        await scope.write(
            conn,
            events,
            following(current.event_seq, len(events)),
            lambda rows: store.delete_group(conn, scope.org_id, group_id, rows),
            [Before.group(current, removed=members)],
        )
        await role_events.emit_changes(conn, scope, roles)
        return current

    return await tx.write(conn, work)


async def search_groups(
    conn: asyncpg.Connection, scope: Scope, query: ListQuery, *, with_members: bool
) -> tuple[int, list[StoredGroup]]:
    total, page = await store.search_groups(conn, scope.org_id, query)
    if with_members and page:
        members = await store.members_of(conn, scope.org_id, [g.id for g in page])
        for g in page:
            g.members = members[g.id]
    return total, page
