"""`serve` with several worker processes (SCIM_WORKERS), as real processes: one port spread over
the workers, one scrape that counts them all, the publisher apart, replaced workers, a
supervisor that gives up on workers that keep dying, and workers that die with it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scim_service.config import Settings, available_cpus, load_settings
from tests.conftest import REPO, Tenant
from tests.support import free_port, refused, service_env, start, wait_ready

pytestmark = pytest.mark.slow

ROUTE = {"name": "scim_http_requests_total", "method": "GET", "route": "/scim/v2/Users"}
ROUTE |= {"status": "200"}
RESTARTS = "scim_worker_restarts_total"


class Service:
    """A running `serve` (the supervisor) whose JSON log lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, base: str) -> None:
        self.proc = proc
        self.base = base
        self.lines: list[dict[str, object]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            text = raw.decode(errors="replace").strip()
            if text:
                self.lines.append(json.loads(text))  # every line is JSON, from every process

    def events(self, name: str, **fields: object) -> list[dict[str, object]]:
        return [
            e
            for e in self.lines
            if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
        ]

    async def until(self, what: str, check: object, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    def children(self) -> dict[str, int]:
        """slot -> pid of the live workers, read from the supervisor's own spawn log."""
        alive: dict[str, int] = {}
        for e in self.lines:
            if e.get("event") == "worker_spawned":
                alive[str(e["slot"])] = int(e["pid"])  # type: ignore[call-overload]
        return {s: p for s, p in alive.items() if Path(f"/proc/{p}").exists()}

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self._reader, 5)
        return code


@contextlib.asynccontextmanager
async def supervised(database_url: str, **env: str) -> AsyncIterator[Service]:
    """`serve` with two workers and a publisher process, not yet ready; killed on the way out."""
    port = free_port()
    proc = await start(
        service_env(
            DATABASE_URL=database_url,
            SCIM_PORT=str(port),
            SCIM_WORKERS="2",
            SCIM_LOG_LEVEL="info",
            **env,
        )
    )
    try:
        yield Service(proc, f"http://127.0.0.1:{port}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def started(service: Service) -> None:
    await wait_ready(service.base)
    await service.until("server_started", lambda: service.events("server_started"))


@pytest.fixture(name="service")
async def fixture_service(database_url: str) -> AsyncIterator[Service]:
    async with supervised(database_url) as service:
        await started(service)
        yield service


async def fresh_get(url: str, headers: dict[str, str]) -> int:
    """One request on a connection of its own (the kernel picks the worker per connection)."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        await resp.read()
        return resp.status


async def scrape(base: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def counter(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a scrape (labels in any order); 0 when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def restarts(text: str, slot_kind: str) -> float:
    """scim_worker_restarts_total of one slot kind, summed over the reasons."""
    return sum(
        counter(text, RESTARTS, slot_kind=slot_kind, reason=r)
        for r in ("exited", "failed_start", "stalled")
    )


async def test_one_port_many_workers_one_sum(service: Service, tenant: Tenant) -> None:
    """Requests on 60 new connections are served by both workers; every scrape, whichever
    worker answers it, counts all 60; the publisher runs in its own process and delivers."""
    started = service.events("server_started")[0]
    assert started["workers"] == 2 and started["publisher_process"] is True
    slots = service.children()
    assert set(slots) == {"1", "2", "publisher"}
    assert len(set(slots.values())) == 3 and service.proc.pid not in slots.values()

    url = f"{service.base}/scim/v2/Users"
    statuses = await asyncio.gather(*(fresh_get(url, tenant.headers) for _ in range(60)))
    assert statuses == [200] * 60
    served = {
        e["worker"] for e in service.events("http_request", route="/scim/v2/Users", status=200)
    }
    assert served == {"1", "2"}, "the kernel spread the connections over both workers"
    for _ in range(6):  # six scrapes on new connections: both workers answer some
        assert counter(await scrape(service.base), **ROUTE) == 60

    text = await scrape(service.base)
    assert counter(text, "scim_db_pool_connections") >= 2, "both workers' pools are counted"
    assert "process_resident_memory_bytes" not in text, "per-process series are left out"

    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"userName": "apart@example.com"}, headers=tenant.headers) as resp,
    ):
        assert resp.status == 201
        uid = (await resp.json(content_type=None))["id"]
    await service.until(
        "the user's event on stdout",
        lambda: any(
            e.get("type") == "user.provisioned" and e.get("subject") == uid for e in service.lines
        ),
    )
    assert [e["worker"] for e in service.events("publisher_started")] == ["publisher"]
    assert all(e["sinks"] == [] for e in service.events("worker_started", role="serve"))
    delivered = {"name": "scim_event_deliveries_total", "sink": "log", "outcome": "delivered"}
    # The line is written before the delivery is recorded and counted: wait for the count.
    deadline = time.monotonic() + 10
    while counter(await scrape(service.base), **delivered) < 1:
        assert time.monotonic() < deadline, "the publisher's delivery was never counted"
        await asyncio.sleep(0.1)
    for _ in range(4):  # the publisher process's counter, seen from either request worker
        assert counter(await scrape(service.base), **delivered) >= 1
    assert await service.stop() == 0
    assert service.events("server_stopped", exit_code=0)


async def test_a_killed_worker_is_replaced_and_nothing_is_refused(
    service: Service, tenant: Tenant
) -> None:
    url = f"{service.base}/scim/v2/Users"
    assert await asyncio.gather(*(fresh_get(url, tenant.headers) for _ in range(20))) == [200] * 20
    first = await scrape(service.base)
    before = counter(first, **ROUTE)
    assert restarts(first, "worker") == 0
    victim = service.children()["1"]
    os.kill(victim, signal.SIGKILL)
    # While slot 1 is replaced, connections the kernel gives its socket wait for the new worker.
    statuses = await asyncio.gather(*(fresh_get(url, tenant.headers) for _ in range(40)))
    assert statuses == [200] * 40
    await service.until(
        "a new worker 1",
        lambda: (
            service.children().get("1") not in (None, victim)
            and len(service.events("worker_started", worker="1")) == 2
        ),
    )
    died = service.events("worker_died", slot="1")
    assert died and died[0]["signal"] == "SIGKILL" and died[0]["pid"] == victim
    text = await scrape(service.base)
    after = counter(text, **ROUTE)
    assert after == before + 40, "the dead worker's counts stay in the sum"
    # Killed within SCIM's start-up window (10 s after it was ready): counted as failed_start.
    assert restarts(text, "worker") == 1 and restarts(text, "publisher") == 0
    assert await service.stop() == 0


async def test_revocation_reaches_every_workers_cache(
    service: Service, tenant: Tenant, database_url: str
) -> None:
    url = f"{service.base}/scim/v2/Users"
    assert await asyncio.gather(*(fresh_get(url, tenant.headers) for _ in range(30))) == [200] * 30
    served = {e["worker"] for e in service.events("http_request", status=200)}
    assert {"1", "2"} <= served, "both caches hold the token"
    revoke = subprocess.run(  # noqa: ASYNC221 - a short CLI call
        [sys.executable, "-m", "scim_service", "token", "revoke", str(tenant.token_id)],
        env=service_env(DATABASE_URL=database_url),
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    deadline = time.monotonic() + 5
    while True:
        statuses = await asyncio.gather(*(fresh_get(url, tenant.headers) for _ in range(30)))
        if statuses == [401] * 30:
            break
        assert time.monotonic() < deadline, f"a worker still accepts the token: {statuses}"
        await asyncio.sleep(0.1)


async def test_killing_the_supervisor_kills_its_workers(service: Service) -> None:
    workers = service.children()
    assert len(workers) == 3
    service.proc.kill()
    await service.proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers.values()):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        await asyncio.sleep(0.05)
    assert await refused(service.base)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_workers_that_keep_dying_at_start_stop_the_supervisor(
    database_url: str, tmp_path: Path
) -> None:
    """A worker that cannot start (here: one whose interpreter exits at once, the supervisor
    untouched) is retried, then the supervisor stops the others and exits 1."""
    (tmp_path / "sitecustomize.py").write_text(
        "import os\nif os.environ.get('SCIM_WORKER_ID') == '2':\n    os._exit(3)\n"
    )
    port = free_port()
    proc = await start(
        service_env(
            DATABASE_URL=database_url,
            SCIM_PORT=str(port),
            SCIM_WORKERS="2",
            PYTHONPATH=str(tmp_path),
        )
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    died = [e for e in lines if e["event"] == "worker_died" and e["slot"] == "2"]
    assert [e["exit_code"] for e in died] == [3, 3, 3]
    assert any(e["event"] == "workers_keep_dying" for e in lines)
    assert any(e["event"] == "worker_exited" and e["slot"] == "1" for e in lines)
    assert await refused(f"http://127.0.0.1:{port}")


async def test_port_in_use_is_reported_before_any_worker_starts(database_url: str) -> None:
    port = free_port()
    holder = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        proc = await start(
            service_env(DATABASE_URL=database_url, SCIM_PORT=str(port), SCIM_WORKERS="2")
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        holder.close()
    assert proc.returncode == 1
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    assert [e["event"] for e in lines] == ["startup_failed"]
    assert "Address already in use" in str(lines[0]["message"])


# --- settings (no processes) -------------------------------------------------------------


def test_workers_setting() -> None:
    assert load_settings({"SCIM_WORKERS": "3"}).worker_count == 3
    assert load_settings({"SCIM_WORKERS": "auto"}).worker_count == available_cpus()
    assert load_settings({}).worker_count == available_cpus()
    for bad in ("0", "-1", "many"):
        with pytest.raises(Exception, match="SCIM_WORKERS"):
            load_settings({"SCIM_WORKERS": bad})


def test_cpus_honour_the_cgroup_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert available_cpus(v2) == affinity
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a CPU: one worker
    assert available_cpus(v2) == 1
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(v2) == min(affinity, 2)
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(v1) == affinity
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    assert available_cpus(v1) == 1
    assert available_cpus(tmp_path / "none") == affinity


def test_connections_add_up() -> None:
    """The arithmetic of deploy/kubernetes/configmap.yaml: 2 workers x (pool 5 + token-cache
    LISTEN + pull LISTEN) + the publisher process (1 LISTEN + 2 per sink x 2 sinks + its pool
    of 1) = 20."""
    s = Settings(
        workers=2,
        db_pool_max=5,
        webhook_url="http://127.0.0.1:1/x",
        nats_url="nats://127.0.0.1:4222",
    )
    assert s.database_connections == 2 * (5 + 1 + 1) + (1 + 2 * 2 + 1)
    one = Settings(workers=1, db_pool_max=5)
    assert one.database_connections == 5 + 1 + 1 + (1 + 2 * 1)


async def test_ctrl_c_reaches_every_process_and_all_exit_0(database_url: str) -> None:
    """Ctrl-C in a terminal signals the whole process group: the supervisor and every worker get
    SIGINT at once (then the workers SIGTERM from the supervisor too); all drain and exit 0."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_service",
        "serve",
        env=service_env(DATABASE_URL=database_url, SCIM_PORT=str(port), SCIM_WORKERS="2"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a shell job has
    )
    service = Service(proc, f"http://127.0.0.1:{port}")
    try:
        await wait_ready(service.base)
        await service.until("server_started", lambda: service.events("server_started"))
        os.killpg(proc.pid, signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await asyncio.wait_for(service._reader, 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    exits = {e["slot"]: e.get("exit_code") for e in service.events("worker_exited")}
    assert exits == {"1": 0, "2": 0, "publisher": 0}
    assert not [e for e in service.lines if e.get("level") == "error"]


async def test_sigterm_while_workers_start_is_a_clean_stop(database_url: str) -> None:
    """An orchestrator stops a pod that is still starting: SIGTERM reaches workers that have no
    handler yet. They served nothing, so the stop is clean (exit 0), not a worker failure."""
    async with supervised(database_url) as service:
        await service.until(
            "every worker spawned", lambda: len(service.events("worker_spawned")) == 3
        )
        assert not service.events("worker_started"), "SIGTERM must land before the workers are up"
        assert await service.stop() == 0, service.lines
    exits = service.events("worker_exited")
    assert len(exits) == 3
    assert any(e.get("before_start") for e in exits), exits
    assert not [e for e in service.lines if e.get("level") == "error"]


async def test_known_series_exist_before_any_traffic_with_workers(service: Service) -> None:
    """With several worker processes too, the first scrape has every series with known labels
    (zero-valued), deliveries included although no event was ever delivered."""
    from tests.integration.test_metrics import FRESH_SERIES

    text = await scrape(service.base)
    names = {
        (s.name, tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    for name, labels in FRESH_SERIES:
        assert (name, tuple(sorted(labels.items()))) in names, f"{name}{labels} missing"


async def test_a_stopped_publisher_is_reported_and_replaced(database_url: str) -> None:
    """A publisher process that stops (SIGSTOP: no crash, /healthz of the request workers still
    fine) stops beating; after SCIM_PUBLISHER_STALL_SECONDS the supervisor logs
    publisher_stalled, kills it, and a new publisher beats again."""
    async with supervised(
        database_url, SCIM_PUBLISHER_STALL_SECONDS="2", SCIM_PUBLISHER_POLL_INTERVAL="0.2"
    ) as service:
        await started(service)
        await asyncio.sleep(2.5)  # past the stall time: a beating publisher is left alone
        assert not service.events("publisher_stalled")
        victim = service.children()["publisher"]
        os.kill(victim, signal.SIGSTOP)
        stopped = time.monotonic()
        await service.until("publisher_stalled", lambda: service.events("publisher_stalled"), 15)
        reported = time.monotonic() - stopped
        stalled = service.events("publisher_stalled")[0]
        assert stalled["pid"] == victim and stalled["silent_seconds"] >= 2  # type: ignore[operator]
        await service.until(
            "a new publisher",
            lambda: service.children().get("publisher") not in (None, victim),
        )
        died = service.events("worker_died", slot="publisher")
        assert died and died[0]["signal"] == "SIGKILL"

        async def beating() -> bool:
            text = await scrape(service.base)
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "scim_publisher_heartbeat_timestamp_seconds":
                        return time.time() - s.value < 2
            return False

        deadline = time.monotonic() + 15
        while not await beating():
            assert time.monotonic() < deadline, "the new publisher does not beat"
            await asyncio.sleep(0.2)
        assert reported < 5, reported
        text = await scrape(service.base)
        assert counter(text, RESTARTS, slot_kind="publisher", reason="stalled") == 1
        assert restarts(text, "publisher") == 1 and restarts(text, "worker") == 0
        code = await service.stop()
        exits = [
            e
            for e in service.lines
            if e.get("event")
            in ("worker_exited", "worker_died", "worker_stop_timeout", "publisher_stalled")
        ]
        assert code == 0, exits
