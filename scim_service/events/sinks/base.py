"""The contract between the publisher and the sinks.

The publisher claims pending outbox events for one sink and calls `Sink.deliver(batch)` with at
most `Sink.max_batch` of them (each call its own task, `Sink.concurrency` calls in flight at
most); it gets back one `Outcome` per event, in the same order, and records delivery, a retry or
a dead letter from them. A batch never holds two events of the same resource, so a sink may
deliver a batch's events concurrently without breaking per-resource order. The exception is a
sink with `per_resource` > 1 (webhook batch mode): then each batch is consecutive versions of one
resource, in order, sent together, and all its events share one outcome.

A sink never raises from `deliver`: every failure becomes `Outcome(ok=False, error=...)`, and an
outcome is ok only once the receiver confirmed it (a 2xx, a JetStream PubAck). Error strings are
short and fixed-form ("HTTP 503", "timeout after 15.0s"): they go to logs and metrics, so they
never carry a secret, a URL's credentials or a response body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from scim_service.store.outbox import Outbound  # the claimed event, as the store reads it

__all__ = ["MAX_RETRY_AFTER", "OK", "OPEN_ERRORS", "Outbound", "Outcome", "Sink"]

OPEN_ERRORS: tuple[type[Exception], ...] = (OSError, RuntimeError)
"""What `Sink.open` raises when the sink cannot open now (unreachable: `OSError`, e.g.
`ConnectionError`, `TimeoutError`; misconfigured: `RuntimeError`). Anything else is a bug."""

MAX_RETRY_AFTER = 86_400.0
"""A receiver's `Retry-After` beyond a day is clamped: the retry schedule ends at 24 hours."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one event of a batch."""

    ok: bool
    error: str | None = None
    """Short reason for logs/metrics: never secrets, never the body."""
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (`Retry-After`)."""
    permanent: bool = False
    """Do not retry (e.g. webhook 410 Gone): dead-letter at once."""


OK = Outcome(ok=True)
"""The shared success outcome (immutable, so one instance serves every event)."""


class Sink(Protocol):
    name: str
    """"webhook" | "nats" | "log"."""
    max_batch: int
    """Events per `deliver` call at most (1: the publisher calls once per event)."""
    per_resource: int
    """1: a batch never holds two events of one resource. More (a webhook in batch mode,
    SCIM_WEBHOOK_BATCH_MAX): each batch is the next versions of ONE resource, up to this many,
    in version order, sent as one unit; the sink returns the same outcome for all of them."""
    concurrency: int
    """`deliver` calls in flight at most, per publisher process: the publisher claims no more
    than `concurrency * max_batch` events of this sink at a time (events/publisher.py, `Lane`)."""

    async def open(self) -> None:
        """Connect / create resources; raises one of `OPEN_ERRORS` when it cannot (the server
        unreachable, a misconfiguration): the publisher retries with a back-off."""
        ...

    async def deliver(self, batch: Sequence[Outbound]) -> list[Outcome]:
        """One outcome per event, same length and order as `batch`; never raises."""
        ...

    async def close(self) -> None: ...
