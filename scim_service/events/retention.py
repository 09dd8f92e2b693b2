"""Retention, an owned task of the publisher: delivered events older than
SCIM_EVENTS_RETENTION_DAYS are deleted (the replay window), the guard's old reductions pruned,
and events waiting for a sink no publisher of this configuration serves are pointed out.

It runs every `RETENTION_EVERY` seconds on the publisher's pool, and stops with it. Only the
database errors it expects are caught (and retried after a pause); anything else ends the task,
which the publisher reports (events/publisher.py, `_watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_service.config import Settings
from scim_service.logs import get_logger
from scim_service.store import guard as guard_store
from scim_service.store import outbox
from scim_service.store.db import DB_ERRORS

log = get_logger("scim_service.publisher")

RETENTION_EVERY = 600.0  # seconds between retention passes
_AFTER_FAILURE = 10.0  # seconds before trying again after a database error

Acquire = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


class Retention:
    """Purges delivered events and warns about sinks nobody serves (module docstring)."""

    def __init__(
        self, settings: Settings, served: Collection[str], acquire: Acquire, stopping: asyncio.Event
    ) -> None:
        self.settings = settings
        self.served = set(served)
        self._acquire = acquire
        self._stopping = stopping

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.purge_once()
                await self.warn_orphans()
            except DB_ERRORS as exc:
                log.warning("publisher_retention_failed", error=type(exc).__name__)
                await self._sleep(_AFTER_FAILURE)
                continue
            await self._sleep(RETENTION_EVERY)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def purge_once(self) -> int:
        """Delete delivered events older than the retention horizon; return how many."""
        horizon = datetime.now(UTC) - timedelta(days=self.settings.events_retention_days)
        total = 0
        async with self._acquire() as conn:
            while not self._stopping.is_set():
                n = await outbox.purge_delivered(conn, horizon)
                total += n
                if n == 0:
                    break
            await guard_store.prune_reductions(conn)
        if total:
            log.info("events_purged", count=total, older_than=horizon.isoformat())
        return total

    async def warn_orphans(self) -> None:
        """Events waiting for a sink this publisher does not serve: a sink removed from the
        configuration, or API replicas and publishers given different sink settings."""
        async with self._acquire() as conn:
            found = await outbox.stats(conn)
        for s in found:
            if s.sink not in self.served and (s.pending or s.dead):
                log.warning(
                    "outbox_sink_not_served",
                    sink=s.sink,
                    pending=s.pending,
                    dead=s.dead,
                    hint=(
                        "configure the sink again, or hand its events to a configured sink or "
                        "discard them: scim-service events orphans --help"
                    ),
                )
