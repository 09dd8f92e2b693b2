"""Operating the outbox: dead letters, retries, replays, statistics, the signing key.

For the admin API and the CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from scim_service import errors
from scim_service.config import Settings
from scim_service.logs import get_logger
from scim_service.store import outbox
from scim_service.store.outbox import DeadLetter as DeadLetter
from scim_service.store.outbox import SinkStats as SinkStats

log = get_logger("scim_service.events.admin")  # the name log pipelines know it by


def _check_sink(settings: Settings, sink: str | None) -> None:
    if sink is not None and sink not in settings.sinks:
        raise errors.InvalidValue(
            f"Unknown sink {sink!r}; configured sinks: {', '.join(settings.sinks)}"
        )


async def dead_letters(
    conn: asyncpg.Connection, settings: Settings, sink: str | None, limit: int = 500
) -> list[DeadLetter]:
    _check_sink(settings, sink)
    return await outbox.dead_letters(conn, sink, limit)


async def retry(
    conn: asyncpg.Connection,
    settings: Settings,
    sink: str | None,
    event_ids: Sequence[uuid.UUID] | None,
) -> list[uuid.UUID]:
    """Give dead-lettered events (all, or these) a fresh set of attempts, due now."""
    _check_sink(settings, sink)
    return await outbox.retry_dead(conn, sink, event_ids)


async def replay(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    since: datetime | None,
    from_event: uuid.UUID | None,
    sinks: Sequence[str] | None,
    org_id: uuid.UUID | None = None,
) -> int:
    """Queue delivered events again (same ids) from a time or an event id, inclusive."""
    if (since is None) == (from_event is None):
        raise errors.InvalidValue("Give exactly one of `since` (a time) or `from_event_id`")
    for sink in sinks or ():
        _check_sink(settings, sink)
    if from_event is not None and not await outbox.event_exists(conn, from_event):
        raise errors.NotFound(f"Event {from_event} not found (or already past retention)")
    return await outbox.replay(
        conn, list(sinks or settings.sinks), since=since, from_event=from_event, org_id=org_id
    )


async def stats(conn: asyncpg.Connection, settings: Settings) -> list[SinkStats]:
    """Every configured sink, and every sink still holding events although it is no longer
    configured (`configured: false`: hand its events on or discard them, see `orphans`)."""
    found = {s.sink: s for s in await outbox.stats(conn)}
    names = list(settings.sinks) + sorted(set(found) - set(settings.sinks))
    return [
        msgspec.structs.replace(
            found.get(n) or SinkStats(sink=n, pending=0, oldest_age=0.0, dead=0),
            configured=n in settings.sinks,
        )
        for n in names
    ]


def _check_orphan(settings: Settings, sink: str) -> None:
    if sink in settings.sinks:
        raise errors.Conflict(
            f"Sink {sink!r} is configured: its events are being delivered; only the events of "
            "a sink that is no longer configured can be discarded or handed on"
        )


async def discard_orphans(conn: asyncpg.Connection, settings: Settings, sink: str) -> int:
    """Drop every event still queued for a sink that is no longer configured (an operator's
    explicit choice; logged with the count)."""
    _check_orphan(settings, sink)
    count = await outbox.discard_sink(conn, sink)
    log.warning("outbox_orphans_discarded", sink=sink, count=count)
    return count


async def move_orphans(conn: asyncpg.Connection, settings: Settings, sink: str, target: str) -> int:
    """Hand every event still queued for an unconfigured sink to a configured one (fresh
    attempts, order per resource kept)."""
    _check_orphan(settings, sink)
    _check_sink(settings, target)
    async with conn.transaction():
        count = await outbox.move_sink(conn, sink, target)
    log.warning("outbox_orphans_moved", sink=sink, to=target, count=count)
    return count


def public_key(settings: Settings) -> str:
    """The Ed25519 public key (`whpk_...`) receivers verify `v1a` signatures with."""
    if not settings.webhook_signing_key:
        raise errors.NotFound("No webhook signing key is configured (SCIM_WEBHOOK_SIGNING_KEY)")
    from scim_service.signing import Signer

    key = Signer([], settings.webhook_signing_key).public_key()
    assert key is not None
    return key
