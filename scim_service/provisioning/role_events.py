"""Role changes as user events (issue 25), in the transaction of their cause.

A group write (membership change, rename, delete) or a mapping change can move users'
effective roles (provisioning/roles.py). The cause reads the candidates' roles before it
changes anything (`watch`), and after it `emit_changes` writes a `user.updated` with
`changed: ["role"]` and `previous.role` for each user whose role moved: set-based (a fixed
number of statements whatever the number of users; big answers read through cursors in
batches), each user's event numbered under its row lock, so they are in order per user. A
lowered role (lower rank) reduces access: the guard counts it (guard.reductions). A group no
mapping names costs one probe and nothing more.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from scim_service.events import envelope as ev
from scim_service.provisioning.guard import Before
from scim_service.provisioning.scope import ENCODE_IN_THREAD, Scope
from scim_service.store import roles as store
from scim_service.store.roles import Role
from scim_service.store.users import StoredUser

Watch = dict[uuid.UUID, Role]


async def watch_group(
    conn: asyncpg.Connection,
    scope: Scope,
    group_id: uuid.UUID,
    names: Sequence[dict[str, Any]],
    ids: Sequence[uuid.UUID] = (),
    *,
    whole_group: bool,
) -> Watch | None:
    """The roles, before a write of this group, of the users it may move: `ids`, and every
    member with `whole_group`; None when no mapping names the group (nothing can move)."""
    if not await store.group_is_mapped(conn, scope.org_id, group_id, names):
        return None
    return await store.effective_roles(conn, scope.org_id, ids, group_id if whole_group else None)


async def watch_everyone(conn: asyncpg.Connection, scope: Scope) -> Watch:
    """Every user's role, before a mapping change."""
    return await store.effective_roles(conn, scope.org_id, (), None, everyone=True)


def _lowered(old: Role, new: Role) -> bool:
    """A lower rank: a mapping of lower priority, or the default (below every mapping)."""
    if old.rank is None:
        return False
    return new.rank is None or new.rank < old.rank


async def emit_changes(
    conn: asyncpg.Connection, scope: Scope, before: Watch | None, extra: Sequence[uuid.UUID] = ()
) -> int:
    """After the write: one user.updated per user of `before` (and `extra`, who had the
    default role) whose role moved; how many."""
    if before is None:
        return 0
    candidates = sorted(set(before) | set(extra))
    if not candidates:
        return 0
    after = await store.effective_roles(conn, scope.org_id, candidates)
    default = Role(None, None)
    moved = {
        u: (before.get(u, default), new)
        for u, new in after.items()
        if new.role != before.get(u, default).role
    }
    if not moved:
        return 0
    rows = await store.bump_user_events(conn, scope.org_id, sorted(moved))

    def build() -> tuple[list[ev.NewEvent], list[int], list[Before]]:
        events, versions, images = [], [], []
        for row in sorted(rows, key=lambda r: r["id"]):
            old, new = moved[row["id"]]
            events.append(
                ev.user_role_changed(
                    scope.org_id,
                    row["id"],
                    row["attrs"],
                    new.role,
                    old.role,
                    lowered=_lowered(old, new),
                )
            )
            versions.append(row["event_seq"])
            images.append(Before.user(StoredUser(**dict(row))))
        return events, versions, images

    # Thousands of users (a mapping change): built in a worker thread, off the event loop.
    many = len(rows) > ENCODE_IN_THREAD
    events, versions, images = await asyncio.to_thread(build) if many else build()
    await scope.emit(conn, events, versions, images)
    return len(events)
