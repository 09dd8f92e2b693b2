"""The pull side of events: opaque cursors, long polling woken by the outbox NOTIFY.

A consumer asks for events after a cursor; when there are none and it asked to wait, the
request sleeps (holding no database connection) until the outbox trigger's NOTIFY says a
change committed, then reads again. `Feed` owns one LISTEN connection per serving process
(store/listen.py, reconnecting by itself) and wakes every waiting request at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import asyncpg

from scim_service import errors
from scim_service.store import pull
from scim_service.store.listen import listen
from scim_service.store.outbox import CHANNEL
from scim_service.store.pull import Page
from scim_service.store.pull import Position as Position  # the handlers name it

MAX_WAIT = 30.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Without a NOTIFY (the LISTEN connection reconnecting), a waiting request still reads this often.
FALLBACK_POLL = 2.0
# Committed events held back by an older transaction still open: read again this soon (doubling).
HELD_BACK_FIRST = 0.005
HELD_BACK_MAX = 0.05

_CURSOR_PREFIX = "c1."


def encode_cursor(pos: Position) -> str:
    raw = f"{pos.xid}.{pos.seq}".encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, name: str = "after") -> Position:
    """A cursor this service handed out, or a 400."""
    bad = errors.InvalidValue(f"'{name}' is not a cursor this service handed out")
    if not text.startswith(_CURSOR_PREFIX) or len(text) > 64:
        raise bad
    body = text[len(_CURSOR_PREFIX) :]
    try:
        xid, _, seq = (
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().partition(".")
        )
        pos = Position(int(xid), int(seq))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not (0 <= pos.xid < 2**63 and 0 <= pos.seq < 2**63):
        raise bad
    return pos


def gone(exc: pull.Expired) -> errors.Gone:
    oldest = encode_cursor(exc.oldest)
    return errors.Gone(
        "The cursor is older than the events retention window (SCIM_EVENTS_RETENTION_DAYS); "
        f"the oldest position available is {oldest}: bootstrap again from the snapshot "
        "endpoints, or continue from there knowing events were missed",
        oldest=oldest,
    )


async def read(
    conn: asyncpg.Connection,
    after: Position | None,
    limit: int,
    *,
    org_id: uuid.UUID | None = None,
    types: Sequence[str] | None = None,
    until: Position | None = None,
) -> Page:
    """One page of events after `after` (None: from the oldest), none past `until`; 410 for a
    cursor older than retention."""
    try:
        return await pull.read(conn, after, limit, org_id=org_id, types=types, until=until)
    except pull.Expired as exc:
        raise gone(exc) from None


class Feed:
    """Wakes waiting pull requests when an event may have committed."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._tick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._started = False
        self.stopping = False

    def start(self) -> None:
        """Listen from the first long-polling request on (`listening`), not before: a process
        nobody long-polls holds no connection for it. Until the LISTEN is up, waiting requests
        read again on their fallback poll, and all are woken once it is (nothing is missed)."""
        self._started = True

    def listening(self) -> None:
        if self._started and self._task is None and not self.stopping:
            self._task = asyncio.create_task(
                listen(
                    self._dsn,
                    CHANNEL,
                    self.wake,
                    lambda up: self.wake() if up else None,
                    connect_timeout=self._connect_timeout,
                ),
                name="events-feed-listen",
            )

    async def stop(self) -> None:
        self.stopping = True
        self.wake()  # waiting requests answer at once with what they have
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def watch_xmin(
        self, acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]], seen: int
    ) -> None:
        """Committed events are held back by an older transaction, which may never NOTIFY (it
        need not write events): one task per process asks for the xmin, backing off, and wakes
        every waiting request once it has moved past `seen` (instead of each request polling)."""
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_xmin(acquire, seen), name="events-xmin")

    async def _watch_xmin(
        self, acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]], seen: int
    ) -> None:
        delay = HELD_BACK_FIRST
        deadline = time.monotonic() + MAX_WAIT
        try:
            while not self.stopping and time.monotonic() < deadline:
                await asyncio.sleep(delay)
                async with acquire() as conn:
                    if await pull.current_xmin(conn) > seen:
                        break
                delay = min(delay * 2, HELD_BACK_MAX)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, errors.ScimError):
            pass  # the waiting requests still read again on their fallback poll
        finally:
            self.wake()

    def wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def tick(self) -> asyncio.Event:
        """The event the next wake sets: take it *before* reading, wait on it after."""
        return self._tick


async def read_or_wait(
    acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
    feed: Feed | None,
    after: Position | None,
    *,
    limit: int,
    wait: float,
    org_id: uuid.UUID | None = None,
    types: Sequence[str] | None = None,
    until: Position | None = None,
) -> Page:
    """One page; when it is empty and `wait` > 0, wait (no connection held) for a commit and
    read again, until something arrives or `wait` seconds have passed (never once `until` is
    reached: nothing more can come)."""
    deadline = time.monotonic() + min(wait, MAX_WAIT)
    while True:  # bounded by the deadline
        tick = feed.tick() if feed is not None else asyncio.Event()
        async with acquire() as conn:
            page = await read(conn, after, limit, org_id=org_id, types=types, until=until)
        remaining = deadline - time.monotonic()
        done = until is not None and page.next >= until
        if page.payloads or done or remaining <= 0 or feed is None or feed.stopping:
            return page
        after = page.next
        feed.listening()
        if page.held_back:
            feed.watch_xmin(acquire, page.xmin)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), timeout=min(remaining, FALLBACK_POLL))
