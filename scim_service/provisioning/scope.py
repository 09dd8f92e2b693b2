"""Who a write acts for and where its events go."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from scim_service.events.envelope import NewEvent
from scim_service.store import outbox
from scim_service.store.outbox import Emitter


class Scope(msgspec.Struct, frozen=True):
    """An organization (taken from the caller's token) and the event emitter of this process."""

    org_id: uuid.UUID
    emitter: Emitter

    async def emit(
        self, conn: asyncpg.Connection, events: Sequence[NewEvent], versions: Sequence[int]
    ) -> None:
        """Write events in the caller's transaction (see store/outbox.py)."""
        await outbox.write_events(conn, self.emitter, self.org_id, events, versions)

    def event_params(self, events: Sequence[NewEvent], versions: Sequence[int]) -> list[Any]:
        """For statements that write a change and its events at once (see store/outbox.py)."""
        return outbox.event_params(self.emitter, self.org_id, events, versions)


def numbers(last: int, count: int) -> list[int]:
    """The resource versions of `count` new events, given the counter after the write."""
    return list(range(last - count + 1, last + 1))
