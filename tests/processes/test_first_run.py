"""`scim-service serve` with no DATABASE_URL: the embedded default, end to end, as a process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support import free_port, service_env

pytestmark = pytest.mark.slow


def get(url: str, token: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = service_env(SCIM_DATA_DIR=str(data_dir), SCIM_PORT=str(port))
    return subprocess.Popen(
        [sys.executable, "-m", "scim_service", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("never saw " + marker + " in:\n" + "".join(seen))


def postgres_running_for(pgdata: Path) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return any("postgres" in line and str(pgdata) in line for line in out.splitlines())


def test_first_run_prints_url_and_token_then_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    proc = start(data_dir, port)
    try:
        out = read_until(proc, "server_started")
        base = re.search(r"SCIM Base URL:\s+(\S+)", out)
        token = re.search(r"Token:\s+(scim_\S+)", out)
        assert base and token, out
        assert base.group(1) == f"http://127.0.0.1:{port}/scim/v2"
        assert get(f"{base.group(1)}/ServiceProviderConfig", token.group(1)) == 200
        assert get(f"{base.group(1)}/ServiceProviderConfig", "scim_wrong") == 401
        assert token.group(1) not in out.replace(f"Token:          {token.group(1)}", ""), (
            "the token is printed once, and not logged"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "server_stopped" in rest
    assert not postgres_running_for(data_dir / "pg"), "no stray postgres after Ctrl-C"

    # A second run reuses the data: no new organization, no new token, the old token works.
    proc = start(data_dir, port)
    try:
        out = read_until(proc, "server_started")
        assert "Token:" not in out
        assert f"http://127.0.0.1:{port}/scim/v2" in out
        assert get(f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig", token.group(1)) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not postgres_running_for(data_dir / "pg")
