"""`scim_worker_restarts_total{slot_kind, reason}`: the supervisor's replacements of its
children, for operators (deploy/README.md, ScimWorkerRestarts).

The supervisor is no worker: it keeps the counts in memory and writes them, after each
replacement, to one small file in the multi-process metrics directory it owns
(`PROMETHEUS_MULTIPROC_DIR`); whichever worker answers a scrape reads that file. Every known
(slot_kind, reason) is exposed from the start, at zero, also in a single-process `serve`
(which has no supervisor: always zero there).

slot_kind: `worker` (a request worker) or `publisher` (the publisher process).
reason: `exited` (died after serving: a crash, an OOM kill, a kill -9), `failed_start` (died
before serving or within 10 s of being ready) or `stalled` (a publisher whose heartbeat stopped,
killed by the supervisor).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

FILE_NAME = "worker_restarts.json"
KNOWN: tuple[tuple[str, str], ...] = (
    ("worker", "exited"),
    ("worker", "failed_start"),
    ("publisher", "exited"),
    ("publisher", "failed_start"),
    ("publisher", "stalled"),
)


class Restarts:
    """The supervisor's side: counts, written atomically (a scrape never reads half a file)."""

    def __init__(self, folder: str | None) -> None:
        self.path = Path(folder) / FILE_NAME if folder else None
        self.counts: dict[tuple[str, str], int] = dict.fromkeys(KNOWN, 0)

    def count(self, slot_kind: str, reason: str) -> None:
        key = (slot_kind, reason)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps([[k, r, n] for (k, r), n in self.counts.items()]))
            os.replace(tmp, self.path)


class _Collector(Collector):
    def __init__(self, folder: str | None) -> None:
        self.path = Path(folder) / FILE_NAME if folder else None

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = dict.fromkeys(KNOWN, 0)
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                for kind, reason, n in json.loads(self.path.read_text()):
                    counts[(str(kind), str(reason))] = int(n)
        family = CounterMetricFamily(
            "scim_worker_restarts",
            "Children the supervisor replaced, by slot kind and reason",
            labels=["slot_kind", "reason"],
        )
        for (kind, reason), n in counts.items():
            family.add_metric([kind, reason], n)
        yield family


def register(registry: CollectorRegistry, folder: str | None) -> None:
    registry.register(_Collector(folder))
