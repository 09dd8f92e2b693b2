"""SCIM User operations (RFC 7644 §3.3-§3.6) for one organization, with their events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from scim_service import errors
from scim_service.events import envelope as ev
from scim_service.events.emitter import following
from scim_service.provisioning import roles, tx
from scim_service.provisioning.etags import check_if_match
from scim_service.provisioning.guard import Before
from scim_service.provisioning.patching import evaluate_patch
from scim_service.provisioning.scope import Scope
from scim_service.scim import schema as s
from scim_service.scim.patch import parse_operations
from scim_service.scim.query import ListQuery
from scim_service.scim.resource import body_id_of, check_required, normalize_resource
from scim_service.store import groups as group_store
from scim_service.store import users as store
from scim_service.store.users import StoredUser as StoredUser


def parse_id(raw: str) -> uuid.UUID:
    """Resource ids are UUIDs; anything else cannot name a resource (404, not 400)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound(f"User {raw} not found") from None


def _new_attrs(body: Any) -> dict[str, Any]:
    attrs = normalize_resource(s.USER_TYPE, body)
    check_required(s.USER_TYPE, attrs)
    return attrs


async def create_user(conn: asyncpg.Connection, scope: Scope, body: Any) -> StoredUser:
    attrs = _new_attrs(body)
    # `active` is stored explicitly: a user the IdP did not say anything about is active.
    attrs.setdefault("active", True)
    user_id = uuid.uuid4()
    # The hottest write: user, event and outbox rows in one statement, after one primary-key
    # read of the organization's role settings (its role is in the event).
    role = await roles.role_of_new_user(conn, scope.org_id, attrs)
    events = [ev.user_provisioned(scope.org_id, user_id, attrs, role)]
    return await scope.write(
        conn,
        events,
        following(0, len(events)),
        lambda rows: store.insert_user(conn, scope.org_id, user_id, attrs, rows),
    )


async def get_user(
    conn: asyncpg.Connection, scope: Scope, user_id: uuid.UUID, *, with_groups: bool = False
) -> StoredUser:
    user = await store.get_user(conn, scope.org_id, user_id, with_groups=with_groups)
    if user is None:
        raise errors.NotFound(f"User {user_id} not found")
    return user


async def load_groups(conn: asyncpg.Connection, scope: Scope, user: StoredUser) -> StoredUser:
    """Fill a user's read-only `groups` (for an answer that shows them, after a write)."""
    await store.attach_groups(conn, scope.org_id, [user])
    return user


async def _update(
    conn: asyncpg.Connection,
    scope: Scope,
    user_id: uuid.UUID,
    if_match: str | None,
    new_attrs: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> StoredUser:
    """Lock, check the precondition, compute the new attrs from the current ones, store."""

    async def work() -> StoredUser:
        current = await store.lock_user(conn, scope.org_id, user_id)
        check_if_match(if_match, current.version)
        attrs = await new_attrs(current.attrs)
        if attrs == current.attrs:
            return current  # nothing changed: same version, no event
        around = await roles.roles_around_update(conn, scope.org_id, user_id, attrs)
        events = ev.user_changes(scope.org_id, user_id, current.attrs, attrs, around)
        return await scope.write(
            conn,
            events,
            following(current.event_seq, len(events)),
            lambda rows: store.update_user_attrs(conn, scope.org_id, user_id, attrs, rows),
            [Before.user(current)],
        )

    return await tx.write(conn, work)


async def replace_user(
    conn: asyncpg.Connection, scope: Scope, user_id: uuid.UUID, body: Any, if_match: str | None
) -> StoredUser:
    """PUT (RFC 7644 §3.5.1): replace every client attribute; readOnly ones are ignored."""
    body_id = body_id_of(body)
    if body_id is not None and str(body_id) != str(user_id):
        raise errors.Mutability(f"id {body_id!r} in the body does not match the URL ({user_id})")
    attrs = _new_attrs(body)

    async def replace(current: dict[str, Any]) -> dict[str, Any]:
        # A PUT that says nothing about `active` keeps it (RFC 7644 §3.5.1: not asserted): a
        # profile update must never reactivate a deprovisioned user by omission. (A PATCH
        # starts from the current attributes, so only an explicit remove unassigns it.)
        return {**attrs, "active": attrs.get("active", current.get("active", True))}

    return await _update(conn, scope, user_id, if_match, replace)


async def patch_user(
    conn: asyncpg.Connection, scope: Scope, user_id: uuid.UUID, body: Any, if_match: str | None
) -> StoredUser:
    """PATCH (RFC 7644 §3.5.2): all operations apply, or none (one transaction)."""
    operations = parse_operations(body)  # the envelope and the operation count, before any I/O

    def patched(current: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        return evaluate_patch(s.USER_TYPE, current, operations)

    return await _update(conn, scope, user_id, if_match, patched)


async def delete_user(
    conn: asyncpg.Connection, scope: Scope, user_id: uuid.UUID, if_match: str | None
) -> StoredUser:
    """DELETE: the user goes, and with it every membership (each group it left gets a new
    version and a group.changed event)."""

    async def work() -> StoredUser:
        # Lock order: the user's groups (id order), then the user — the order group writers
        # use (group, then the users their foreign keys touch).
        await group_store.lock_user_groups(conn, scope.org_id, user_id)
        current = await store.lock_user(conn, scope.org_id, user_id)
        check_if_match(if_match, current.version)
        left = await group_store.remove_user_from_groups(conn, scope.org_id, user_id)
        await store.delete_user(conn, scope.org_id, user_id)
        events = [ev.user_deleted(scope.org_id, user_id, current.attrs)]
        versions = following(current.event_seq, 1)
        before = [Before.user(current)]
        for g in left:
            before.append(
                Before(
                    resource_type="Group",
                    id=g["id"],
                    attrs=g["attrs"],
                    version=g["version"] - 1,
                    created_at=g["created_at"],
                    removed=(user_id,),
                )
            )
            events += ev.group_changed(
                scope.org_id,
                g["id"],
                g["attrs"],
                kinds=["members_removed"],
                added=[],
                removed=[user_id],
                member_count=g["member_count"],
            )
            versions.append(g["event_seq"])
        await scope.emit(conn, events, versions, before)
        return current

    return await tx.write(conn, work)


async def search_users(
    conn: asyncpg.Connection, scope: Scope, query: ListQuery, *, with_groups: bool = False
) -> tuple[int, list[StoredUser]]:
    total, page = await store.search_users(conn, scope.org_id, query)
    if with_groups:
        await store.attach_groups(conn, scope.org_id, page)
    return total, page


async def complete_setup(conn: asyncpg.Connection, scope: Scope, user_id: uuid.UUID) -> StoredUser:
    """The platform reports that the user created their master key (admin API / CLI)."""

    async def work() -> StoredUser:
        done = await store.complete_setup(conn, scope.org_id, user_id)
        if done is None:
            return await get_user(conn, scope, user_id)  # already complete: idempotent
        assert done.setup_completed_at is not None
        event = ev.user_setup_completed(scope.org_id, user_id, done.attrs, done.setup_completed_at)
        await scope.emit(conn, [event], [done.event_seq])
        return done

    return await tx.write(conn, work)
