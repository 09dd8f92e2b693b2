"""Bearer-token authentication for SCIM requests, with a short-lived cache.

Every SCIM request needs its token resolved to an organization. Looking the digest up costs a
database round trip per request, so successful lookups are cached per process for
`SCIM_AUTH_CACHE_SECONDS`. The cache never makes a revocation late: a trigger NOTIFYs
`scim_auth` on any change to a token or an organization's SCIM switch, and a dedicated
listener connection empties every process's cache when it arrives. While that listener is not
connected the cache is bypassed, so a missed notification cannot keep a revoked token alive.
Expiry is checked against the clock on every request, cached or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import asyncpg

from scim_service import errors
from scim_service.logs import get_logger
from scim_service.store import tenants as store
from scim_service.store.db import connect
from scim_service.store.tenants import TokenRow
from scim_service.tenancy import TOUCH_INTERVAL, Principal, check_token
from scim_service.tokens import looks_like_token, token_digest

log = get_logger("scim_service.auth")

CHANNEL = "scim_auth"
_MAX_ENTRIES = 10_000


class _Entry:
    __slots__ = ("cached_at", "row", "touched_at")

    def __init__(self, row: TokenRow, cached_at: float, touched_at: float) -> None:
        self.row = row
        self.cached_at = cached_at
        self.touched_at = touched_at


class Authenticator:
    def __init__(self, pool: asyncpg.Pool, dsn: str, ttl: float) -> None:
        self.pool = pool
        self.dsn = dsn
        self.ttl = ttl
        self._cache: dict[bytes, _Entry] = {}
        # Bumped by every forget(): a lookup that started before an invalidation must not put
        # its (possibly pre-revocation) row into the emptied cache.
        self._generation = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    # --- the invalidation listener (owned by the app, see app.py) --------------------------
    def start(self) -> None:
        if self.ttl > 0:
            self._task = asyncio.create_task(self._listen(), name="auth:listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def forget(self) -> None:
        self._generation += 1
        self._cache.clear()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_: self.forget())
                self.forget()  # whatever changed while nobody listened
                self._listening = True
                delay = 0.5
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("auth_listen_failed", error=type(exc).__name__, retry_in=delay)
            finally:
                self._listening = False
                self.forget()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    # --- authentication --------------------------------------------------------------------
    async def authenticate(self, token: str) -> Principal:
        if not looks_like_token(token):
            raise errors.Unauthorized("The bearer token is not valid", reason="invalid")
        digest = token_digest(token)
        now = time.monotonic()
        entry = self._cache.get(digest) if self._listening else None
        if entry is not None and now - entry.cached_at > self.ttl:
            entry = None
        if entry is None:
            generation = self._generation
            async with self.pool.acquire() as conn:
                row = await store.lookup_token(conn, digest)
            if row is None:
                raise errors.Unauthorized("The bearer token is not valid", reason="invalid")
            entry = _Entry(row, now, _touched_at(row, now))
            fresh = generation == self._generation  # no invalidation while we looked it up
            if fresh and self._listening and row.revoked_at is None and row.scim_enabled:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[digest] = entry
        principal = check_token(entry.row, datetime.now(UTC))
        if now - entry.touched_at > TOUCH_INTERVAL.total_seconds():
            entry.touched_at = now  # at most about once a minute per token and process
            async with self.pool.acquire() as conn:
                await store.touch_token(conn, entry.row.token_id)
        return principal


def _touched_at(row: TokenRow, now: float) -> float:
    """Map the stored last_used_at onto the monotonic clock (so a fresh token is touched)."""
    if row.last_used_at is None:
        return now - 10 * TOUCH_INTERVAL.total_seconds()
    age = (row.db_now - row.last_used_at).total_seconds()
    return now - age
