"""Bounds on slow clients, per listener of a worker process (issue 23).

aiohttp bounds none of these by itself (its keep-alive default is an hour), and the sidecar is
reachable without an ingress in some deployments, so each connection is watched here:

- **Request head** (`SCIM_HTTP_HEAD_TIMEOUT`, 10 s): the request line and headers arrive in full
  within the bound, counted from their first byte (from the connection, for the first request:
  a connection that never sends a byte is one whose head never comes). Else `408` and close.
- **Body rate** (`SCIM_HTTP_BODY_MIN_RATE`, 240 bytes/s, after `SCIM_HTTP_BODY_GRACE`, 5 s):
  Kestrel's rule. A body trickled at 1 byte/s is never idle, so an idle timeout would not cut
  it; its average rate is. The handler's read fails with `408` (a SCIM error body) and the
  connection closes after the answer.
- **Keep-alive idle** (`SCIM_HTTP_KEEPALIVE_TIMEOUT`, 75 s): aiohttp's own timer, set here.
- **Open connections** (`SCIM_HTTP_MAX_CONNECTIONS`, 1000): one more is answered `503` with
  `Retry-After` and closed, before any of it is read.

One sweeper task per listener checks every open connection each `tick` seconds (a set walk,
no timer per connection). The middleware tells a connection when its request's handler starts
and finishes (`request_started`, `request_finished`): between the two a body may be read;
outside them the next bytes begin a new head. `RequestHandler` is subclassed because aiohttp
offers no hook on connection open and bytes received; the subclass only observes and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from scim_service import errors
from scim_service.config import Settings
from scim_service.logs import get_logger

log = get_logger("scim_service.http.connections")

_IDLE, _HEAD, _BODY = 0, 1, 2


class Rejections(Protocol):
    def rejected(self, status: int, reason: str) -> None: ...


def _raw_answer(status: str, detail: str, extra: str = "") -> bytes:
    """A whole HTTP answer with a SCIM error body, written straight to the transport (no
    request was parsed to answer through aiohttp)."""
    body = msgspec.json.encode(
        {"schemas": [errors.ERROR_SCHEMA], "status": status.split()[0], "detail": detail}
    )
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    ).encode() + body


_HEAD_TIMEOUT = _raw_answer("408 Request Timeout", "The request head took too long to arrive")
_OVER_CAPACITY = _raw_answer(
    "503 Service Unavailable", "Too many open connections; retry shortly", "Retry-After: 1\r\n"
)


class BodyTooSlow(errors.ScimError):
    """408: the request body arrived slower than SCIM_HTTP_BODY_MIN_RATE."""

    status = 408
    default_detail = "The request body arrived too slowly"


class WatchedHandler(RequestHandler):
    """aiohttp's connection protocol, observed by its Watchdog (see the module docstring)."""

    def __init__(self, manager: web.Server, watchdog: Watchdog, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.watchdog = watchdog
        self.state = _HEAD
        self.since = time.monotonic()
        self.body_bytes = 0
        self.request: web.BaseRequest | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.watchdog.opened(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.watchdog.conns.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.state == _IDLE:
            self.state, self.since = _HEAD, time.monotonic()
        elif self.state == _BODY:
            self.body_bytes += len(data)
        super().data_received(data)


class Watchdog:
    """The open connections of one listener and the task that enforces the bounds."""

    def __init__(self, settings: Settings, metrics: Rejections | None = None) -> None:
        self.head_timeout = settings.http_head_timeout
        self.min_rate = settings.http_body_min_rate
        self.grace = settings.http_body_grace
        self.keepalive = settings.http_keepalive_timeout
        self.cap = settings.http_max_connections
        self.metrics = metrics
        bounds = [b for b in (self.head_timeout, self.grace) if b > 0]
        self.tick = min([1.0, *(b / 4 for b in bounds)])
        self.conns: set[WatchedHandler] = set()
        self._task: asyncio.Task[None] | None = None

    def factory(self, server: web.Server) -> Any:
        """The protocol factory for `loop.create_server`."""
        loop = asyncio.get_running_loop()

        def make() -> WatchedHandler:
            return WatchedHandler(
                server, self, loop=loop, access_log=None, keepalive_timeout=self.keepalive
            )

        return make

    def opened(self, conn: WatchedHandler, transport: asyncio.BaseTransport) -> None:
        if self.cap > 0 and len(self.conns) >= self.cap:
            self._cut(conn, transport, _OVER_CAPACITY, "over_capacity", 503)
            return
        self.conns.add(conn)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep(), name="http-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.check(time.monotonic())

    def check(self, now: float) -> None:
        for conn in list(self.conns):
            elapsed = now - conn.since
            if conn.state == _HEAD and 0 < self.head_timeout < elapsed:
                if conn.transport is not None:
                    self._cut(conn, conn.transport, _HEAD_TIMEOUT, "head_timeout", 408)
            elif (
                conn.state == _BODY
                and self.min_rate > 0
                and elapsed > self.grace
                and conn.request is not None
                and not conn.request.content.is_eof()
                and conn.body_bytes < self.min_rate * elapsed
            ):
                conn.state = _IDLE  # cut once
                conn.close()  # once the 408 is sent
                self._reject(408, "body_too_slow")
                log.info("slow_client_cut", reason="body_too_slow", bytes=conn.body_bytes)
                conn.request.content.set_exception(
                    BodyTooSlow(
                        f"The request body arrived at {conn.body_bytes / elapsed:.0f} bytes/s, "
                        f"under the {self.min_rate:g} bytes/s required after {self.grace:g}s"
                    )
                )

    def _cut(
        self,
        conn: WatchedHandler,
        transport: asyncio.BaseTransport,
        answer: bytes,
        reason: str,
        status: int,
    ) -> None:
        self.conns.discard(conn)
        self._reject(status, reason)
        log.info("slow_client_cut", reason=reason)
        # uvloop's transports are not asyncio.WriteTransport subclasses: duck-typed.
        write = getattr(transport, "write", None)
        if write is not None and not transport.is_closing():
            write(answer)
        conn.force_close()
        transport.close()

    def _reject(self, status: int, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected(status, reason)


def request_started(request: web.BaseRequest) -> None:
    """The handler of `request` begins: its head is in; its body may still be coming."""
    conn = request.protocol
    if isinstance(conn, WatchedHandler):
        conn.state, conn.since, conn.body_bytes, conn.request = (
            _BODY,
            time.monotonic(),
            0,
            request,
        )


def request_finished(request: web.BaseRequest) -> None:
    """The handler of `request` has its answer: the connection is idle until the next byte."""
    conn = request.protocol
    if isinstance(conn, WatchedHandler) and conn.request is request:
        conn.state, conn.request = _IDLE, None


class WatchedSite(web.SockSite):
    """A SockSite whose connections are watched (the one change: the protocol factory)."""

    def __init__(self, runner: web.AppRunner, sock: Any, watchdog: Watchdog) -> None:
        super().__init__(runner, sock)
        self.watchdog = watchdog

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.watchdog.factory(server), sock=self._sock, backlog=self._backlog
        )
        self.watchdog.start()

    async def stop(self) -> None:
        await self.watchdog.stop()
        await super().stop()
