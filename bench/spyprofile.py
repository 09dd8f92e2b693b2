"""py-spy profiles of the running service under load (`run.py --profile`): where its time goes.

py-spy samples the server from outside (no change to it); `--nonblocking` keeps it from pausing
the process. The raw (collapsed) stacks are kept next to the results; the summary lists the
functions with the most samples on top of the stack (self) and anywhere on it (inclusive), and
the self time per package."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def available() -> bool:
    return PY_SPY.exists()


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--subprocesses",  # a pre-forking serve: its workers are the parent's children
            "--full-filenames",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/scim_service/" in path:
        parts = path.split("/scim_service/", 1)[1].split("/")
        return "scim_service/" + parts[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path.rsplit("/", 1)[-1] or "?"


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        leaf = frames[-1]
        self_counts[leaf] += n
        m = _FRAME.match(leaf)
        packages[_package(m.group("file")) if m else "?"] += n
        for f in set(frames):
            incl[f] += n

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, 100.0 * v / total) for k, v in c.most_common(top)] if total else []

    return {
        "samples": total,
        "self": pct(self_counts),
        "inclusive": pct(incl),
        "packages": pct(packages),
    }


def format_summary(title: str, s: dict[str, Any]) -> str:
    lines = [f"{title}: {s['samples']} samples"]
    for key, label in (
        ("packages", "self time by package"),
        ("self", "top self"),
        ("inclusive", "top inclusive"),
    ):
        lines.append(f"  {label}:")
        lines += [f"    {p:5.1f}%  {name[:150]}" for name, p in s[key]]
    return "\n".join(lines)
