"""Load generators, each a separate process: wrk (HTTP) and pgbench (the SQL ceiling).

A measurement is a warm-up run (discarded) followed by `repeats` runs of `duration` seconds;
it reports the median requests/s and the medians of p50/p99 latency, with min-max across the
repeats. Every run is bounded in time (wrk -d, pgbench -T) and by a subprocess timeout.
"""

from __future__ import annotations

import glob
import json
import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def summarize(runs: list[Run]) -> dict[str, Any]:
    def stat(values: list[float]) -> dict[str, float]:
        values = [v for v in values if v == v] or [float("nan")]  # drop NaN (no requests)
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }

    return {
        "rps": stat([r.rps for r in runs]),
        "p50_ms": stat([r.p50_ms for r in runs]),
        "p99_ms": stat([r.p99_ms for r in runs]),
        "requests": sum(r.requests for r in runs),
        "errors": sum(r.errors for r in runs),
        "runs": [r.__dict__ for r in runs],
    }


def measure(
    one: Callable[[float, int], Run], *, warmup: float, repeats: int, duration: float
) -> dict[str, Any]:
    """`one(duration, index)` runs once; index 0 is the warm-up."""
    if warmup > 0:
        one(warmup, 0)
    runs = [one(duration, i) for i in range(1, repeats + 1)]
    return summarize(runs)


# --- wrk ------------------------------------------------------------------------------------------


def wrk(
    url: str,
    script: str,
    args: list[str],
    *,
    connections: int,
    duration: float,
    timeout: float = 30.0,
) -> Run:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={int(timeout)}s",
        "-s",
        str(LUA / script),
        url,
        "--",
        *args,
    ]
    proc = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=duration + timeout + 30, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    data = json.loads(line.split(" ", 1)[1])
    errors = sum(data[k] for k in data if k.startswith("err_"))
    seconds = data["duration_us"] / 1e6
    none = data["requests"] == 0  # wrk's percentiles of an empty histogram read 0
    return Run(
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=float("nan") if none else data["p50_us"] / 1000,
        p99_ms=float("nan") if none else data["p99_us"] / 1000,
        requests=data["requests"],
        errors=errors,
        extra={k: data[k] for k in data if k.startswith("err_") and data[k]},
    )


# --- pgbench --------------------------------------------------------------------------------------

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[idx]


def pgbench(
    dsn: str,
    script: Path,
    *,
    clients: int,
    duration: float,
    defines: dict[str, str],
) -> Run:
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        prefix = str(Path(tmp) / "log")
        argv = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "1",
            "-T",
            str(max(1, round(duration))),
            "-f",
            str(script),
            "--log",
            f"--log-prefix={prefix}",
        ]
        for key, value in defines.items():
            argv += ["-D", f"{key}={value}"]
        argv.append(dsn)
        proc = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        m = _TPS.search(proc.stdout)
        if proc.returncode != 0 or m is None:
            raise RuntimeError(
                f"pgbench failed ({proc.returncode}) on {script.name}:\n"
                f"{proc.stderr[-2000:]}\n{proc.stdout[-1000:]}"
            )
        latencies: list[float] = []
        for path in glob.glob(prefix + ".*"):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        latencies.append(int(parts[2]) / 1000.0)
        latencies.sort()
        failed = _FAILED.search(proc.stdout)
        return Run(
            rps=float(m.group(1)),
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            requests=len(latencies),
            errors=int(failed.group(1)) if failed else 0,
        )
