"""Starting scim-service processes (serve, publisher) and its CLI, for one bench database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procs

BIN = Path(sys.executable).parent
SCIM = BIN / "scim-service"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Service:
    proc: procs.Proc
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def env(dsn: str, **extra: str) -> dict[str, str]:
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCIM_") and k not in ("DATABASE_URL",)
    }
    out.update(
        DATABASE_URL=dsn,
        SCIM_LOG_LEVEL="warning",
        SCIM_LOG_FORMAT="json",
        SCIM_HOST="127.0.0.1",
    )
    out.update(extra)
    return out


def cli(dsn: str, *args: str) -> Any:
    """Run `scim-service ARGS --json` and return its JSON output."""
    proc = subprocess.run(  # noqa: S603
        [str(SCIM), *args, "--json"],
        env=env(dsn),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scim-service {' '.join(args)} failed: {proc.stderr or proc.stdout}")
    return json.loads(proc.stdout)


def start(
    name: str, dsn: str, logdir: Path, *, role: str = "serve", timeout: float = 60, **extra: str
) -> Service:
    port = procs.free_port()
    proc = procs.start(
        name,
        [str(SCIM), role],
        env=env(dsn, SCIM_PORT=str(port), **extra),
        log=logdir / f"{name}.log",
        cwd=ROOT,
    )
    service = Service(proc, port)
    procs.wait_http(f"{service.base}/readyz", proc, timeout)
    return service
