"""CPU time of a process and of all PostgreSQL processes, from /proc (Linux), to tell where a
run's cycles went: a server at ~100% of one core is bound by its own (single-threaded) work."""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def postgres_ticks() -> dict[int, int]:
    """CPU ticks of every process named postgres*, by pid."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("postgres"):
            out[int(entry.name)] = _ticks(int(entry.name))
    return out


def _delta(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks spent between two readings by the processes alive at the second one (a process
    that exited in between is not counted; one that started is counted whole)."""
    return sum(max(0, t - before.get(pid, 0)) for pid, t in after.items())


class CpuMeter:
    """Share of one core used by `pid` and by PostgreSQL between start() and stop()."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.p0 = _ticks(self.pid) if self.pid else 0
        self.g0 = postgres_ticks()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        out = {"pg_cpu_pct": 100.0 * _delta(self.g0, postgres_ticks()) / _TICK / wall}
        if self.pid:
            out["server_cpu_pct"] = 100.0 * (_ticks(self.pid) - self.p0) / _TICK / wall
        return out
