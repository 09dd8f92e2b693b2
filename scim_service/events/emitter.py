"""Where a write's events go, and how they become outbox rows.

The one place a change's events are encoded: provisioning builds `NewEvent`s (envelope.py),
numbers them from the resource's counter, and hands `Emitter.rows(...)` to the store function
that writes the change, which writes the events in the same statement (store/outbox.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from scim_service.events.envelope import NewEvent, encode
from scim_service.store.outbox import EventRows


class Emitter(msgspec.Struct, frozen=True):
    """This process's event configuration: the CloudEvents `source` and the sink names."""

    source: str
    sinks: tuple[str, ...]

    def rows(
        self, org_id: uuid.UUID, events: Sequence[NewEvent], versions: Sequence[int]
    ) -> EventRows:
        """Encode `events` (one resource version each) with fresh ids and the change's time."""
        now = datetime.now(UTC)  # the change's time (no round trip to ask the database)
        ids = [uuid.uuid4() for _ in events]
        payloads = [
            encode(e, event_id=i, source=self.source, time=now, org_id=org_id, version=v)
            for e, i, v in zip(events, ids, versions, strict=True)
        ]
        return EventRows(
            ids=ids,
            org_id=org_id,
            subjects=[e.subject for e in events],
            resource_types=[e.resource_type for e in events],
            versions=list(versions),
            types=[e.type for e in events],
            time=now,
            payloads=payloads,
            sinks=self.sinks,
        )


def following(counter: int, count: int) -> list[int]:
    """The resource versions of `count` new events of a resource whose counter (`event_seq`,
    read under its row lock) is `counter`."""
    return list(range(counter + 1, counter + count + 1))
