"""One LISTEN connection that reconnects by itself: the token cache and the publisher use it.

`listen(dsn, channel, ...)` holds a dedicated connection LISTENing on `channel` until it is
cancelled. When the connection is lost (a database restart, a failover, a killed backend) it
reports `on_state(False)`, waits with capped exponential backoff and connects again; after each
(re)connection it reports `on_state(True)`, so the caller can act on whatever it may have
missed while nobody listened (empty a cache, look for new work).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg

from scim_service.logs import get_logger
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import connect

log = get_logger("scim_service.listen")

RECONNECT_FIRST = 0.25
RECONNECT_MAX = 5.0
PING_EVERY = 15.0


async def listen(
    dsn: str,
    channel: str,
    on_notify: Callable[[], None],
    on_state: Callable[[bool], None],
    *,
    connect_timeout: float = 5.0,
) -> None:
    """LISTEN on `channel` for ever (until cancelled), reconnecting with backoff."""
    delay = RECONNECT_FIRST
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(dsn, timeout=connect_timeout)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(channel, lambda *_: on_notify())
            on_state(True)
            if delay > RECONNECT_FIRST:
                log.info("listen_reconnected", channel=channel)
            delay = RECONNECT_FIRST
            while not lost.is_set():
                # A dropped network can leave the socket open for ever: ask now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=PING_EVERY)
                if not lost.is_set():
                    await asyncio.wait_for(conn.fetchval(Q["ping"]), timeout=connect_timeout)
            log.warning("listen_connection_lost", channel=channel, retry_in=delay)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("listen_failed", channel=channel, error=type(exc).__name__, retry_in=delay)
        finally:
            on_state(False)
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX)
