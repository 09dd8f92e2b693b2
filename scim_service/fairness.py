"""Fair shares of the database: bounded waits for a connection, a per-organization limit on
concurrent database work, and an optional per-token request rate.

Every pooled connection a request uses comes through `Gate.connection`:

- **Acquire timeout.** A request waits at most `SCIM_DB_ACQUIRE_TIMEOUT` seconds, in all, for
  its organization's slot and a connection; a request that gets no connection in time answers
  503 (`errors.Unavailable`, with `Retry-After`) instead of hanging.
- **Per-organization limit.** At most `SCIM_ORG_MAX_CONCURRENCY` requests of one organization
  (default: half the pool) hold or wait for a connection at once. Further requests of that
  organization wait, within the same deadline, for one of its slots (FIFO), and answer 429
  (`errors.TooManyRequests`, `Retry-After: 1`) if none frees up: one organization whose
  requests are slow (a long filter, a row lock) uses at most its share of the pool, and the
  other organizations and `/readyz` keep the rest. Requests without an organization (the
  admin API, the token lookup that finds the organization) only have the acquire timeout.
- **Lock waits stay with their resource.** The writes of one resource (a PATCH, PUT or
  DELETE of one user or group) queue for it here, in this process, first come first served,
  *before* taking an organization slot: however many requests wait for a hot or locked group,
  they hold at most one of its organization's slots (the one writing, or waiting in the
  database for a lock another session holds, for at most SCIM_DB_REQUEST_LOCK_TIMEOUT). The
  queue's wait counts against the same deadline; a request still queued then answers 503
  "busy" with `Retry-After: 1` (the resource's, not the organization's, share ran out).
- **Per-token rate** (`SCIM_TOKEN_RATE_LIMIT`, off by default): a token bucket per SCIM token,
  `SCIM_TOKEN_RATE_BURST` deep, refilled at that many tokens per second; a request finding it
  empty answers 429 with `Retry-After` = the time until the bucket holds one again.

All of this is per process: with N replicas an organization may use N times its share of the
database (each replica has its own pool too). Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar

import asyncpg

from scim_service import errors
from scim_service.config import Settings

# Seconds a 429 from the per-organization limit asks the client to wait: slots free up as
# soon as one of the organization's own requests finishes.
ORG_RETRY_AFTER = 1.0
# Whatever is left of the deadline after the organization's slot, a pool acquire gets at least
# this (an idle connection is handed out at once; this only avoids a zero timeout).
_MIN_ACQUIRE = 0.05
# Buckets of idle tokens (full again) are forgotten once this many tokens have one.
_MAX_BUCKETS = 10_000


K = TypeVar("K")


class RejectionMetrics(Protocol):
    def rejected(self, status: int, reason: str) -> None: ...


class _Slots:
    """One organization's slots: the semaphore, and how many requests hold or wait for one."""

    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


@contextlib.asynccontextmanager
async def _slot(
    table: dict[K, _Slots],
    key: K,
    size: int,
    deadline: float,
    refusal: errors.ScimError,
    reject: Callable[[], None],
) -> AsyncIterator[None]:
    """One of `size` slots of `key` (FIFO), waited for until `deadline`, else `refusal` (and
    `reject()` counts it). The table forgets keys nobody holds
    or waits for, so it stays as small as what is in flight."""
    slots = table.get(key)
    if slots is None:
        slots = table[key] = _Slots(size)
    slots.users += 1
    try:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await slots.semaphore.acquire()
        except TimeoutError:
            reject()
            raise refusal from None
        try:
            yield
        finally:
            slots.semaphore.release()
    finally:
        slots.users -= 1
        if slots.users == 0:
            del table[key]


class TokenBuckets:
    """A token bucket per SCIM token id: `rate` per second, `burst` deep."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # id → (tokens, at)

    def take(self, token_id: uuid.UUID) -> float | None:
        """Spend one request of this token: None if allowed, else seconds until it would be."""
        now = self.clock()
        tokens, at = self._buckets.get(token_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[token_id] = (tokens - 1.0, now)
            if len(self._buckets) > _MAX_BUCKETS:
                self._forget_full(now)
            return None
        self._buckets[token_id] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing."""
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[key]


class Gate:
    """The one way a request gets a pooled connection (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        metrics: RejectionMetrics | None = None,
    ) -> None:
        self.pool = pool
        self.timeout = settings.db_acquire_timeout
        self.org_limit = settings.org_concurrency
        self.metrics = metrics
        self.rates = (
            TokenBuckets(settings.token_rate_limit, settings.token_burst)
            if settings.token_rate_limit > 0
            else None
        )
        self._orgs: dict[uuid.UUID, _Slots] = {}
        self._resources: dict[tuple[uuid.UUID, str], _Slots] = {}

    def in_use(self, org_id: uuid.UUID) -> int:
        """Requests of this organization holding or waiting for a slot (for tests, metrics)."""
        slots = self._orgs.get(org_id)
        return 0 if slots is None else slots.users

    def _reject(self, status: int, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected(status, reason)

    def check_rate(self, token_id: uuid.UUID) -> None:
        """Raise 429 when this token is over SCIM_TOKEN_RATE_LIMIT (no-op when it is off)."""
        if self.rates is None:
            return
        wait = self.rates.take(token_id)
        if wait is not None:
            self._reject(429, "token_rate")
            raise errors.TooManyRequests(
                f"This token is limited to {self.rates.rate:g} requests per second "
                f"(burst {self.rates.burst:g}); retry in {wait:.1f}s",
                retry_after=wait,
            )

    @contextlib.asynccontextmanager
    async def connection(
        self, org_id: uuid.UUID | None = None, resource: str | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one request of `org_id` (None: no organization yet, or the
        admin API): 429 when the organization's slots stay full, 503 when the pool does, or
        when `resource` (the id a write changes) stays busy, within SCIM_DB_ACQUIRE_TIMEOUT in
        all."""
        deadline = time.monotonic() + self.timeout
        if org_id is None:
            async with self._acquire(deadline) as conn:
                yield conn
            return
        if resource is None:
            async with self._org_connection(org_id, deadline) as conn:
                yield conn
            return
        busy = errors.Unavailable(
            "Other requests are changing this resource; retry shortly",
            retry_after=ORG_RETRY_AFTER,
        )
        async with (
            _slot(
                self._resources,
                (org_id, resource),
                1,
                deadline,
                busy,
                self._rejected(503, "resource_busy"),
            ),
            self._org_connection(org_id, deadline) as conn,
        ):
            yield conn

    def _rejected(self, status: int, reason: str) -> Callable[[], None]:
        return lambda: self._reject(status, reason)

    @contextlib.asynccontextmanager
    async def _org_connection(
        self, org_id: uuid.UUID, deadline: float
    ) -> AsyncIterator[asyncpg.Connection]:
        full = errors.TooManyRequests(
            f"This organization already has {self.org_limit} requests using the "
            "database on this server; retry shortly",
            retry_after=ORG_RETRY_AFTER,
        )
        async with (
            _slot(
                self._orgs,
                org_id,
                self.org_limit,
                deadline,
                full,
                self._rejected(429, "org_concurrency"),
            ),
            self._acquire(deadline) as conn,
        ):
            yield conn

    @contextlib.asynccontextmanager
    async def _acquire(self, deadline: float) -> AsyncIterator[asyncpg.Connection]:
        timeout = max(_MIN_ACQUIRE, deadline - time.monotonic())
        try:
            conn = await self.pool.acquire(timeout=timeout)
        except TimeoutError:
            self._reject(503, "pool_timeout")
            raise errors.Unavailable(
                "No database connection became free in time; retry later"
            ) from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)
