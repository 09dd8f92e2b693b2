"""SCIM Users in PostgreSQL. Functions take a connection and the organization id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from scim_service.scim import schema as s
from scim_service.scim.filter import Expr
from scim_service.scim.query import ListQuery
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import fetch_row, register_unique_constraint, translate_errors
from scim_service.store.filters import (
    Column,
    ElementSub,
    Params,
    TableSpec,
    membership,
    search_page,
    where_sql,
)
from scim_service.store.outbox import EventRows

register_unique_constraint(
    "users_org_username_key", "A user with this userName already exists in this organization"
)


class StoredUser(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    attrs: dict[str, Any]
    setup_state: str
    setup_completed_at: datetime | None
    version: int
    event_seq: int  # the resourceversion of this user's latest event
    created_at: datetime
    updated_at: datetime
    # (group id, displayName) pairs of the read-only `groups` attribute; None when not read.
    groups: list[tuple[uuid.UUID, str]] | None = None


# `groups.value` / `groups.display` / `groups.type` / `groups[...]` in a user filter.
_GROUPS = membership(
    resource="u.id",
    side="user_id",
    other="group_id",
    display=ElementSub("g.display_name", "text", "JOIN groups g ON g.id = gm.group_id"),
    type_="'direct'",
)


USER_SPEC = TableSpec(
    rtype=s.USER_TYPE,
    table="users",
    alias="u",
    select=(
        "u.id, u.attrs, u.setup_state, u.setup_completed_at, u.version, u.event_seq, "
        "u.created_at, u.updated_at"
    ),
    attrs_sql="u.attrs",
    columns={
        "id": Column("u.id", "uuid"),
        "userName": Column("u.user_name", "text", range_indexed=True),
        "displayName": Column("u.display_name", "text", range_indexed=True),
        "externalId": Column("u.external_id", "text_exact"),
        "active": Column("u.active", "bool"),
        "meta.created": Column("u.created_at", "timestamp"),
        "meta.lastModified": Column("u.updated_at", "timestamp"),
        f"{s.PLATFORM_USER_SCHEMA}:setupState": Column("u.setup_state", "text_exact"),
        f"{s.PLATFORM_USER_SCHEMA}:setupCompletedAt": Column("u.setup_completed_at", "timestamp"),
    },
    email_array="u.emails",
    email_table="user_emails",
    specials={"groups": _GROUPS},
)

_COLUMNS = (
    "u.id, u.attrs, u.setup_state, u.setup_completed_at, u.version, u.created_at, u.updated_at"
)


def _user(row: asyncpg.Record) -> StoredUser:
    return StoredUser(**dict(row))


def _missing(user_id: uuid.UUID) -> str:
    return f"User {user_id} not found"


async def insert_user(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    attrs: dict[str, Any],
    events: EventRows,
) -> StoredUser:
    """A new user with its events and their outbox rows: one statement, one round trip."""
    with translate_errors():
        row = await conn.fetchrow(
            Q["insert_user_with_events"], org_id, user_id, attrs, events.count, *events.params()
        )
    assert row is not None
    return _user(row)


async def get_user(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, *, with_groups: bool = False
) -> StoredUser | None:
    if not with_groups:
        row = await conn.fetchrow(Q["get_user"], org_id, user_id)
        return None if row is None else _user(row)
    row = await conn.fetchrow(Q["get_user_with_groups"], org_id, user_id)
    if row is None:
        return None
    values = dict(row)
    pairs = values.pop("groups") or []
    return StoredUser(**values, groups=[(uuid.UUID(gid), name) for gid, name in pairs])


async def attach_groups(
    conn: asyncpg.Connection, org_id: uuid.UUID, users: list[StoredUser]
) -> None:
    """Fill the read-only `groups` of a page of the organization's users with one query."""
    if not users:
        return
    by_id: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {u.id: [] for u in users}
    for row in await conn.fetch(Q["groups_of_users"], org_id, list(by_id)):
        by_id[row["user_id"]].append((row["group_id"], row["display_name"]))
    for u in users:
        u.groups = by_id[u.id]


async def lock_user(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> StoredUser:
    return _user(await fetch_row(conn, Q["lock_user"], org_id, user_id, missing=_missing(user_id)))


async def update_user_attrs(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    attrs: dict[str, Any],
    events: EventRows,
) -> StoredUser:
    """Store new attributes and the change's events (numbered after the user's counter), in
    one statement."""
    query = Q["update_user_attrs"]
    args = (org_id, user_id, attrs, events.count, *events.params())
    return _user(await fetch_row(conn, query, *args, missing=_missing(user_id)))


async def delete_user(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await conn.fetchval(Q["delete_user"], org_id, user_id) is not None


async def complete_setup(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> StoredUser | None:
    """Mark setup complete; None when it already was (the caller checks existence)."""
    row = await conn.fetchrow(Q["complete_user_setup"], org_id, user_id)
    return None if row is None else _user(row)


def filter_sql(org_id: uuid.UUID, filter: Expr | None) -> tuple[str, Params]:
    """The WHERE clause (alias `u`) selecting an organization's users matching `filter`."""
    return where_sql(USER_SPEC, org_id, filter)


async def search_users(
    conn: asyncpg.Connection, org_id: uuid.UUID, query: ListQuery
) -> tuple[int, list[StoredUser]]:
    total, rows = await search_page(conn, USER_SPEC, org_id, query)
    return total, [_user(r) for r in rows]
