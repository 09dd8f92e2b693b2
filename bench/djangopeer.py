"""The second peer, django-scim2 0.23.0 (bench/django_peer/), on its own database of the same
PostgreSQL: the durable Python peer beside the in-memory scim2-server.

Everything runs in bench/.venv-django (requirements-django-peer.txt): the preload script
(Django's migrations, then COPY of the data set, ANALYZE) and gunicorn. gunicorn runs `sync`
workers, as many as the CPUs our service gets (Settings.worker_count, the default of
SCIM_WORKERS): on this machine they served more than `gthread` (4 threads, keep-alive) at
c=1 and c=10 for GET /Users/{id} (250 vs 190 and 445 vs 340 req/s in a trial), since the
threads share one interpreter lock and a sync worker's only extra cost is a TCP connect per
request on the loopback.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from pathlib import Path

import procs
from common import HERE

PROJECT = HERE / "django_peer"


def env(dsn: str, token: str) -> dict[str, str]:
    """The peer's environment: its database, its token; none of the service's settings."""
    parts = urllib.parse.urlsplit(dsn)
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCIM_", "DJANGO_")) and k != "DATABASE_URL"
    }
    out.update(
        DJANGO_SETTINGS_MODULE="settings",
        PYTHONPATH=f"{PROJECT}{os.pathsep}{HERE}",
        BENCH_DJANGO_DB_NAME=parts.path.lstrip("/"),
        BENCH_DJANGO_DB_HOST=parts.hostname or "127.0.0.1",
        BENCH_DJANGO_DB_PORT=str(parts.port or 5432),
        BENCH_DJANGO_DB_USER=urllib.parse.unquote(parts.username or "postgres"),
        BENCH_DJANGO_DB_PASSWORD=urllib.parse.unquote(parts.password or ""),
        BENCH_DJANGO_TOKEN=token,
    )
    return out


def preload(
    python: Path, environ: dict[str, str], log: Path, *, start: int, end: int, big_group: int = 0
) -> subprocess.Popen[bytes]:
    """Start loading users start..end-1 (migrating first when start is 0; the groups too when
    big_group is set); the caller waits on the returned process."""
    argv = [str(python), str(PROJECT / "preload.py"), "--start", str(start), "--end", str(end)]
    if start == 0:
        argv.append("--migrate")
    if big_group:
        argv += ["--big-group", str(big_group)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own script
            argv, env=environ, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT
        )


def wait_preload(proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> str:
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"the django peer's preload took more than {timeout:.0f}s") from None
    text = log.read_text(errors="replace").strip().splitlines()
    if status != 0:
        raise RuntimeError(
            f"the django peer's preload failed ({status}):\n" + "\n".join(text[-15:])
        )
    return text[-1] if text else ""


def start(
    python: Path, environ: dict[str, str], log: Path, *, port: int, workers: int, name: str
) -> procs.Proc:
    gunicorn = python.parent / "gunicorn"
    return procs.start(
        name,
        [
            str(gunicorn),
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
            "wsgi:application",
        ],
        env=environ,
        log=log,
        cwd=PROJECT,
    )
