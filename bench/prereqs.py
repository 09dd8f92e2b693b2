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
DJANGO_VENV = HERE / ".venv-django"
DJANGO_REQS = HERE / "requirements-django-peer.txt"


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
    """bench/.venv-peer with exactly requirements-peer.txt (scim2-server)."""
    return ensure_venv(PEER_VENV, PEER_REQS, "scim2-server 0.8.3")


def ensure_django_venv() -> Path:
    """bench/.venv-django with exactly requirements-django-peer.txt (django-scim2)."""
    return ensure_venv(DJANGO_VENV, DJANGO_REQS, "django-scim2 0.23.0")


def ensure_venv(venv: Path, reqs: Path, what: str) -> Path:
    """`venv` with exactly the pinned `reqs` (no dependency resolution: every package is
    listed), rebuilt when the file changes; returns its python."""
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(reqs.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    say(f"  creating the peer's virtual environment bench/{venv.name} ({what})")
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    steps = [
        [base, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
            str(reqs),
        ],
        [str(python), "-m", "pip", "check"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise Failure(
                f"could not build the peer environment bench/{venv.name} "
                f"({' '.join(cmd[:4])} ...):\n{(proc.stderr or proc.stdout)[-2000:]}"
            )
    stamp.write_text(digest)
    return python


# --- helpers -----------------------------------------------------------------------------------
