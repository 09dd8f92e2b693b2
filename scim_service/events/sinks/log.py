"""The log sink: each CloudEvent as one JSON line on stdout.

The default sink when neither a webhook nor NATS is configured, so `make run` shows events as
they happen. It writes the event itself (not wrapped in a log record) so the output can be piped
straight into `jq` or a consumer under test.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from scim_service.events.sinks.base import OK, Outbound, Outcome

__all__ = ["LogSink"]


def _line(payload: bytes) -> str:
    """The payload as one line. JSON strings cannot hold raw CR/LF, so any there are
    insignificant whitespace (pretty-printed JSON) and are dropped."""
    text = payload.decode("utf-8", errors="replace")
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    return text + "\n"


class LogSink:
    """Writes payloads as JSON lines to `stream` (`sys.stdout` looked up at write time)."""

    name = "log"
    max_batch = 5000
    per_resource = 1

    def __init__(self, stream: TextIO | None = None, *, concurrency: int = 2) -> None:
        self._stream = stream
        self.concurrency = max(1, concurrency)
        """Batches in flight at most (the factory gives one per claim loop)."""

    async def open(self) -> None:
        return None

    async def deliver(self, batch: Sequence[Outbound]) -> list[Outcome]:
        if not batch:
            return []
        # Resolved per call, not at construction: pytest's capsys and the CLI swap sys.stdout.
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            stream.write("".join(_line(event.payload) for event in batch))  # one write a batch
            stream.flush()
        except Exception as exc:  # deliver never raises; a closed stream is a failure
            outcome = Outcome(ok=False, error=f"write failed: {type(exc).__name__}")
            return [outcome] * len(batch)
        return [OK] * len(batch)

    async def close(self) -> None:
        return None
