"""Prerequisites: the load generators (Debian packages) and the peer's own environment."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import HERE, Failure, say

PEER_VENV = HERE / ".venv-peer"
PEER_REQS = HERE / "requirements-peer.txt"


def ensure_tool(name: str, apt_package: str, allow_apt: bool) -> None:
    if shutil.which(name):
        return
    if allow_apt and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"  {name} is missing: installing Debian package {apt_package} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", apt_package]
        ok = subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0  # noqa: S603
        if not ok:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)  # noqa: S607
            subprocess.run(cmd, env=env, capture_output=True, check=False)  # noqa: S603
        if shutil.which(name):
            return
    raise Failure(
        f"`{name}` is required and was not found. Install it (Debian/Ubuntu: "
        f"apt-get install {apt_package}), or run as root with apt-get available so the "
        "benchmark installs it (BENCH_NO_APT=1 forbids that)."
    )


def ensure_peer_venv() -> Path:
    """bench/.venv-peer with exactly requirements-peer.txt, rebuilt when the file changes."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".requirements.sha256"
    digest = hashlib.sha256(PEER_REQS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    say("  creating the peer's virtual environment bench/.venv-peer (scim2-server 0.8.3)")
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    steps = [
        [base, "-m", "venv", str(PEER_VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
            str(PEER_REQS),
        ],
        [str(python), "-m", "pip", "check"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise Failure(
                f"could not build the peer environment ({' '.join(cmd[:4])} ...):\n"
                f"{(proc.stderr or proc.stdout)[-2000:]}"
            )
    stamp.write_text(digest)
    return python


# --- helpers -----------------------------------------------------------------------------------
