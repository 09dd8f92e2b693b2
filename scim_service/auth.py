"""Bearer-token authentication for SCIM requests, with a short-lived cache.

Every SCIM request needs its token resolved to an organization. Looking the digest up costs a
database round trip per request, so successful lookups are cached per process for
`SCIM_AUTH_CACHE_SECONDS`. The cache never makes a revocation late: a trigger NOTIFYs
`scim_auth` on any change to a token or an organization's SCIM switch, and a dedicated
listener connection empties every process's cache when it arrives. While that listener is not
connected the cache is not trusted (every request asks the database, so a missed notification
cannot keep a revoked token alive), and it is emptied when the listener is back. When the
database cannot answer at all, a token cached within the TTL still authenticates (nothing can be
revoked meanwhile), so requests that need no database (discovery) keep working; the others get
503. Expiry is checked against the clock on every request, cached or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from scim_service import errors
from scim_service.logs import get_logger
from scim_service.store import tenants as store
from scim_service.store.db import as_unavailable
from scim_service.store.listen import listen
from scim_service.store.tenants import TokenRow
from scim_service.tokens import looks_like_token, token_digest

log = get_logger("scim_service.auth")

CHANNEL = "scim_auth"
_MAX_ENTRIES = 10_000
SCIM_DISABLED_DETAIL = "SCIM provisioning is disabled for this organization"
TOUCH_INTERVAL = timedelta(seconds=60)


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the organization a SCIM token belongs to, and which token it was."""

    org_id: uuid.UUID
    token_id: uuid.UUID


def check_token(row: TokenRow, now: datetime) -> Principal:
    """The rules a found token must pass: not revoked, not expired, SCIM switched on."""
    if row.revoked_at is not None:
        raise errors.Unauthorized("The bearer token has been revoked", reason="revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise errors.Unauthorized("The bearer token has expired", reason="expired")
    if not row.scim_enabled:
        raise errors.Forbidden(SCIM_DISABLED_DETAIL)
    return Principal(row.org_id, row.token_id)


class _Entry:
    __slots__ = ("cached_at", "row", "touched_at")

    def __init__(self, row: TokenRow, cached_at: float, touched_at: float) -> None:
        self.row = row
        self.cached_at = cached_at
        self.touched_at = touched_at


class Authenticator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        ttl: float,
        *,
        acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]] | None = None,
    ) -> None:
        self.pool = pool
        # Where lookups get their connection: the app passes its fair-share gate (acquire
        # timeout → 503, see fairness.py); default the bare pool.
        self.acquire = acquire or pool.acquire
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

    def _listener_state(self, up: bool) -> None:
        if up:
            self.forget()  # whatever changed while nobody listened
        self._listening = up

    async def _listen(self) -> None:
        await listen(self.dsn, CHANNEL, lambda: self.forget(), self._listener_state)

    # --- authentication --------------------------------------------------------------------
    async def _lookup(self, digest: bytes, cached: _Entry | None, now: float) -> _Entry:
        generation = self._generation
        try:
            async with self.acquire() as conn:
                row = await store.lookup_token(conn, digest)
        except Exception as exc:
            unavailable = as_unavailable(exc)
            if unavailable is None:
                raise
            if cached is None:
                raise unavailable from exc
            log.info("auth_served_from_cache", reason="database_unavailable")
            return cached
        if row is None:
            raise errors.Unauthorized("The bearer token is not valid", reason="invalid")
        touched = cached.touched_at if cached is not None else _touched_at(row, now)
        entry = _Entry(row, now, touched)
        fresh = generation == self._generation  # no invalidation while we looked it up
        if fresh and self.ttl > 0 and row.revoked_at is None and row.scim_enabled:
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = entry
        return entry

    async def authenticate(self, token: str) -> Principal:
        if not looks_like_token(token):
            raise errors.Unauthorized("The bearer token is not valid", reason="invalid")
        digest = token_digest(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached.cached_at > self.ttl:
            cached = None
        # Trusted only while the invalidation listener is connected (a revocation cannot be
        # missed); otherwise the database decides, and the cached entry is only a fallback for
        # when the database cannot answer (nothing can be revoked there meanwhile either).
        entry = cached if self._listening else None
        if entry is None:
            entry = await self._lookup(digest, cached, now)
        try:
            principal = check_token(entry.row, datetime.now(UTC))
        except errors.ScimError as exc:
            exc.owner_org = entry.row.org_id  # the digest matched: a verified failure
            raise
        if now - entry.touched_at > TOUCH_INTERVAL.total_seconds():
            entry.touched_at = now  # at most about once a minute per token and process
            try:
                async with self.acquire() as conn:
                    await store.touch_token(conn, entry.row.token_id)
            except Exception as exc:  # bookkeeping: never fails a request that is allowed
                if as_unavailable(exc) is None:
                    raise
                log.info("token_touch_skipped", reason="database_unavailable")
        return principal


def _touched_at(row: TokenRow, now: float) -> float:
    """Map the stored last_used_at onto the monotonic clock (so a fresh token is touched)."""
    if row.last_used_at is None:
        return now - 10 * TOUCH_INTERVAL.total_seconds()
    age = (row.db_now - row.last_used_at).total_seconds()
    return now - age
