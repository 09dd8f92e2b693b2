"""SCIM Groups and memberships in PostgreSQL. Functions take a connection and the org id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from scim_service import errors
from scim_service.scim import schema as s
from scim_service.scim.query import ListQuery
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import (
    fetch_batched,
    fetch_row,
    register_foreign_key,
    register_unique_constraint,
    translate_errors,
)
from scim_service.store.filters import (
    Column,
    ElementSub,
    TableSpec,
    membership,
    search_page,
)
from scim_service.store.outbox import EventRows

register_unique_constraint(
    "groups_org_display_name_key",
    "A group with this displayName already exists in this organization",
)
# A user checked by add_members can be deleted by a concurrent transaction before we commit.
register_foreign_key(
    "group_members_user_id_fkey", "members: a user was deleted while being added to the group"
)


class StoredGroup(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    attrs: dict[str, Any]
    member_count: int
    version: int
    event_seq: int  # the resourceversion of this group's latest event
    created_at: datetime
    updated_at: datetime
    # (user id, display) pairs; None when members were not read (excluded from the answer).
    members: list[tuple[uuid.UUID, str]] | None = None


class MemberChange(msgspec.Struct, frozen=True):
    added: tuple[uuid.UUID, ...] = ()
    removed: tuple[uuid.UUID, ...] = ()
    # Ids asked for that name no user of the organization: skipped, not applied.
    skipped: tuple[uuid.UUID, ...] = ()


# `members.value` / `members.display` / `members.type` / `members[...]` in a group filter
# (`$ref` is not filterable: the member's URL ends with its id, compare on `value`).
_MEMBERS = membership(
    resource="g.id",
    side="group_id",
    other="user_id",
    display=ElementSub(
        "coalesce(mu.display_name, mu.user_name)", "text", "JOIN users mu ON mu.id = gm.user_id"
    ),
    type_="'User'",
)


GROUP_SPEC = TableSpec(
    rtype=s.GROUP_TYPE,
    table="groups",
    alias="g",
    select="g.id, g.attrs, g.member_count, g.version, g.event_seq, g.created_at, g.updated_at",
    attrs_sql="g.attrs",
    columns={
        "id": Column("g.id", "uuid"),
        "displayName": Column("g.display_name", "text", range_indexed=True),
        "externalId": Column("g.external_id", "text_exact"),
        "meta.created": Column("g.created_at", "timestamp"),
        "meta.lastModified": Column("g.updated_at", "timestamp"),
    },
    specials={"members": _MEMBERS},
)


def _group(row: asyncpg.Record) -> StoredGroup:
    return StoredGroup(**dict(row))


def _uuids(values: tuple[str, ...], *, lenient: bool = False) -> list[uuid.UUID]:
    """Member values as user ids. Adding a value that is no id is malformed (400); removing
    one is a no-op (`lenient`): what cannot be a user cannot be a member either."""
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(v))
        except ValueError:
            if not lenient:
                raise errors.InvalidValue(f"members: {v!r} is not a user id") from None
    return out


def _missing(group_id: uuid.UUID) -> str:
    return f"Group {group_id} not found"


async def insert_group(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID, attrs: dict[str, Any]
) -> StoredGroup:
    with translate_errors():
        row = await conn.fetchrow(Q["insert_group"], org_id, group_id, attrs)
    assert row is not None
    return _group(row)


async def get_group(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> StoredGroup | None:
    row = await conn.fetchrow(Q["get_group"], org_id, group_id)
    return None if row is None else _group(row)


async def lock_group(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> StoredGroup:
    row = await fetch_row(conn, Q["lock_group"], org_id, group_id, missing=_missing(group_id))
    return _group(row)


async def update_group(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    *,
    attrs: dict[str, Any] | None,
    member_delta: int,
    events: EventRows,
) -> StoredGroup:
    """A new version of the group (attrs None: kept) and its events, in one statement."""
    args = (org_id, group_id, attrs, member_delta, events.count, *events.params())
    return _group(await fetch_row(conn, Q["update_group"], *args, missing=_missing(group_id)))


async def finish_new_group(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    *,
    members: int,
    events: EventRows,
) -> StoredGroup:
    """A group created in this transaction: its member count and first events, still
    version 1 (creating a group with its members is one change)."""
    row = await conn.fetchrow(
        Q["finish_new_group"], org_id, group_id, members, events.count, *events.params()
    )
    assert row is not None
    return _group(row)


async def delete_group(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID, events: EventRows
) -> bool:
    """Delete the group (its memberships go by cascade) and write its events."""
    return await conn.fetchval(Q["delete_group"], org_id, group_id, *events.params()) is not None


async def _member_statement(
    conn: asyncpg.Connection,
    query: str,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    ids: tuple[str, ...],
) -> asyncpg.Record:
    """Run add_members/replace_members: one statement whatever the number of ids; the ids
    that are no user of the organization come back in `missing` (skipped, not an error)."""
    with translate_errors():
        row = await conn.fetchrow(Q[query], org_id, group_id, _uuids(ids))
    assert row is not None
    return row


async def add_members(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID, ids: tuple[str, ...]
) -> MemberChange:
    """Add members (already-present ones are a no-op); ids naming no user of the organization
    are skipped (`MemberChange.skipped`). A value that is no id at all is a 400."""
    if not ids:
        return MemberChange()
    row = await _member_statement(conn, "add_members", org_id, group_id, ids)
    return MemberChange(added=tuple(row["added"]), skipped=tuple(sorted(row["missing"])))


async def remove_members(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID, ids: tuple[str, ...]
) -> tuple[uuid.UUID, ...]:
    wanted = _uuids(ids, lenient=True)
    if not wanted:
        return ()
    return tuple(await conn.fetchval(Q["remove_members"], org_id, group_id, wanted))


async def remove_all_members(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> tuple[uuid.UUID, ...]:
    return tuple(await conn.fetchval(Q["remove_all_members"], org_id, group_id))


async def replace_members(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID, ids: tuple[str, ...]
) -> MemberChange:
    row = await _member_statement(conn, "replace_members", org_id, group_id, ids)
    return MemberChange(tuple(row["added"]), tuple(row["removed"]), tuple(sorted(row["missing"])))


async def members_of(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    out: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {gid: [] for gid in group_ids}
    if group_ids:
        for row in await conn.fetch(Q["members_of_groups"], org_id, group_ids):
            out[row["group_id"]].append((row["user_id"], row["display"]))
    return out


# Rows of a big group's membership read per round trip: the driver parses each batch on the
# event loop, so batches keep that to about a millisecond between which other requests run.
MEMBERS_BATCH = 2_000


async def members_of_group(
    conn: asyncpg.Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    """One group's members, read through a cursor in MEMBERS_BATCH rows at a time (one
    snapshot: the cursor's query), so a 50,000-member group never holds the event loop."""
    rows = await fetch_batched(conn, Q["group_members"], (org_id, group_id), MEMBERS_BATCH)
    return [(row[0], row[1]) for row in rows]


async def member_ids(conn: asyncpg.Connection, group_id: uuid.UUID) -> list[uuid.UUID]:
    """A group's member ids (the caller holds the group's row lock)."""
    return [r["user_id"] for r in await conn.fetch(Q["group_member_ids"], group_id)]


async def lock_user_groups(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.fetch(Q["lock_user_groups"], org_id, user_id)


async def remove_user_from_groups(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> list[asyncpg.Record]:
    """Delete a user's memberships; return (id, attrs, member_count, event_seq) of each group
    it left, after the change (each group has a new version and one more event number)."""
    return list(await conn.fetch(Q["remove_user_from_groups"], org_id, user_id))


async def search_groups(
    conn: asyncpg.Connection, org_id: uuid.UUID, query: ListQuery
) -> tuple[int, list[StoredGroup]]:
    total, rows = await search_page(conn, GROUP_SPEC, org_id, query)
    return total, [_group(r) for r in rows]
