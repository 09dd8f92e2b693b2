"""`scim-service serve` with several worker processes (SCIM_WORKERS > 1, the default on a
machine with more than one CPU).

The supervisor (this process) does what must happen once: bind the listening sockets (a port
in use is reported before anything starts), start the embedded PostgreSQL when no database is
configured, apply migrations, create the first organization on an embedded database. Then it
starts, each as a fresh interpreter (`python -m scim_service.worker`):

- N request workers: the SCIM and admin APIs, each with its own event loop, pool, token cache
  and LISTEN connection. Each has a socket of its own bound to the same port with
  SO_REUSEPORT, so the kernel spreads new connections evenly over them (one shared socket would
  let the first worker to wake accept a whole burst of keep-alive connections). The supervisor
  keeps its copy of every socket, so connections that arrive while a worker is replaced wait in
  that socket's queue for the replacement instead of being refused;
- one publisher process (when SCIM_PUBLISHER_ENABLED), so deliveries never compete with
  requests for one event loop.

Metrics: every child writes its counters to files in a directory of the supervisor's
(prometheus-client's multiprocess mode); whichever worker answers a scrape reports the sum.

Signals: SIGTERM or SIGINT is passed to every child, which drains as a single process does
(/readyz 503, drain delay, in-flight requests finish); the supervisor exits 0 once all have
exited cleanly. A child that dies is logged and replaced; when a child dies before serving (or
within `_STARTUP_WINDOW` seconds of it) `_MAX_FAILED_STARTS` times in a row, the supervisor stops
the others and exits 1. Children are bound to the supervisor's life: if it is killed, the
kernel kills them (PR_SET_PDEATHSIG), as a container runtime kills a pod's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from scim_service.config import Settings, StartupError
from scim_service.logs import get_logger
from scim_service.metrics import ENV_HEARTBEAT_FILE
from scim_service.restarts import Restarts
from scim_service.server import (
    announce_first_run,
    bind_metrics_socket,
    listen_socket,
    start_embedded,
)

log = get_logger("scim_service.supervisor")

PUBLISHER_SLOT = "publisher"
# Environment a child reads (scim_service/worker.py).
ENV_WORKER = "SCIM_WORKER_ID"
ENV_FDS = "SCIM_WORKER_FDS"  # "<ready pipe>,<main socket or ->,<metrics socket or ->"
ENV_PARENT = "SCIM_SUPERVISOR_PID"
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"

_MAX_FAILED_STARTS = 3  # consecutive, per slot
_STARTUP_WINDOW = 10.0  # seconds after its start a death still counts as a failed start
_STOP_MARGIN = 10.0  # seconds past drain delay + grace before stragglers get SIGKILL


class _Relay:
    """Copies a child's stdout or stderr to ours a whole line at a time: lines from several
    processes writing straight to one pipe could interleave (a write is atomic only up to
    PIPE_BUF, and an unbuffered interpreter writes a line and its newline apart), and log
    pipelines parse every line as one JSON object."""

    _MAX_PARTIAL = 1 << 20  # a "line" longer than this is passed on in pieces

    def __init__(self, fd: int, out: BinaryIO) -> None:
        self.fd = fd
        self.out = out
        self.partial = b""
        os.set_blocking(fd, False)

    def readable(self) -> bool:
        """Copy what is there; False at end of file."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                self.finish()
                return False
            data = self.partial + data
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < self._MAX_PARTIAL:
                self.partial = data
                continue
            whole, self.partial = (data, b"") if cut == 0 else (data[:cut], data[cut:])
            self._write(whole)

    def finish(self) -> None:
        if self.partial:
            self._write(self.partial + b"\n")
            self.partial = b""

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(data)
            self.out.flush()


@dataclass
class _Child:
    slot: str
    sock: socket.socket | None
    proc: subprocess.Popen[bytes] | None = None
    ready_at: float | None = None
    failures: int = 0
    stalled: bool = False  # killed by watch_publisher (its heartbeat stopped)
    fds: list[int] = field(default_factory=list)  # this incarnation's pipe and pidfd
    relays: list[_Relay] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        children: list[_Child],
        metrics_sock: socket.socket | None,
        env: dict[str, str],
    ) -> None:
        self.settings = settings
        self.children = children
        self.metrics_sock = metrics_sock
        self.env = env
        self.stopping = False
        self.exit_code = 0
        self.done = asyncio.Event()
        self.started_logged = False
        self.loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Task[None]] = set()
        self.restarts = Restarts(env.get(ENV_METRICS_DIR))

    # --- children ------------------------------------------------------------------------
    def spawn(self, child: _Child) -> None:
        if self.stopping:
            return
        ready_r, ready_w = os.pipe()
        passed = [ready_w]
        main = "-" if child.sock is None else str(child.sock.fileno())
        metrics = "-"
        if child.sock is not None:
            passed.append(child.sock.fileno())
            if self.metrics_sock is not None:
                metrics = str(self.metrics_sock.fileno())
                passed.append(self.metrics_sock.fileno())
        beat = self._heartbeat_file(child)
        if beat is not None:
            with contextlib.suppress(OSError):
                beat.unlink()
        env = {
            **self.env,
            **({ENV_HEARTBEAT_FILE: str(beat)} if beat is not None else {}),
            ENV_WORKER: child.slot,
            ENV_FDS: f"{ready_w},{main},{metrics}",
            ENV_PARENT: str(os.getpid()),
        }
        try:
            proc = self._popen(child, env, passed)
        except OSError as exc:  # out of processes or file descriptors: a failed start
            log.error("worker_spawn_failed", slot=child.slot, error=f"{type(exc).__name__}: {exc}")
            os.close(ready_r)
            self._failed_start(child)
            return
        finally:
            os.close(ready_w)
        assert proc.stdout is not None and proc.stderr is not None
        child.relays = [
            _Relay(proc.stdout.fileno(), sys.stdout.buffer),
            _Relay(proc.stderr.fileno(), sys.stderr.buffer),
        ]
        for relay in child.relays:
            self.loop.add_reader(relay.fd, self._on_output, relay)
        child.proc = proc
        child.ready_at = None
        child.stalled = False
        self.loop.add_reader(ready_r, self._on_ready, child, ready_r)
        child.fds = [ready_r]
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # pragma: no cover - kernels before 5.3
            self._waiters.add(self.loop.create_task(self._wait_exit(child, proc)))
        else:
            child.fds.append(pidfd)
            self.loop.add_reader(pidfd, self._on_exit, child, proc)
        log.info("worker_spawned", slot=child.slot, pid=proc.pid)

    def _heartbeat_file(self, child: _Child) -> Path | None:
        """The file the publisher process touches as its claim loops go round."""
        folder = self.env.get(ENV_METRICS_DIR)
        if child.slot != PUBLISHER_SLOT or folder is None:
            return None
        return Path(folder) / "publisher.heartbeat"

    def watch_publisher(self) -> None:
        """Every second: kill a publisher process whose heartbeat stopped (SIGSTOPped,
        wedged); `_on_exit` replaces it like any dead child."""
        if self.stopping:
            return
        self.loop.call_later(1.0, self.watch_publisher)
        stall = self.settings.publisher_stall_seconds
        now = time.monotonic()
        for child in self.children:
            beat = self._heartbeat_file(child)
            if beat is None or child.proc is None or child.ready_at is None:
                continue
            try:
                silent = time.time() - beat.stat().st_mtime
            except OSError:  # no beat yet: count from when it said it was ready
                silent = now - child.ready_at
            if silent > stall and now - child.ready_at > stall:
                log.error(
                    "publisher_stalled",
                    slot=child.slot,
                    pid=child.proc.pid,
                    silent_seconds=round(silent, 1),
                    stall_seconds=stall,
                    message="the publisher's claim loops stopped going round: replacing it",
                )
                with contextlib.suppress(OSError):
                    child.proc.kill()  # SIGKILL: a stopped process cannot handle SIGTERM
                child.ready_at = None  # killed once; the replacement starts the clock again
                child.stalled = True

    @staticmethod
    def _popen(child: _Child, env: dict[str, str], passed: list[int]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - our own interpreter, module and slot
            [sys.executable, "-m", "scim_service.worker", child.slot],
            env=env,
            pass_fds=passed,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _on_output(self, relay: _Relay) -> None:
        if not relay.readable():
            self.loop.remove_reader(relay.fd)

    def _on_ready(self, child: _Child, fd: int) -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if data:
            child.ready_at = time.monotonic()
            self._maybe_started()
        else:  # the child closed it (it is serving, or it died): nothing more will come
            self.loop.remove_reader(fd)

    async def _wait_exit(
        self, child: _Child, proc: subprocess.Popen[bytes]
    ) -> None:  # pragma: no cover - only without pidfd_open (Linux before 5.3)
        await asyncio.to_thread(proc.wait)
        self._on_exit(child, proc)

    def _on_exit(self, child: _Child, proc: subprocess.Popen[bytes]) -> None:
        code = proc.poll()
        if code is None:  # woken early; the pidfd stays readable until it is reaped
            return
        for fd in child.fds:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        child.fds = []
        for relay in child.relays:  # what it wrote before dying, to the last line
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(relay.fd)
            relay.readable()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        child.relays = []
        child.proc = None
        _forget_metrics(self.env.get(ENV_METRICS_DIR), proc.pid)
        how = {"exit_code": code} if code >= 0 else {"signal": signal.Signals(-code).name}
        if self.stopping:
            # A worker still starting has no SIGTERM handler yet: the signal we sent ends it
            # before it served anything, which is a clean stop, not a failure.
            before_start = code == -signal.SIGTERM and child.ready_at is None
            log.info(
                "worker_exited", slot=child.slot, pid=proc.pid, before_start=before_start, **how
            )
            if code != 0 and not before_start:
                self.exit_code = 1
            if all(c.proc is None for c in self.children):
                self.done.set()
            return
        now = time.monotonic()
        failed = child.ready_at is None or now - child.ready_at < _STARTUP_WINDOW
        log.error(
            "worker_died",
            slot=child.slot,
            pid=proc.pid,
            served=child.ready_at is not None,
            failed_starts=child.failures + 1 if failed else 0,
            **how,
        )
        kind = "publisher" if child.slot == PUBLISHER_SLOT else "worker"
        reason = "stalled" if child.stalled else "failed_start" if failed else "exited"
        self.restarts.count(kind, reason)
        if failed:  # it never served, or died right after it started to
            self._failed_start(child)
        else:
            child.failures = 0
            self.loop.call_later(0.25, self.spawn, child)

    def _failed_start(self, child: _Child) -> None:
        child.failures += 1
        if child.failures >= _MAX_FAILED_STARTS:
            log.error(
                "workers_keep_dying",
                slot=child.slot,
                failed_starts=child.failures,
                message=f"worker {child.slot} died {child.failures} times at start; stopping",
            )
            self.exit_code = 1
            self.stop()
            return
        delay = min(5.0, 0.25 * 2**child.failures)
        self.loop.call_later(delay, self.spawn, child)

    def _maybe_started(self) -> None:
        if self.started_logged or not all(c.ready_at is not None for c in self.children):
            return
        self.started_logged = True
        s = self.settings
        log.info(
            "server_started",
            role="serve",
            url=s.public_url,
            scim_base_url=s.scim_base_url,
            sinks=list(s.sinks) if s.publisher_enabled else [],
            metrics_port=s.metrics_port,
            workers=sum(1 for c in self.children if c.slot != PUBLISHER_SLOT),
            publisher_process=any(c.slot == PUBLISHER_SLOT for c in self.children),
        )

    # --- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        s = self.settings
        log.info(
            "server_stopping",
            drain_delay_seconds=s.shutdown_drain_delay,
            grace_seconds=s.shutdown_grace,
        )
        for child in self.children:
            if child.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        # The workers keep serving on their copies for the drain delay, then close them: with
        # ours closed too, the port refuses new connections from then on, as one process does.
        for child in self.children:
            if child.sock is not None:
                child.sock.close()
        if self.metrics_sock is not None:
            self.metrics_sock.close()
        if all(c.proc is None for c in self.children):
            self.done.set()
        self.loop.call_later(
            s.shutdown_drain_delay + s.shutdown_grace + _STOP_MARGIN, self._kill_stragglers
        )

    def _kill_stragglers(self) -> None:
        for child in self.children:
            if child.proc is not None:
                log.error("worker_stop_timeout", slot=child.slot, pid=child.proc.pid)
                self.exit_code = 1
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()


async def supervise(settings: Settings) -> int:
    """Run `serve` as a supervisor of `settings.worker_count` request workers (and a publisher
    process); returns the exit status."""
    workers = settings.worker_count
    async with contextlib.AsyncExitStack() as stack:
        socks = reuseport_sockets(settings.host, settings.port, workers)
        for s in socks:
            stack.callback(s.close)
        metrics_sock = bind_metrics_socket(settings)
        if metrics_sock is not None:
            stack.callback(metrics_sock.close)
        env = dict(os.environ)
        if settings.database_url is None:
            settings = await start_embedded(settings, stack)
            assert settings.database_url is not None
            env["DATABASE_URL"] = settings.database_url
            embedded = True
        else:
            embedded = False
        await _prepare_database(settings, embedded)

        _remove_stale_metric_dirs()
        metrics_dir = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
        stack.callback(shutil.rmtree, metrics_dir, True)
        env[ENV_METRICS_DIR] = metrics_dir
        env["SCIM_MIGRATE_ON_START"] = "false"  # done above, once

        children = [_Child(str(i), sock) for i, sock in enumerate(socks, start=1)]
        if settings.publisher_enabled:
            children.append(_Child(PUBLISHER_SLOT, None))
        supervisor = Supervisor(settings, children, metrics_sock, env)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, supervisor.stop)
        try:
            for child in children:
                supervisor.spawn(child)
            supervisor.watch_publisher()
            await supervisor.done.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for child in children:  # only after an error of ours: never leave children behind
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.kill()
                    child.proc.wait()
    log.info("server_stopped", exit_code=supervisor.exit_code)
    return supervisor.exit_code


def reuseport_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port (SO_REUSEPORT). First a plain bind, so a port that
    anything else holds (another scim-service included) is reported, not silently shared."""
    what = "SCIM_HOST/SCIM_PORT"
    listen_socket(host, port, what).close()
    out: list[socket.socket] = []
    try:
        for _ in range(count):
            out.append(listen_socket(host, port, what, reuse_port=True))
            port = out[0].getsockname()[1]  # port 0: the first chose one, the others join it
    except StartupError:
        for sock in out:
            sock.close()
        raise
    return out


async def _prepare_database(settings: Settings, embedded: bool) -> None:
    """What must happen once, before any worker: migrations, the embedded first-run token."""
    from scim_service.app import connect_or_fail
    from scim_service.store import migrate

    one = msgspec.structs.replace(settings, db_pool_min=1, db_pool_max=1)
    pool = await connect_or_fail(one)
    try:
        async with pool.acquire() as conn:
            if settings.migrate_on_start:
                await migrate.migrate(conn)
            if embedded:
                await announce_first_run(settings, conn)
    finally:
        await pool.close()


_METRICS_PREFIX = "scim-metrics-"


def _remove_stale_metric_dirs() -> None:
    """Metric directories of supervisors that were killed (no cleanup ran): removed."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{_METRICS_PREFIX}*-*"):
        pid = path.name[len(_METRICS_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _forget_metrics(path: str | None, pid: int) -> None:
    """A child is gone: its live gauges (pool size, loop lag) stop counting; its counters stay
    in the sum (a counter never goes down because a worker was replaced)."""
    if path is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
