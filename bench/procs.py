"""Child processes the benchmark starts, and their cleanup on every way out (normal end,
an error, Ctrl-C, SIGTERM). Servers run in their own session so a Ctrl-C reaches the runner
first, which then stops them in reverse order: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


_RUNNING: list[Proc] = []


def start(name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("wb")
    popen = subprocess.Popen(  # noqa: S603 - our own commands
        argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()
    proc = Proc(name, popen, log)
    _RUNNING.append(proc)
    return proc


def stop(proc: Proc, grace: float = 10.0) -> int | None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; return the exit status."""
    if proc in _RUNNING:
        _RUNNING.remove(proc)
    if proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=5)
    return proc.popen.returncode


def stop_all() -> None:
    for proc in reversed(list(_RUNNING)):
        with contextlib.suppress(Exception):
            stop(proc, grace=8.0)


def install_signal_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind through `finally`, which stops everything. SIGINT is
    set explicitly too: a shell starts background jobs with it ignored."""

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_http(url: str, proc: Proc, timeout: float, headers: dict[str, str] | None = None) -> None:
    """Poll `url` until it answers 2xx; fail early if the process died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with status {proc.popen.returncode}:\n{proc.tail()}"
            )
        try:
            req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
            with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f}s ({last})")


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS from /proc/<pid>/status, in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def tree_memory_kb(root: int) -> dict[str, int]:
    """Peak RSS of a process tree (a pre-forking server: parent, workers, publisher): VmHWM is
    the largest single process's, VmHWM_sum and VmRSS_sum add all of them up."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    each = [m for m in (memory_kb(pid) for pid in pids) if m]
    if not each:
        return {}
    return {
        "VmHWM": max(m.get("VmHWM", 0) for m in each),
        "VmHWM_sum": sum(m.get("VmHWM", 0) for m in each),
        "VmRSS_sum": sum(m.get("VmRSS", 0) for m in each),
        "processes": len(each),
    }


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)
