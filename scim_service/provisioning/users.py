"""SCIM User operations (RFC 7644 §3.3-§3.6) for one organization."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from scim_service import errors
from scim_service.provisioning.etags import check_if_match
from scim_service.provisioning.query import ListQuery
from scim_service.scim import schema as s
from scim_service.scim.resource import check_required, normalize_resource
from scim_service.store import users as store
from scim_service.store.users import StoredUser


def parse_id(raw: str) -> uuid.UUID:
    """Resource ids are UUIDs; anything else cannot name a resource (404, not 400)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound(f"User {raw} not found") from None


def _body_id(body: Any) -> Any:
    if isinstance(body, dict):
        for key, value in body.items():
            if isinstance(key, str) and key.lower() == "id":
                return value
    return None


def _new_attrs(body: Any) -> dict[str, Any]:
    attrs = normalize_resource(s.USER_TYPE, body)
    check_required(s.USER_TYPE, attrs)
    return attrs


async def create_user(conn: asyncpg.Connection, org_id: uuid.UUID, body: Any) -> StoredUser:
    attrs = _new_attrs(body)
    # `active` is stored explicitly: a user the IdP did not say anything about is active.
    attrs.setdefault("active", True)
    return await store.insert_user(conn, org_id, uuid.uuid4(), attrs)


async def get_user(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> StoredUser:
    user = await store.get_user(conn, org_id, user_id)
    if user is None:
        raise errors.NotFound(f"User {user_id} not found")
    return user


async def replace_user(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, body: Any, if_match: str | None
) -> StoredUser:
    """PUT (RFC 7644 §3.5.1): replace every client attribute; readOnly ones are ignored."""
    body_id = _body_id(body)
    if body_id is not None and str(body_id) != str(user_id):
        raise errors.Mutability(f"id {body_id!r} in the body does not match the URL ({user_id})")
    attrs = _new_attrs(body)
    async with conn.transaction():
        current = await store.lock_user(conn, org_id, user_id)
        check_if_match(if_match, current.version)
        # A PUT that says nothing about `active` keeps it: a profile update must never
        # reactivate a deprovisioned user by omission.
        attrs.setdefault("active", current.attrs.get("active", True))
        if attrs == current.attrs:
            return current  # nothing changed: same version, no event
        return await store.update_user_attrs(conn, org_id, user_id, attrs)


async def patch_user(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, body: Any, if_match: str | None
) -> StoredUser:
    """PATCH (RFC 7644 §3.5.2): all operations apply, or none (one transaction)."""
    async with conn.transaction():
        current = await store.lock_user(conn, org_id, user_id)
        check_if_match(if_match, current.version)
        from scim_service.scim.patch import apply_patch  # TEMP until patch.py lands

        attrs = apply_patch(s.USER_TYPE, current.attrs, body)
        attrs.setdefault("active", current.attrs.get("active", True))
        if attrs == current.attrs:
            return current
        return await store.update_user_attrs(conn, org_id, user_id, attrs)


async def delete_user(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, if_match: str | None
) -> None:
    async with conn.transaction():
        current = await store.lock_user(conn, org_id, user_id)
        check_if_match(if_match, current.version)
        await store.delete_user(conn, org_id, user_id)


async def search_users(
    conn: asyncpg.Connection, org_id: uuid.UUID, query: ListQuery
) -> tuple[int, list[StoredUser]]:
    return await store.search_users(
        conn,
        org_id,
        filter=query.filter,
        sort_by=query.sort_by,
        descending=query.descending,
        offset=query.offset,
        limit=query.count,
    )


async def complete_setup(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> StoredUser:
    """The platform reports that the user created their master key (admin API / CLI)."""
    async with conn.transaction():
        done = await store.complete_setup(conn, org_id, user_id)
        if done is not None:
            return done
        return await get_user(conn, org_id, user_id)  # already complete: idempotent
