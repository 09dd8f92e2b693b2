"""The NATS JetStream sink.

Each event is published to `<prefix>.<org_id>.<type>`; the type's dots make extra tokens
(`scim.<org>.user.provisioned`), so consumers subscribe `scim.<org>.>` or `scim.*.user.>`.
Headers: `Nats-Msg-Id` = the CloudEvents id, so JetStream drops a redelivery that arrives inside
the stream's duplicate window, and `Content-Type: application/cloudevents+json`.

An event counts as delivered only once its PubAck arrived. For throughput a batch is published
in one go (buffered writes, each with its own reply subject under one inbox subscription that
this sink owns) and the acks are then awaited together under one deadline, instead of one
request/ack round trip after another. This is what nats-py's `publish_async` does, minus its
per-message semaphore timeout and JSON parsing, which made it the relay's bottleneck.

`open()` connects with a bounded timeout (and a client that reconnects in the background for
ever afterwards), then makes sure the stream exists and covers `<prefix>.>`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig, StreamInfo

from scim_service.events.sinks.base import OK, Outbound, Outcome
from scim_service.logs import get_logger

__all__ = ["CONTENT_TYPE", "DUPLICATE_WINDOW", "NatsSink", "subject_covers"]

CONTENT_TYPE = "application/cloudevents+json"
DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers a Nats-Msg-Id (also JetStream's own default: 2 minutes)."""

# Upper bound on unacknowledged publishes; larger batches go out in chunks of this size so a
# chunk can never stall on nats-py's pending-publish semaphore.
_MAX_IN_FLIGHT = 8192
_RECONNECT_TIME_WAIT = 2.0
_PING_INTERVAL = 20
# A subject token we build from data: no separators, wildcards, whitespace or controls.
_BAD_TOKEN = re.compile(r"[\s.*>\x00-\x1f\x7f]")
_BAD_HEADER = re.compile(r"[\s\x00-\x1f\x7f]")
_BAD_NAME = re.compile(r"[\s.*>/\\\x00-\x1f\x7f]")

_log = get_logger(__name__)

_NOT_OPEN = Outcome(ok=False, error="sink not open")
_DISCONNECTED = Outcome(ok=False, error="nats disconnected")


def subject_covers(pattern: str, subject: str) -> bool:
    """True when every subject matched by `subject` (which may hold wildcards) is matched by
    the stream subject `pattern`: `>` covers `scim.>`, `scim.*.>` does not cover `scim.>`."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for position, part in enumerate(pattern_tokens):
        if part == ">":
            return position < len(subject_tokens)
        if position >= len(subject_tokens):
            return False
        other = subject_tokens[position]
        if other == ">":
            return False  # a multi-token tail is covered only by ">"
        if part not in ("*", other):
            return False
    return len(pattern_tokens) == len(subject_tokens)


def _origins(url: str) -> list[str]:
    """scheme://host:port of each server: safe to log (credentials dropped)."""
    origins = []
    for server in url.split(","):
        parts = urlsplit(server.strip() if "://" in server else "nats://" + server.strip())
        origins.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}")
    return origins


class NatsSink:
    """Publishes CloudEvents to a JetStream stream and confirms each by its PubAck."""

    name = "nats"
    max_batch = 5000
    per_resource = 1

    def __init__(
        self,
        url: str,
        *,
        subject_prefix: str = "scim",
        stream: str = "SCIM_EVENTS",
        connect_timeout: float = 5.0,
        publish_timeout: float = 5.0,
        concurrency: int = 2,
    ) -> None:
        servers = [part.strip() for part in url.split(",") if part.strip()]
        if not servers:
            raise ValueError("NATS URL is empty")
        tokens = subject_prefix.split(".")
        if not subject_prefix or any(not t or _BAD_TOKEN.search(t) for t in tokens):
            raise ValueError(
                "NATS subject prefix must be dot-separated tokens without wildcards or spaces"
            )
        if not stream or _BAD_NAME.search(stream):
            raise ValueError("NATS stream name must not contain '.', '*', '>', slashes or spaces")
        if not connect_timeout > 0 or not publish_timeout > 0:
            raise ValueError("NATS timeouts must be positive")
        self.concurrency = max(1, concurrency)
        """Batches in flight at most (the factory gives one per claim loop)."""
        self._servers = servers
        self._origins = _origins(url)
        self._prefix = subject_prefix
        self._stream = stream
        self._connect_timeout = float(connect_timeout)
        self._publish_timeout = float(publish_timeout)
        self._timeout_error = Outcome(ok=False, error=f"no PubAck within {self._publish_timeout}s")
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ack_prefix = ""
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._next_ack = 0
        self._valid_types: set[str] = set()
        self._closing = False  # a close we asked for: its callbacks are not news

    def __repr__(self) -> str:
        return f"NatsSink(servers={self._origins!r}, stream={self._stream!r})"

    @property
    def stream(self) -> str:
        return self._stream

    def subject_for(self, event: Outbound) -> str:
        return f"{self._prefix}.{event.org_id}.{event.type}"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (bounded by `connect_timeout`) and ensure the stream; raises on failure."""
        if self._nc is not None and not self._nc.is_closed:
            return
        self._closing = False
        nc = Client()
        try:
            # nats-py retries inside connect() for ever with max_reconnect_attempts=-1; the
            # deadline bounds the first connection, the setting keeps later reconnects going.
            await asyncio.wait_for(
                nc.connect(
                    servers=self._servers,
                    name="scim-service",
                    connect_timeout=self._connect_timeout,  # type: ignore[arg-type]
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=_RECONNECT_TIME_WAIT,  # type: ignore[arg-type]
                    ping_interval=_PING_INTERVAL,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                ),
                timeout=self._connect_timeout,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await self._close_quietly(nc)
            raise ConnectionError(
                f"cannot connect to NATS at {', '.join(self._origins)} "
                f"within {self._connect_timeout}s ({type(exc).__name__})"
            ) from None
        js = nc.jetstream(timeout=self._connect_timeout, publish_async_max_pending=_MAX_IN_FLIGHT)
        try:
            info = await self._ensure_stream(js)
        except BaseException:
            await self._close_quietly(nc)
            raise
        self._ack_prefix = nc.new_inbox()
        await nc.subscribe(self._ack_prefix + ".*", cb=self._on_ack)
        self._nc, self._js = nc, js
        _log.info(
            "nats_sink_opened",
            servers=self._origins,
            stream=self._stream,
            subjects=info.config.subjects,
            duplicate_window=info.config.duplicate_window,
        )

    async def _ensure_stream(self, js: JetStreamContext) -> StreamInfo:
        wanted = f"{self._prefix}.>"
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            info = await self._create_stream(js, wanted)
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
            raise RuntimeError("JetStream is not enabled on the NATS server") from None
        except (TimeoutError, nats.errors.Error) as exc:
            raise RuntimeError(
                f"cannot read NATS stream {self._stream!r} ({type(exc).__name__})"
            ) from None
        subjects = info.config.subjects or []
        if not any(subject_covers(pattern, wanted) for pattern in subjects):
            raise RuntimeError(
                f"NATS stream {self._stream!r} exists but its subjects {subjects} do not cover "
                f"{wanted!r}: add {wanted!r} to the stream or choose another stream or prefix"
            )
        window = info.config.duplicate_window or 0.0
        if window < DUPLICATE_WINDOW:
            _log.warning(
                "nats_stream_short_duplicate_window",
                stream=self._stream,
                duplicate_window=window,
                recommended=DUPLICATE_WINDOW,
            )
        return info

    async def _create_stream(self, js: JetStreamContext, wanted: str) -> StreamInfo:
        config = StreamConfig(
            name=self._stream,
            description="scim-service provisioning events (CloudEvents, structured JSON)",
            subjects=[wanted],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
        )
        try:
            info = await js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code == 10058:  # name in use: another instance created it first
                return await js.stream_info(self._stream)
            raise RuntimeError(
                f"cannot create NATS stream {self._stream!r}: {exc.description} "
                f"(err_code {exc.err_code})"
            ) from None
        except nats.js.errors.APIError as exc:
            raise RuntimeError(
                f"cannot create NATS stream {self._stream!r}: {exc.description} "
                f"(err_code {exc.err_code})"
            ) from None
        _log.info("nats_stream_created", stream=self._stream, subjects=[wanted])
        return info

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await self._close_quietly(nc)

    async def _close_quietly(self, nc: Client) -> None:
        self._closing = True
        try:
            await nc.close()
        except Exception as exc:  # closing a half-open client must not mask the real error
            _log.debug("nats_close_failed", error_type=type(exc).__name__)

    # -- delivery ----------------------------------------------------------------------------

    async def deliver(self, batch: Sequence[Outbound]) -> list[Outcome]:
        if not batch:
            return []
        nc, js = self._nc, self._js
        if nc is None or js is None or nc.is_closed:
            return [_NOT_OPEN] * len(batch)
        outcomes: list[Outcome] = []
        for start in range(0, len(batch), _MAX_IN_FLIGHT):
            outcomes.extend(
                await self._deliver_chunk(nc, js, batch[start : start + _MAX_IN_FLIGHT])
            )
        return outcomes

    async def _deliver_chunk(
        self, nc: Client, js: JetStreamContext, chunk: Sequence[Outbound]
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(chunk)
        pending: list[tuple[int, str, asyncio.Future[None]]] = []
        loop = asyncio.get_running_loop()
        try:
            for index, event in enumerate(chunk):
                # Not connected (reconnecting): fail fast rather than buffer messages that
                # would be sent, unconfirmed, after the reconnect.
                if not nc.is_connected:
                    outcomes[index] = _DISCONNECTED
                    continue
                rejected = self._check(nc, event)
                if rejected is not None:
                    outcomes[index] = rejected
                    continue
                self._next_ack += 1
                reply = f"{self._ack_prefix}.{self._next_ack}"
                future: asyncio.Future[None] = loop.create_future()
                self._acks[reply] = future
                try:
                    await nc.publish(
                        self.subject_for(event),
                        event.payload,
                        reply=reply,
                        headers={"Nats-Msg-Id": event.id, "Content-Type": CONTENT_TYPE},
                    )
                except Exception as exc:  # deliver never raises
                    self._acks.pop(reply, None)
                    outcomes[index] = _failure(exc)
                    continue
                pending.append((index, reply, future))
            if pending:
                await asyncio.wait([f for _, _, f in pending], timeout=self._publish_timeout)
        finally:
            for _, reply, future in pending:  # timed out, or deliver itself was cancelled
                self._acks.pop(reply, None)
                if not future.done():
                    future.cancel()
        for index, _, future in pending:
            if future.cancelled():
                outcomes[index] = self._timeout_error
                continue
            error = future.exception()
            outcomes[index] = OK if error is None else _failure(error)
        return [outcome if outcome is not None else _NOT_OPEN for outcome in outcomes]

    async def _on_ack(self, msg: Msg) -> None:
        """A PubAck (or a JetStream error, or "no responders") for one published event."""
        future = self._acks.pop(msg.subject, None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            ack = msgspec.json.decode(msg.data)
        except msgspec.DecodeError:
            future.set_exception(nats.errors.Error("unreadable PubAck"))
            return
        error = ack.get("error") if isinstance(ack, dict) else None
        if error:
            future.set_exception(nats.js.errors.APIError.from_error(error))
        else:
            future.set_result(None)

    def _check(self, nc: Client, event: Outbound) -> Outcome | None:
        """Reject, permanently, an event no retry could publish (and that nats-py would fail
        on after registering its ack future, which would then never resolve)."""
        if event.type not in self._valid_types:
            if not event.type or any(not t or _BAD_TOKEN.search(t) for t in event.type.split(".")):
                return Outcome(ok=False, permanent=True, error="event type unusable in a subject")
            self._valid_types.add(event.type)
        if not event.org_id or _BAD_TOKEN.search(event.org_id):
            return Outcome(ok=False, permanent=True, error="org id unusable in a subject")
        if not event.id or _BAD_HEADER.search(event.id):
            return Outcome(ok=False, permanent=True, error="event id unusable as Nats-Msg-Id")
        if len(event.payload) > nc.max_payload:
            return Outcome(
                ok=False, permanent=True, error=f"payload over NATS max_payload {nc.max_payload}"
            )
        return None

    # -- connection callbacks (log lines only; never the URL's credentials) ------------------

    async def _on_error(self, exc: Exception) -> None:
        if self._closing:
            return
        _log.warning("nats_error", error_type=type(exc).__name__, error=str(exc)[:200])

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        _log.warning("nats_disconnected", servers=self._origins)

    async def _on_reconnected(self) -> None:
        _log.info("nats_reconnected", servers=self._origins)

    async def _on_closed(self) -> None:
        if not self._closing:  # closed by the client itself, not by close()
            _log.warning("nats_closed", servers=self._origins)


def _failure(exc: BaseException) -> Outcome:
    """A fixed, short reason for a failed publish."""
    if isinstance(exc, nats.js.errors.NoStreamResponseError | nats.errors.NoRespondersError):
        return Outcome(ok=False, error="no stream for subject (no responders)")
    if isinstance(exc, nats.js.errors.APIError):
        return Outcome(ok=False, error=f"jetstream error {exc.err_code}: {exc.description}")
    if isinstance(exc, nats.errors.MaxPayloadError):
        return Outcome(ok=False, permanent=True, error="payload over NATS max_payload")
    if isinstance(exc, nats.errors.BadSubjectError | nats.errors.BadHeaderError):
        return Outcome(ok=False, permanent=True, error=f"rejected by client ({type(exc).__name__})")
    if isinstance(exc, nats.errors.ConnectionClosedError):
        return Outcome(ok=False, error="nats connection closed")
    if isinstance(exc, nats.errors.OutboundBufferLimitError):
        return Outcome(ok=False, error="nats disconnected (outbound buffer full)")
    if isinstance(exc, TimeoutError):
        return Outcome(ok=False, error="nats timeout")
    if isinstance(exc, nats.errors.Error):
        return Outcome(ok=False, error=f"nats error ({type(exc).__name__})")
    _log.warning("nats_unexpected_error", error_type=type(exc).__name__)
    return Outcome(ok=False, error=f"unexpected error ({type(exc).__name__})")
