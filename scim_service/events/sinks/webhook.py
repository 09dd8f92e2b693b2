"""The webhook sink: each event POSTed to one URL, signed per Standard Webhooks.

Delivery conventions follow the Standard Webhooks spec ("Delivery success and failure"):
only a 2xx is success; a 3xx is a failure (redirects are not followed: the URL should be
updated instead); 410 Gone means the receiver wants no more webhooks, so the outcome is
permanent; everything else (429, 5xx, other 4xx, timeouts, connection errors) is a retryable
failure, with `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) passed on.

One `aiohttp.ClientSession` is created in `open()` and reused for every batch, so deliveries
ride pooled keep-alive connections. A batch's events are POSTed concurrently, bounded by a
semaphore; each request is signed just before it is sent, so `webhook-timestamp` is the time of
the attempt (receivers reject timestamps more than about 5 minutes off).

Outcome errors are fixed strings ("HTTP 503", "timeout after 15.0s", "connection refused"):
never the URL (it may carry credentials or a token in its path or query) nor the response body.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC

import aiohttp
import aiohttp.abc
from yarl import URL

from scim_service.events.sinks.base import MAX_RETRY_AFTER, OK, Outbound, Outcome
from scim_service.logs import get_logger
from scim_service.signing import Signer

__all__ = [
    "BATCH_CONTENT_TYPE",
    "CONTENT_TYPE",
    "MAX_RETRY_AFTER",
    "WebhookSink",
    "parse_retry_after",
]

CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
"""CloudEvents JSON batch mode (JSON event format §4): a JSON array of structured events."""
_BATCH_IDS = uuid.UUID("5d0f3a52-7c1e-4e8e-9b0a-3f1d2c6b8e41")  # namespace of batch webhook-ids

# Servers close idle keep-alive connections (Node.js after 5 s by default); dropping ours a
# little earlier avoids reusing one the server is closing, which would fail a POST.
_KEEPALIVE_TIMEOUT = 4.0
# A receiver's response body is read (so the connection can be reused) but never kept; past
# this size the connection is dropped instead of reading on.
_MAX_DRAIN_BYTES = 64 * 1024

_log = get_logger(__name__)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or HTTP-date), or None.

    Negative or past values give 0; values beyond `MAX_RETRY_AFTER` are clamped to it;
    anything unparsable gives None.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float
    try:
        seconds = float(text)  # RFC 9110 says 1*DIGIT; decimals are accepted leniently
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # an HTTP-date is always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _origin(url: URL) -> str:
    """scheme://host:port only: safe to log (no credentials, path or query)."""
    return f"{url.scheme}://{url.host}:{url.port}"


class WebhookSink:
    """POSTs CloudEvents (structured JSON) to `url` with Standard Webhooks headers."""

    name = "webhook"
    max_batch = 1
    """The publisher hands over one event per call: each request is its own task, so a slow
    receiver answer holds up no other event (see events/publisher.py). In batch mode
    (`batch_max` > 1) up to `batch_max` consecutive versions of one resource per call, sent as
    one CloudEvents batch request."""
    per_resource = 1

    def __init__(
        self,
        url: str,
        signer: Signer | None,
        *,
        timeout: float = 15.0,
        concurrency: int = 32,
        user_agent: str = "scim-service",
        resolver: aiohttp.abc.AbstractResolver | None = None,
        batch_max: int = 1,
    ) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("webhook URL must be an absolute http:// or https:// URL")
        if not timeout > 0:
            raise ValueError("webhook timeout must be positive")
        if concurrency < 1:
            raise ValueError("webhook concurrency must be at least 1")
        if batch_max < 1:
            raise ValueError("webhook batch size must be at least 1")
        if batch_max > 1:
            self.max_batch = self.per_resource = batch_max
        self._url = parsed
        self._signer = signer
        self._timeout = float(timeout)
        self._concurrency = concurrency
        self.concurrency = concurrency
        """Requests in flight at most (the publisher claims no more events than this)."""
        self._user_agent = user_agent
        self._resolver = resolver  # webhook endpoints: refuses forbidden addresses (ssrf.py)
        self._timeout_error = f"timeout after {self._timeout}s"
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"WebhookSink(origin={_origin(self._url)!r}, signed={self._signer is not None})"

    async def open(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            limit_per_host=self._concurrency,
            keepalive_timeout=_KEEPALIVE_TIMEOUT,
            resolver=self._resolver,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": self._user_agent},
            raise_for_status=False,
            trust_env=False,
        )
        self._semaphore = asyncio.Semaphore(self._concurrency)  # bound to the running loop
        _log.info(
            "webhook_sink_opened",
            origin=_origin(self._url),
            signed=self._signer is not None,
            concurrency=self._concurrency,
            timeout=self._timeout,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def deliver(self, batch: Sequence[Outbound]) -> list[Outcome]:
        if not batch:
            return []
        session, semaphore = self._session, self._semaphore
        if session is None or semaphore is None or session.closed:
            return [Outcome(ok=False, error="sink not open")] * len(batch)
        if self.per_resource > 1:  # batch mode: one request, one outcome for all
            body = b"[" + b",".join(event.payload for event in batch) + b"]"
            msg_id = str(uuid.uuid5(_BATCH_IDS, ",".join(event.id for event in batch)))
            outcome = await self._post(session, semaphore, msg_id, body, BATCH_CONTENT_TYPE)
            return [outcome] * len(batch)
        posts = (
            self._post(session, semaphore, event.id, event.payload, CONTENT_TYPE) for event in batch
        )
        return list(await asyncio.gather(*posts))

    def _headers(self, msg_id: str, body: bytes, content_type: str) -> dict[str, str]:
        if self._signer is not None:
            headers = self._signer.headers(msg_id, body)
        else:
            headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(time.time()))}
        headers["Content-Type"] = content_type
        return headers

    async def _post(
        self,
        session: aiohttp.ClientSession,
        semaphore: asyncio.Semaphore,
        msg_id: str,
        body: bytes,
        content_type: str,
    ) -> Outcome:
        """One request: an event's payload with its id as `webhook-id`, or a batch (a JSON
        array of payloads) with an id derived from its events' ids (the same events, the same
        id); signed over exactly the bytes sent."""
        async with semaphore:
            try:  # signed now: the timestamp is the attempt's
                headers = self._headers(msg_id, body, content_type)
            except ValueError:
                return Outcome(ok=False, permanent=True, error="event id unusable as webhook-id")
            try:
                async with session.post(
                    self._url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
                    await _discard_body(response)
            except aiohttp.ClientConnectorDNSError as exc:
                if getattr(exc.os_error, "permanent", False):
                    # a forbidden address (events/ssrf.py): a dead letter with that reason
                    return Outcome(ok=False, permanent=True, error=str(exc.os_error))
                return Outcome(ok=False, error=self._describe(exc))
            except Exception as exc:  # deliver never raises: every failure is an Outcome
                return Outcome(ok=False, error=self._describe(exc))
        if 200 <= status < 300:
            return OK
        if status == 410:  # Gone: the receiver asks us to stop (Standard Webhooks)
            return Outcome(ok=False, permanent=True, error="HTTP 410")
        return Outcome(ok=False, error=f"HTTP {status}", retry_after=parse_retry_after(retry_after))

    def _describe(self, exc: Exception) -> str:
        """A fixed, secret-free reason: aiohttp's own messages may name the host or URL."""
        if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
            return self._timeout_error
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return "dns lookup failed"
        if isinstance(exc, aiohttp.ClientSSLError):
            return "tls error"
        if isinstance(exc, aiohttp.ClientConnectorError):
            if exc.os_error.errno == errno.ECONNREFUSED or isinstance(
                exc.os_error, ConnectionRefusedError
            ):
                return "connection refused"
            return "connection failed"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "server disconnected"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return "response payload error"
        if isinstance(exc, aiohttp.ClientConnectionError | OSError):
            return "connection error"
        if isinstance(exc, aiohttp.ClientError):
            return f"http client error ({type(exc).__name__})"
        _log.warning("webhook_unexpected_error", error_type=type(exc).__name__)
        return f"unexpected error ({type(exc).__name__})"


async def _discard_body(response: aiohttp.ClientResponse) -> None:
    """Read and drop the body so the connection returns to the pool; drop the connection
    instead if the body is large. The status is already known, so errors here are ignored."""
    remaining = _MAX_DRAIN_BYTES
    try:
        while remaining > 0:
            chunk = await response.content.readany()
            if not chunk:
                return
            remaining -= len(chunk)
    except (aiohttp.ClientError, TimeoutError, OSError):
        pass
    response.close()
