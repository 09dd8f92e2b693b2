"""Who a write acts for, and the one way a change is written with its events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
import msgspec

from scim_service.events.emitter import Emitter
from scim_service.events.envelope import USER_DEPROVISIONED, NewEvent
from scim_service.provisioning import guard
from scim_service.provisioning.guard import GuardPolicy
from scim_service.store import outbox
from scim_service.store.outbox import EventRows

T = TypeVar("T")


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
    ) -> T:
        """Write a change and its events, in the caller's transaction: `change` is the store
        function that writes both (one statement, see store/outbox.py), given the encoded
        events; `versions` number them from the resource's counter read under its row lock
        (events/emitter.py `following`). Deprovisions then pass the mass-deprovisioning guard
        (provisioning/guard.py), in the same transaction."""
        result = await change(self.emitter.rows(self.org_id, events, versions))
        gone = [
            (e.subject, v)
            for e, v in zip(events, versions, strict=True)
            if e.type == USER_DEPROVISIONED
        ]
        if gone:
            await guard.after_deprovision(conn, self.org_id, self.emitter, self.guard, gone)
        return result

    async def emit(
        self, conn: asyncpg.Connection, events: Sequence[NewEvent], versions: Sequence[int]
    ) -> None:
        """Events written on their own, after a change that touched several resources or
        whose events carry what the database decided (see `write`)."""

        async def insert(rows: EventRows) -> None:
            await outbox.insert_events(conn, rows)

        await self.write(conn, events, versions, insert)
