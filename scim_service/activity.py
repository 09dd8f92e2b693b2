"""The SCIM activity log (issue 14, part 2): every SCIM request, per organization.

The request path only appends a record (raw bytes already in hand, no copy, no I/O) to a
bounded in-memory queue; the owned background task of `ActivityLog.run` does the rest off the
request path: it decodes and masks the bodies, writes batches in one statement each, and prunes
the table (retention days, a per-organization cap). When the queue is full (the database slower
than the traffic for a long while) records are dropped and counted, never waited for.

Failed authentications: a genuine token that is refused (revoked, expired, its organization's
SCIM switched off) is filed under its own organization. A token that matches no token carries
only its public prefix (`scim_` + 6 characters, as token lists show it), which anyone who saw a
token list (or guessed) can send: the insert files it under every organization owning a token
with that prefix, marked *unverified*. Unverified entries are admitted at most
UNVERIFIED_PER_MINUTE per source address and prefix (the rest are counted, not kept), count in
no organization's error rate, and have a cap of their own (UNVERIFIED_MAX_PER_ORG), so a flood
of them neither moves an organization's status nor pushes its real entries out. The caller's
answer is the same whether or not such a token exists (and the lookup happens later, in the
background), so nothing tells a caller whether a token exists.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from scim_service.config import Settings
from scim_service.logs import get_logger
from scim_service.redact import mask_json
from scim_service.store import activity as store
from scim_service.store import audit as audit_store
from scim_service.store.db import DB_ERRORS
from scim_service.tokens import TOKEN_PREFIX, display_prefix

log = get_logger("scim_service.activity")
# Writing the log is bookkeeping: a database error (a connection left in a bad state by a
# cancelled query or a dying server included) drops the batch, never the writer.
_DB_ERRORS = DB_ERRORS

Capture = Literal["off", "errors", "all"]

QUEUE_MAX = 10_000  # records waiting for the writer, at most (then they are dropped)
BATCH_MAX = 500  # records per INSERT
FLUSH_SECONDS = 0.2  # a record waits at most about this long for its batch
PRUNE_SECONDS = 60.0  # retention and cap, this often
BODY_MAX = 8192  # characters of a stored body (longer ones are cut, marked "…")
DECODE_MAX = 65536  # bodies larger than this are not parsed (only their size is kept)
UNVERIFIED_PER_MINUTE = 10  # unverified entries admitted per source address and token prefix
UNVERIFIED_MAX_PER_ORG = 1000  # unverified entries kept per organization (apart from its cap)
_UNVERIFIED_KEYS_MAX = 10_000  # (source, prefix) windows remembered, at most


def idp_of(user_agent: str | None) -> str:
    """Which identity provider sent a request, from its User-Agent."""
    ua = (user_agent or "").lower()
    if "okta" in ua:
        return "Okta"
    if "jumpcloud" in ua:
        return "JumpCloud"
    if any(w in ua for w in ("azure", "microsoft", "entra", "aad")):
        return "Entra"
    return "other"


def token_prefix_of(authorization: str | None) -> str | None:
    """The public prefix of the bearer token sent, if it looks like one of ours."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        return None
    prefix = display_prefix(token)
    return prefix if len(prefix) == len(TOKEN_PREFIX) + 6 and prefix.isascii() else None


def mask_body(raw: bytes | None) -> tuple[str | None, Any]:
    """A body as stored: `redact.mask_json` (every secret key and PATCH path masked, in any
    case, URN-qualified or in an extension object; issued tokens masked in every string; a body
    that does not parse is not kept), cut to BODY_MAX characters. Also the masked value (for the
    error's detail and scimType)."""
    if not raw:
        return None, None
    if len(raw) > DECODE_MAX:
        return f"<{len(raw)} bytes, not kept>", None
    return mask_json(raw, BODY_MAX)


class Record(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What the request path hands over: cheap to build, everything raw."""

    org_id: uuid.UUID | None
    at: datetime
    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    user_agent: str | None
    token_prefix: str | None
    auth_failure: str | None
    request_id: str
    request_body: bytes | None
    response_body: bytes | None
    keep_bodies: bool
    skipped_members: tuple[uuid.UUID, ...] = ()
    """Member ids of a group write that name no user of the organization (a 2xx's warning)."""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the log, as the admin API and the CLI show it."""

    id: int
    at: datetime
    method: str
    route: str
    path: str
    status: int
    scim_type: str | None
    detail: str | None
    duration_ms: float
    idp: str
    user_agent: str | None
    token_prefix: str | None
    auth_failure: str | None
    request_id: str
    request_body: str | None
    response_body: str | None
    unverified: bool = False
    """Filed by a public token prefix only (the token matched none): anyone could have sent it."""
    warning: str | None = None
    """Something a 2xx request did not do (member ids skipped: no users of the organization)."""
    skipped_members: list[uuid.UUID] | None = None


SKIPPED_LISTED = 20  # skipped member ids a warning names (all are kept in skipped_members)


def skipped_warning(skipped: tuple[uuid.UUID, ...] | list[uuid.UUID]) -> str | None:
    """The warning of a group write that skipped member ids naming no user of the organization."""
    if not skipped:
        return None
    ids = ", ".join(str(u) for u in skipped[:SKIPPED_LISTED])
    more = f" and {len(skipped) - SKIPPED_LISTED} more" if len(skipped) > SKIPPED_LISTED else ""
    return f"members skipped, not users of this organization: {ids}{more}"


def wanted(mode: Capture, status: int) -> bool:
    return mode == "all" or (mode == "errors" and status >= 400)


Acquire = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


class ActivityLog:
    """The bounded queue and the writer task that drains it (owned by app.cleanup_ctx)."""

    def __init__(self, settings: Settings) -> None:
        self.mode: Capture = settings.activity_log
        self.bodies: Capture = settings.activity_bodies
        self.retention = timedelta(days=settings.activity_retention_days)
        self.cap = settings.activity_max_per_org
        self._queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._touched: set[uuid.UUID] = set()
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.dropped = 0
        self.unverified_dropped = 0
        self.written = 0

    def wants(self, status: int) -> bool:
        return wanted(self.mode, status)

    def keep_bodies(self, status: int) -> bool:
        return wanted(self.bodies, status)

    def admit_unverified(self, source: str, prefix: str, now: float | None = None) -> bool:
        """Whether an unverified entry from `source` with `prefix` may be kept: at most
        UNVERIFIED_PER_MINUTE per pair and minute (a fixed window; memory bounded)."""
        now = time.monotonic() if now is None else now
        key = (source, prefix)
        start, count = self._windows.get(key, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        if count >= UNVERIFIED_PER_MINUTE:
            self.unverified_dropped += 1
            return False
        if key not in self._windows and len(self._windows) >= _UNVERIFIED_KEYS_MAX:
            self._windows = {k: w for k, w in self._windows.items() if now - w[0] < 60.0}
            if len(self._windows) >= _UNVERIFIED_KEYS_MAX:
                self._windows.clear()  # an attack from very many sources: forget, stay bounded
        self._windows[key] = (start, count + 1)
        return True

    def record(self, rec: Record) -> None:
        """Called on the request path: never blocks, never raises."""
        try:
            self._queue.put_nowait(rec)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self, acquire: Acquire) -> None:
        """Until cancelled: write batches as they come, prune every PRUNE_SECONDS."""
        next_prune = time.monotonic() + 1.0
        while True:
            timeout = max(0.0, next_prune - time.monotonic())
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=timeout)
            except TimeoutError:
                first = None
            if first is not None:
                batch = [first]
                deadline = time.monotonic() + FLUSH_SECONDS
                while len(batch) < BATCH_MAX:
                    try:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        batch.append(await asyncio.wait_for(self._queue.get(), timeout=left))
                    except TimeoutError:
                        break
                await self._write(acquire, batch)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_SECONDS
                await self.prune(acquire)

    async def flush(self, acquire: Acquire) -> None:
        """At shutdown: write what is queued (bounded by the queue size)."""
        while not self._queue.empty():
            batch = [self._queue.get_nowait() for _ in range(min(BATCH_MAX, self._queue.qsize()))]
            await self._write(acquire, batch)

    async def _write(self, acquire: Acquire, batch: list[Record]) -> None:
        rows = [_row(r) for r in batch]
        try:
            async with acquire() as conn:
                orgs = await store.insert(conn, rows)
        except _DB_ERRORS as exc:
            self.dropped += len(batch)
            log.warning("activity_write_failed", records=len(batch), error=type(exc).__name__)
            return
        self.written += len(orgs)
        self._touched.update(orgs)

    async def prune(self, acquire: Acquire) -> int:
        """Retention, then the cap of every organization written to since the last prune."""
        removed = 0
        touched, self._touched = self._touched, set()
        try:
            async with acquire() as conn:
                horizon = datetime.now(UTC) - self.retention
                for _ in range(100):  # bounded: at most 100 batches of 5,000 per round
                    n = await store.prune_old(conn, horizon, 5000)
                    removed += n
                    if n < 5000:
                        break
                for _ in range(100):  # the admin audit trail: the same retention, not counted
                    if await audit_store.prune_old(conn, horizon, 5000) < 5000:
                        break
                for org_id in touched:
                    removed += await store.prune_org(conn, org_id, self.cap)
                    removed += await store.prune_org(
                        conn, org_id, min(self.cap, UNVERIFIED_MAX_PER_ORG), unverified=True
                    )
        except _DB_ERRORS as exc:
            self._touched |= touched
            log.warning("activity_prune_failed", error=type(exc).__name__)
        return removed


def _row(r: Record) -> tuple[Any, ...]:
    req, _ = mask_body(r.request_body) if r.keep_bodies else (None, None)
    decode = r.keep_bodies or r.status >= 400  # an error's detail and scimType
    resp, value = mask_body(r.response_body) if decode else (None, None)
    scim_type = detail = None
    if r.status >= 400 and isinstance(value, dict):
        scim_type = value.get("scimType") if isinstance(value.get("scimType"), str) else None
        detail = str(value["detail"])[:1000] if value.get("detail") is not None else None
    return (
        r.org_id,
        r.at,
        r.method,
        r.route,
        r.path[:500],
        r.status,
        scim_type,
        detail,
        r.duration_ms,
        idp_of(r.user_agent),
        (r.user_agent or "")[:200] or None,
        r.token_prefix,
        r.auth_failure,
        r.request_id,
        req,
        resp if r.keep_bodies else None,
        skipped_warning(r.skipped_members),
        ",".join(str(u) for u in r.skipped_members) or None,  # uuid[] in SQL
    )


def describe(e: Entry) -> str:
    """One line for people: `401 revoked token scim_Ab12cd… from JumpCloud`."""
    who = e.idp if e.idp != "other" else (e.user_agent or "an unknown client")
    if e.auth_failure is not None:
        unverified = " (unverified: only the public prefix matched)" if e.unverified else ""
        return f"{e.status} {e.auth_failure} token {e.token_prefix}… from {who}{unverified}"
    text = f"{e.status} {e.method} {e.path} from {who} ({e.duration_ms:.1f} ms)"
    if e.scim_type or e.detail:
        text += f": {e.scim_type + ' ' if e.scim_type else ''}{e.detail or ''}".rstrip()
    if e.warning:
        text += f" [warning: {e.warning}]"
    return text
