"""Who a write acts for, and the one way a change is written with its events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import msgspec

from scim_service.events.emitter import Emitter
from scim_service.events.envelope import NewEvent
from scim_service.provisioning import guard
from scim_service.provisioning.guard import Before, GuardPolicy
from scim_service.store import outbox
from scim_service.store.outbox import EventRows

T = TypeVar("T")
# More events than this (a mapping change moving thousands of users' roles) are encoded in a
# worker thread, so the event loop keeps serving other requests in between.
ENCODE_IN_THREAD = 2_000


class Scope(msgspec.Struct, frozen=True):
    """An organization (taken from the caller's token), the event emitter of this process and
    its mass-deprovisioning guard defaults."""

    org_id: uuid.UUID
    emitter: Emitter
    guard: GuardPolicy = GuardPolicy()

    async def write(
        self,
        conn: asyncpg.Connection,
        events: Sequence[NewEvent],
        versions: Sequence[int],
        change: Callable[[EventRows], Awaitable[T]],
        before: Sequence[Before] = (),
    ) -> T:
        """Write a change and its events, in the caller's transaction: `change` is the store
        function that writes both (one statement, see store/outbox.py), given the encoded
        events; `versions` number them from the resource's counter read under its row lock
        (events/emitter.py `following`). A change that reduces access passes the
        mass-deprovisioning guard (provisioning/guard.py) in the same transaction: the
        organization's row lock before its events are written, the count, the trip and the hold
        after; `before` is every written resource as it was before this change (the hold keeps
        it, so a rejection can restore it)."""
        lost = guard.reductions(events, before)
        gate = await guard.enter(conn, self.org_id, self.guard) if lost else None
        if len(events) > ENCODE_IN_THREAD:
            rows = await asyncio.to_thread(self.emitter.rows, self.org_id, events, versions)
        else:
            rows = self.emitter.rows(self.org_id, events, versions)
        result = await change(rows)
        if gate is not None:
            await guard.after(conn, self.org_id, self.emitter, gate, rows, before, lost)
        return result

    async def emit(
        self,
        conn: asyncpg.Connection,
        events: Sequence[NewEvent],
        versions: Sequence[int],
        before: Sequence[Before] = (),
    ) -> None:
        """Events written on their own, after a change that touched several resources or
        whose events carry what the database decided (see `write`)."""

        async def insert(rows: EventRows) -> None:
            await outbox.insert_events(conn, rows)

        await self.write(conn, events, versions, insert, before)
