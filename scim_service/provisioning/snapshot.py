"""The bootstrap snapshot of a directory (admin API): keyset pages of an organization's users,
groups and a group's members. The first page carries the pull cursor taken before it was
read, so a consumer that applies the pages and then the events after that cursor misses no
change. The contract is in the README ("Consuming events")."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import msgspec

from scim_service import errors
from scim_service.events import envelope
from scim_service.events.pull import encode_cursor
from scim_service.provisioning import tenants
from scim_service.store import pull
from scim_service.store import roles as role_store


class UserItem(msgspec.Struct, kw_only=True):
    id: str
    version: int
    """The resourceversion of the user's latest event: apply only events above it."""
    setup_state: str
    profile: envelope.UserProfile


class GroupItem(msgspec.Struct, kw_only=True):
    id: str
    version: int
    display_name: str
    external_id: str | None
    member_count: int


class UsersSnapshot(msgspec.Struct, kw_only=True):
    users: list[UserItem]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET
    """First page only: the pull cursor taken before the page was read."""


class GroupsSnapshot(msgspec.Struct, kw_only=True):
    groups: list[GroupItem]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET


class MembersSnapshot(msgspec.Struct, kw_only=True):
    group_id: str
    version: int
    """The group's resourceversion when this page was read (hold the first page's)."""
    members: list[str]
    next_page: str | None
    events_cursor: str | msgspec.UnsetType = msgspec.UNSET


async def _start(
    conn: asyncpg.Connection, org_id: uuid.UUID, after: uuid.UUID | None
) -> str | msgspec.UnsetType:
    """404 for an unknown organization; on the first page (no `after`) the pull cursor."""
    await tenants.get_org(conn, org_id)
    return encode_cursor(await pull.head(conn)) if after is None else msgspec.UNSET


def _next_page(count: int, limit: int, last: uuid.UUID | None) -> str | None:
    return str(last) if count >= limit and last is not None else None


async def users(
    conn: asyncpg.Connection, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> UsersSnapshot:
    cursor = await _start(conn, org_id, after)
    rows = await pull.users_page(conn, org_id, after, limit)
    # Their effective roles: one statement for the page.
    found = await role_store.effective_roles(conn, org_id, [r["id"] for r in rows]) if rows else {}
    items = [
        UserItem(
            id=str(r["id"]),
            version=r["event_seq"],
            setup_state=r["setup_state"],
            profile=envelope.profile(r["attrs"], found[r["id"]].role if r["id"] in found else None),
        )
        for r in rows
    ]
    last = rows[-1]["id"] if rows else None
    return UsersSnapshot(
        users=items, next_page=_next_page(len(rows), limit, last), events_cursor=cursor
    )


async def groups(
    conn: asyncpg.Connection, org_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> GroupsSnapshot:
    cursor = await _start(conn, org_id, after)
    rows = await pull.groups_page(conn, org_id, after, limit)
    items = [
        GroupItem(
            id=str(r["id"]),
            version=r["event_seq"],
            display_name=r["display_name"],
            external_id=r["external_id"],
            member_count=r["member_count"],
        )
        for r in rows
    ]
    last = rows[-1]["id"] if rows else None
    return GroupsSnapshot(
        groups=items, next_page=_next_page(len(rows), limit, last), events_cursor=cursor
    )


async def members(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> MembersSnapshot:
    cursor = await _start(conn, org_id, after)
    found = await pull.members_page(conn, org_id, group_id, after, limit)
    if found is None:
        raise errors.NotFound(f"Group {group_id} not found")
    version, ids = found
    last = ids[-1] if ids else None
    return MembersSnapshot(
        group_id=str(group_id),
        version=version,
        members=[str(m) for m in ids],
        next_page=_next_page(len(ids), limit, last),
        events_cursor=cursor,
    )


class Digest(msgspec.Struct, kw_only=True):
    """An organization's state in 64 hex digits: a consumer that computes the same from its
    copy (README, "Verifying a copy") holds exactly the directory as of `events_cursor`."""

    digest: str
    """Hex SHA-256 of the sorted lines `User <id> <version>` and `Group <id> <version>`, each
    ending in a newline, of every user and group the snapshot shows."""
    events_cursor: str
    """The pull cursor the digest is exact at: every event up to it is reflected, none after."""
    users: int
    groups: int


DIGEST_PATIENCE = 2.0
"""Seconds to look for a snapshot no running transaction splits (store/pull.py `digest`)."""


async def digest(conn: asyncpg.Connection, org_id: uuid.UUID) -> Digest:
    """404 for an unknown organization; 503 with Retry-After when, for DIGEST_PATIENCE seconds,
    every snapshot read saw events of a transaction younger than one still running (the pull
    feed waits for that transaction too)."""
    await tenants.get_org(conn, org_id)
    ends = time.monotonic() + DIGEST_PATIENCE
    pause = 0.01
    while (found := await pull.digest(conn, org_id)) is None:
        if time.monotonic() + pause > ends:
            raise errors.Unavailable(
                "A transaction older than committed events is still running; retry shortly",
                retry_after=1.0,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return Digest(
        digest=found.digest,
        events_cursor=encode_cursor(found.position),
        users=found.users,
        groups=found.groups,
    )
