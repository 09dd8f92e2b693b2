"""Real processes and real faults for tests/processes/test_faults.py.

- `PgServer`: a PostgreSQL of the test's own (initdb in a temporary directory, a free port on
  127.0.0.1), so it can be restarted (`-m fast`, `-m immediate`) without touching the machine's.
- `NatsServer`: a `nats-server -js` of the test's own, restarted with SIGTERM or SIGKILL.
- `Receiver`: a webhook endpoint verifying every request with the `standardwebhooks` package;
  its mode decides the answer (ok, 500, refuse connections, slow).
- `Service`: `scim-service serve` / `publisher` processes, killed with SIGKILL and restarted.
- `Load`: SCIM writes at a fixed rate, bounded in count and time, and the ledger of what was
  acknowledged: every 2xx is a resource version that must exist and an event that must arrive.
- `Report`: what reached the sinks against the database and the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from standardwebhooks import Webhook

from tests.conftest import REPO
from tests.support import PATCH_OP, free_port, wait_ready

# --- PostgreSQL ------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian's layout, else PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PgServer:
    """initdb + pg_ctl in a temporary directory; as root, the server runs as `postgres`."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scim-fault-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")

    def restart(self, mode: str) -> None:
        # -l again: without it the new postmaster would write to (and hold open) our pipe.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "restart")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


# --- NATS ------------------------------------------------------------------------------------------


def nats_binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
    )


class NatsServer:
    def __init__(self) -> None:
        binary = nats_binary()
        if binary is None:
            raise RuntimeError("no nats-server on this machine")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="scim-fault-nats-"))
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.dir)]
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None

    def destroy(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def messages(self, stream: str = "SCIM_EVENTS") -> list[dict[str, Any]]:
        """Every message of the stream, in stream order: (Nats-Msg-Id, event)."""
        import nats

        nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            out: list[dict[str, Any]] = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                with contextlib.suppress(Exception):  # a deleted sequence: none here, but safe
                    msg = await js.get_msg(stream, seq)
                    out.append(
                        {
                            "msg_id": (msg.headers or {}).get("Nats-Msg-Id"),
                            "event": json.loads(msg.data or b"{}"),
                        }
                    )
            return out
        finally:
            await nc.close()


# --- the webhook receiver -------------------------------------------------------------------------


class Receiver:
    """Records every verified delivery; `mode` is "ok", "fail" (500), "slow" (answers 200 after
    `slow_seconds`) or "refuse" (nothing listens)."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.mode = "ok"
        self.slow_seconds = 2.0
        self.accepted: list[dict[str, Any]] = []  # answered 2xx, in arrival order
        self.attempts = 0
        self.bad_signatures = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        try:
            event = self.webhook.verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.mode == "fail":
            return web.Response(status=500)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        self.accepted.append(
            {"id": request.headers["webhook-id"], "event": event, "at": time.monotonic()}
        )
        return web.Response(status=204)

    async def start(self) -> None:
        if self._runner is None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
            await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def refuse(self) -> None:
        """Stop listening: connections are refused until `start()`."""
        self.mode = "refuse"
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --- scim-service processes -------------------------------------------------------------------------


class Service:
    """One `scim-service` process (serve or publisher) that can be killed and started again."""

    def __init__(self, role: str, env: dict[str, str], logdir: Path, name: str) -> None:
        self.role = role
        self.port = int(env["SCIM_PORT"])
        self.env = env
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scim_service", self.role],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    async def ready(self, timeout: float = 30) -> None:
        await wait_ready(
            self.base,
            timeout,
            exited=lambda: self.proc is not None and self.proc.poll() is not None,
            what=self.role,
            log=self.tail,
            interval=0.05,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return []


# --- the load and its ledger -------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients were told: each acknowledged (2xx) write, as resource versions."""

    acknowledged: dict[tuple[str, int], str] = field(default_factory=dict)  # (id, version) → type
    users: dict[str, int] = field(default_factory=dict)  # id → highest acknowledged version
    statuses: Counter[int] = field(default_factory=Counter)
    no_answer: int = 0  # connection refused or reset (a killed serve), timeouts
    retry_after_missing: int = 0  # 503/429 answers without Retry-After
    bad_bodies: int = 0  # error answers that are not SCIM error bodies

    def five_xx_other_than_503(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 and s != 503)


class Load:
    """SCIM writes at `rate` per second for `seconds` (so at most rate x seconds of them):
    creates (`user.provisioned`) and PATCHes of acknowledged users (`user.updated`)."""

    def __init__(self, base: str, token: str, rate: float, seconds: float) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rate = rate
        self.seconds = seconds
        self.ledger = Ledger()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> Ledger:
        timeout = aiohttp.ClientTimeout(total=15)
        count = int(self.rate * self.seconds)
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for i in range(count):
                due = started + i / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                task = asyncio.create_task(self._one(session, i))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=30)
        return self.ledger

    async def _one(self, session: aiohttp.ClientSession, i: int) -> None:
        ledger = self.ledger
        users = list(ledger.users)
        patch = bool(users) and i % 3 != 0
        try:
            if patch:
                uid = random.choice(users)
                resp_ctx = session.patch(
                    f"{self.base}/scim/v2/Users/{uid}",
                    json={
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "path": "displayName", "value": f"n{i}"}],
                    },
                    headers=self.headers,
                )
                kind = "user.updated"
            else:
                resp_ctx = session.post(
                    f"{self.base}/scim/v2/Users",
                    json={"userName": f"u{i}-{uuid.uuid4().hex[:8]}@example.com"},
                    headers=self.headers,
                )
                kind = "user.provisioned"
            async with resp_ctx as resp:
                status = resp.status
                body = await resp.read()
                headers = resp.headers
        except (aiohttp.ClientError, OSError, TimeoutError):
            ledger.no_answer += 1
            return
        ledger.statuses[status] += 1
        if status in (429, 503) and "Retry-After" not in headers:
            ledger.retry_after_missing += 1
        if status >= 400:
            try:
                doc = json.loads(body)
                ok = doc.get("status") == str(status) and "schemas" in doc
            except ValueError:
                ok = False
            ledger.bad_bodies += 0 if ok else 1
            return
        doc = json.loads(body)
        version = int(headers["ETag"].split('"')[1])
        uid = doc["id"]
        ledger.acknowledged[(uid, version)] = kind
        ledger.users[uid] = max(version, ledger.users.get(uid, 0))


# --- the verdict ------------------------------------------------------------------------------------


@dataclass
class SinkReport:
    received: int = 0  # deliveries, duplicates included
    distinct: int = 0
    duplicates: int = 0  # the same id again
    new_id_duplicates: int = 0  # one (subject, version) under two ids: never allowed
    missing_expected: int = 0  # acknowledged by the API, not received
    missing_committed: int = 0  # in the database's event log, not received
    order_violations: int = 0  # per subject, a first arrival older than one before it


def judge_sink(
    deliveries: list[tuple[str, dict[str, Any]]],
    committed: dict[tuple[str, int], str],
    ledger: Ledger,
) -> SinkReport:
    """`deliveries`: (event id, event) in arrival order. `committed`: (subject, version) → id
    for every event the database holds."""
    report = SinkReport(received=len(deliveries))
    ids_of: dict[tuple[str, int], set[str]] = {}
    seen: set[str] = set()
    last: dict[str, int] = {}
    for event_id, event in deliveries:
        key = (event["subject"], int(event["resourceversion"]))
        ids_of.setdefault(key, set()).add(event_id)
        if event_id in seen:
            report.duplicates += 1
            continue
        seen.add(event_id)
        if key[1] <= last.get(key[0], 0):
            report.order_violations += 1
        last[key[0]] = max(key[1], last.get(key[0], 0))
    report.distinct = len(seen)
    report.new_id_duplicates = sum(1 for ids in ids_of.values() if len(ids) > 1)
    report.new_id_duplicates += sum(
        1 for key, ids in ids_of.items() if key in committed and committed[key] not in ids
    )
    report.missing_expected = sum(1 for key in ledger.acknowledged if key not in ids_of)
    report.missing_committed = sum(1 for key in committed if key not in ids_of)
    return report


async def committed_events(dsn: str) -> dict[tuple[str, int], str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT subject, resource_version, id FROM events")
    finally:
        await conn.close()
    return {(str(r["subject"]), r["resource_version"]): str(r["id"]) for r in rows}


async def missing_writes(dsn: str, ledger: Ledger) -> int:
    """Acknowledged users absent from the database, or older there than acknowledged."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text, version FROM users WHERE id = ANY($1::uuid[])", list(ledger.users)
        )
    finally:
        await conn.close()
    stored = {r["id"]: r["version"] for r in rows}
    return sum(1 for uid, v in ledger.users.items() if stored.get(uid, 0) < v)
