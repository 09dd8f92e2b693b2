"""Who a write acts for and where its events go."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from scim_service.events.envelope import USER_DEPROVISIONED, NewEvent
from scim_service.provisioning import guard
from scim_service.provisioning.guard import GuardPolicy
from scim_service.store import outbox
from scim_service.store.outbox import Emitter


class Scope(msgspec.Struct, frozen=True):
    """An organization (taken from the caller's token), the event emitter of this process and
    its mass-deprovisioning guard defaults."""

    org_id: uuid.UUID
    emitter: Emitter
    guard: GuardPolicy = GuardPolicy()

    async def emit(
        self, conn: asyncpg.Connection, events: Sequence[NewEvent], versions: Sequence[int]
    ) -> None:
        """Write events in the caller's transaction (see store/outbox.py); deprovisions then
        pass the mass-deprovisioning guard (provisioning/guard.py), in the same transaction."""
        await outbox.write_events(conn, self.emitter, self.org_id, events, versions)
        gone = [
            (e.subject, v)
            for e, v in zip(events, versions, strict=True)
            if e.type == USER_DEPROVISIONED
        ]
        if gone:
            await guard.after_deprovision(conn, self.org_id, self.emitter, self.guard, gone)

    def event_params(self, events: Sequence[NewEvent], versions: Sequence[int]) -> list[Any]:
        """For statements that write a change and its events at once (see store/outbox.py)."""
        return outbox.event_params(self.emitter, self.org_id, events, versions)


def numbers(last: int, count: int) -> list[int]:
    """The resource versions of `count` new events, given the counter after the write."""
    return list(range(last - count + 1, last + 1))
