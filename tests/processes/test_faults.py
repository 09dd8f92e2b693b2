"""The delivery guarantee under real faults (issue 11): nothing acknowledged is lost, nothing is
duplicated under a new id, nothing is reordered per resource.

Each scenario runs `scim-service` as real processes against a PostgreSQL and a NATS server of
its own (so they can be killed and restarted), a webhook receiver that verifies every signature,
and a client-side ledger: every SCIM write answered 2xx is a resource version that must be in
the database and an event that must reach every sink. Load: about 30 writes/s, bounded in count
and time. The figures of each run are printed (`-s`) and written to `.fault-results/`; the
README's "Reliability" table holds those of one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from scim_service.provisioning import tenants
from scim_service.signing import generate_secret
from scim_service.store import migrate
from scim_service.store.db import connect
from tests.conftest import REPO
from tests.processes.faultkit import (
    Ledger,
    Load,
    NatsServer,
    PgServer,
    Receiver,
    Service,
    SinkReport,
    committed_events,
    judge_sink,
    missing_writes,
    nats_binary,
    pg_bindir,
)
from tests.support import free_port, service_env

pytestmark = [pytest.mark.slow]

RATE = 30.0  # writes per second
SECRET = generate_secret()
ADMIN = "fault-admin-token-0123456789"
RESULTS = REPO / ".fault-results"
DRAIN_BOUND = 60.0  # seconds after the last fault for every committed event to arrive


def _require(found: object, what: str) -> None:
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is needed for the fault suite and is missing")
        pytest.skip(f"{what} is not installed")


@pytest.fixture(name="pg", scope="module")
def fixture_pg() -> Any:
    _require(pg_bindir(), "PostgreSQL server binaries (initdb)")
    server = PgServer()
    server.init()
    yield server
    server.destroy()


@pytest.fixture(name="nats", scope="module")
def fixture_nats() -> Any:
    _require(nats_binary(), "nats-server")
    server = NatsServer()
    server.start()
    yield server
    server.destroy()


@dataclass
class Figures:
    scenario: str
    writes_acknowledged: int = 0
    events_expected: int = 0
    events_committed: int = 0
    http_503: int = 0
    http_5xx_other: int = 0
    no_answer: int = 0
    recovery_seconds: float = 0.0
    sinks: dict[str, SinkReport] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Cluster:
    """One scenario's world: a fresh database, an organization and token, a receiver, a NATS
    stream of its own, and the scim-service processes."""

    def __init__(self, pg: PgServer, nats: NatsServer, name: str, tmp: Path) -> None:
        self.pg = pg
        self.nats = nats
        self.name = name
        self.tmp = tmp
        self.stream = f"FAULT_{name.upper()}"
        self.receiver = Receiver(SECRET)
        self.dsn = ""
        self.token = ""
        self.services: list[Service] = []
        self.fault_end = 0.0

    async def setup(self) -> None:
        self.dsn = await self.pg.create_database(f"scim_{self.name}_{uuid.uuid4().hex[:6]}")
        conn = await connect(self.dsn)
        try:
            await migrate.migrate(conn)
            org = await tenants.create_org(conn, "fault-org")
            self.token = (await tenants.create_token(conn, org.id, description="load")).token
        finally:
            await conn.close()
        await self.receiver.start()

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(**(self._defaults() | extra))

    def _defaults(self) -> dict[str, str]:
        return dict(
            DATABASE_URL=self.dsn,
            SCIM_PORT=str(free_port()),
            SCIM_ADMIN_TOKEN=ADMIN,
            SCIM_MIGRATE_ON_START="false",
            SCIM_WEBHOOK_URL=self.receiver.url,
            SCIM_WEBHOOK_SECRET=SECRET,
            SCIM_WEBHOOK_TIMEOUT="3",
            SCIM_PUBLISHER_LEASE_SECONDS="8",
            SCIM_EVENTS_RETRY_SCHEDULE="0.2,0.5,1,2",
            SCIM_EVENTS_MAX_ATTEMPTS="1000",
            SCIM_PUBLISHER_POLL_INTERVAL="0.2",
            SCIM_NATS_URL=self.nats.url,
            SCIM_NATS_STREAM=self.stream,
            SCIM_NATS_SUBJECT_PREFIX=f"fault{self.name}",
            SCIM_SHUTDOWN_GRACE="2",
            SCIM_DB_CONNECT_TIMEOUT="20",
        )

    def service(self, role: str, name: str, **extra: str) -> Service:
        svc = Service(role, self.env(**extra), self.tmp, name)
        self.services.append(svc)
        return svc

    async def close(self) -> None:
        for svc in self.services:
            svc.terminate(timeout=10)
        await self.receiver.close()

    async def pending(self) -> int:
        conn = await asyncpg.connect(self.dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox"))
        finally:
            await conn.close()

    async def verdict(self, ledger: Ledger, figures: Figures) -> Figures:
        """Wait (bounded) until every committed event reached both sinks, then judge."""
        deadline = time.monotonic() + DRAIN_BOUND
        complete_at = None
        while time.monotonic() < deadline:
            committed = await committed_events(self.dsn)
            got = {
                (e["event"]["subject"], e["event"]["resourceversion"])
                for e in self.receiver.accepted
            }
            nats = await self.nats.messages(self.stream)
            got_nats = {(m["event"]["subject"], m["event"]["resourceversion"]) for m in nats}
            if set(committed) <= got and set(committed) <= got_nats and await self.pending() == 0:
                complete_at = time.monotonic()
                break
            await asyncio.sleep(0.5)
        committed = await committed_events(self.dsn)
        figures.writes_acknowledged = len(ledger.acknowledged)
        figures.events_expected = len(ledger.acknowledged)
        figures.events_committed = len(committed)
        figures.http_503 = ledger.statuses.get(503, 0)
        figures.http_5xx_other = ledger.five_xx_other_than_503()
        figures.no_answer = ledger.no_answer
        figures.recovery_seconds = round(
            (complete_at if complete_at is not None else float("inf")) - self.fault_end, 1
        )
        figures.sinks["webhook"] = judge_sink(
            [(e["id"], e["event"]) for e in self.receiver.accepted], committed, ledger
        )
        figures.sinks["nats"] = judge_sink(
            [(m["msg_id"], m["event"]) for m in await self.nats.messages(self.stream)],
            committed,
            ledger,
        )
        figures.extra["missing_writes"] = await missing_writes(self.dsn, ledger)
        figures.extra["statuses"] = dict(sorted(ledger.statuses.items()))
        figures.extra["retry_after_missing"] = ledger.retry_after_missing
        figures.extra["bad_error_bodies"] = ledger.bad_bodies
        figures.extra["bad_signatures"] = self.receiver.bad_signatures
        figures.extra["webhook_attempts"] = self.receiver.attempts
        figures.extra["non_json_log_lines"] = self._non_json_lines()
        _save(figures)
        return figures

    def _non_json_lines(self) -> list[str]:
        bad = []
        for svc in self.services:
            for line in svc.log_lines():
                try:
                    json.loads(line)
                except ValueError:
                    bad.append(f"{svc.log_path.name}: {line[:200]}")
        return bad[:10]


def _save(figures: Figures) -> None:
    RESULTS.mkdir(exist_ok=True)
    doc = asdict(figures)
    (RESULTS / f"{figures.scenario}.json").write_text(json.dumps(doc, indent=2), "utf-8")
    print(f"\n[fault] {figures.scenario}: {json.dumps(doc)}")


def assert_guarantees(f: Figures, *, recovery_bound: float = DRAIN_BOUND) -> None:
    assert f.writes_acknowledged > 0.5 * RATE, f"too little load got through: {f}"
    assert f.extra["missing_writes"] == 0, f"acknowledged writes missing from the database: {f}"
    for name, sink in f.sinks.items():
        assert sink.missing_expected == 0, f"{name}: acknowledged events never arrived: {f}"
        assert sink.missing_committed == 0, f"{name}: committed events never arrived: {f}"
        assert sink.new_id_duplicates == 0, f"{name}: a resource version under two ids: {f}"
        assert sink.order_violations == 0, f"{name}: events out of order per subject: {f}"
    assert f.http_5xx_other == 0, f"5xx other than the documented 503: {f}"
    assert f.extra["retry_after_missing"] == 0, f"a 503/429 without Retry-After: {f}"
    assert f.extra["bad_error_bodies"] == 0, f"an error answer that is no SCIM error body: {f}"
    assert f.extra["bad_signatures"] == 0, f
    assert f.extra["non_json_log_lines"] == [], f"log lines that are not JSON: {f}"
    assert f.recovery_seconds <= recovery_bound, f"not recovered in {recovery_bound}s: {f}"


@pytest.fixture(name="cluster")
async def fixture_cluster(
    pg: PgServer, nats: NatsServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    name = request.node.name.removeprefix("test_").split("[")[0][:20]
    cluster = Cluster(pg, nats, name, tmp_path)
    await cluster.setup()
    try:
        yield cluster
    finally:
        await cluster.close()


async def run_load(
    cluster: Cluster, serve: Service, seconds: float, faults: Callable[[], Awaitable[None]]
) -> Ledger:
    """The load and the scenario's faults side by side; `cluster.fault_end` is set by faults."""
    load = Load(serve.base, cluster.token, RATE, seconds)
    results = await asyncio.gather(load.run(), faults())
    return results[0]


# --- 1. kill -9 of serve, three times ---------------------------------------------------------------


async def test_serve_killed_three_times(cluster: Cluster) -> None:
    """`serve` (API + publisher in one process) dies by SIGKILL three times under load and is
    started again each time: every acknowledged write and event survives; the killed process's
    leased events are delivered by its successor once the leases run out."""
    serve = cluster.service("serve", "serve")
    serve.spawn()
    await serve.ready()

    async def faults() -> None:
        for at in (4, 10, 16):
            await asyncio.sleep(at - (time.monotonic() - t0))
            serve.kill()
            serve.spawn()
            await serve.ready()
        cluster.fault_end = time.monotonic()

    t0 = time.monotonic()
    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("serve_kill9_x3"))
    assert serve.starts == 4
    assert_guarantees(f)


# --- 2. two publishers, one killed repeatedly mid-batch ------------------------------------------------


async def test_publisher_killed_repeatedly_mid_batch(cluster: Cluster) -> None:
    """Two standalone publishers share the outbox; one is SIGKILLed five times while its
    deliveries are in flight (the receiver takes 0.3 s per event). The survivor and the
    restarted one deliver everything, same ids, in order per resource."""
    cluster.receiver.mode = "slow"
    cluster.receiver.slow_seconds = 0.3
    serve = cluster.service("serve", "serve", SCIM_PUBLISHER_ENABLED="false")
    steady = cluster.service("publisher", "publisher-steady")
    victim = cluster.service("publisher", "publisher-victim")
    for svc in (serve, steady, victim):
        svc.spawn()
    for svc in (serve, steady, victim):
        await svc.ready()
    mid_batch = 0

    async def faults() -> None:
        nonlocal mid_batch
        for at in (3, 7, 11, 15, 19):
            await asyncio.sleep(at - (time.monotonic() - t0))
            mid_batch += await _leases_of_victim(cluster.dsn) > 0
            victim.kill()
            victim.spawn()
            await victim.ready()
        cluster.fault_end = time.monotonic()

    t0 = time.monotonic()
    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("publisher_kill9_x5"))
    f.extra["kills_with_leases_in_flight"] = mid_batch
    _save(f)
    assert_guarantees(f)
    assert mid_batch >= 3, f"the victim was rarely killed mid-delivery: {mid_batch}/5"


async def _leases_of_victim(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE lease_until > now()"))
    finally:
        await conn.close()


# --- 3. PostgreSQL restarts ------------------------------------------------------------------------


async def test_database_restarts(cluster: Cluster) -> None:
    """PostgreSQL restarts under load, `-m fast` then `-m immediate` (a crash): SCIM clients get
    only 503s with Retry-After while it is away (never a 500 or a hang), and the API and the
    publisher recover by themselves."""
    serve = cluster.service("serve", "serve")
    serve.spawn()
    await serve.ready()
    back_after: list[float] = []

    async def faults() -> None:
        for at, mode in ((5, "fast"), (13, "immediate")):
            await asyncio.sleep(at - (time.monotonic() - t0))
            began = time.monotonic()
            await asyncio.to_thread(cluster.pg.restart, mode)
            await serve.ready(timeout=30)  # /readyz 200 again, without a restart of ours
            back_after.append(round(time.monotonic() - began, 2))
        cluster.fault_end = time.monotonic()

    t0 = time.monotonic()
    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("postgres_restart_fast_immediate"))
    f.extra["api_ready_again_seconds"] = back_after
    _save(f)
    assert_guarantees(f)
    assert all(s < 15 for s in back_after), back_after


async def test_database_down_for_ten_seconds(cluster: Cluster) -> None:
    """PostgreSQL is stopped for 10 s under load. Meanwhile: `/readyz` says 503; writes answer a
    SCIM 503 with Retry-After within a second (IdPs retry on it), never a 500 or a hang; a
    token cached before the outage (by the worker answering) still serves discovery, which
    needs no database. After it:
    everything recovers by itself, nothing acknowledged is lost."""
    serve = cluster.service("serve", "serve", SCIM_AUTH_CACHE_SECONDS="30")
    serve.spawn()
    await serve.ready()
    probes: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {cluster.token}"}

    async def probe(session: aiohttp.ClientSession) -> None:
        began = time.monotonic()
        async with session.get(f"{serve.base}/readyz") as resp:
            probes["readyz"] = resp.status
        async with session.get(
            f"{serve.base}/scim/v2/ServiceProviderConfig", headers=headers
        ) as resp:
            probes["discovery"] = resp.status
        async with session.post(
            f"{serve.base}/scim/v2/Users", json={"userName": "during@x.com"}, headers=headers
        ) as resp:
            probes["write"] = (resp.status, resp.headers.get("Retry-After"), await resp.json())
        probes["seconds"] = round(time.monotonic() - began, 3)

    async def fresh_discovery() -> list[int]:
        statuses = []
        for _ in range(8):  # a new connection each: whichever worker the kernel picks
            async with (
                aiohttp.ClientSession() as fresh,
                fresh.get(f"{serve.base}/scim/v2/ServiceProviderConfig", headers=headers) as resp,
            ):
                statuses.append(resp.status)
        return statuses

    async def faults() -> None:
        # One keep-alive connection for the probe, opened (and its token cached by the worker
        # that answers it) before the outage: each worker process has its own token cache, so a
        # fresh connection may reach a worker that never saw this token (then the database
        # decides: 503). The figure for fresh connections is recorded, not asserted.
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.sleep(3)
            async with session.get(
                f"{serve.base}/scim/v2/ServiceProviderConfig", headers=headers
            ) as resp:
                assert resp.status == 200
                await resp.read()
            await asyncio.sleep(1)
            await asyncio.to_thread(cluster.pg.stop, "fast")
            await asyncio.sleep(1)
            await probe(session)
            probes["fresh_discovery"] = await fresh_discovery()
        await asyncio.sleep(9 - probes["seconds"])
        began = time.monotonic()
        await asyncio.to_thread(cluster.pg.start)
        await serve.ready(timeout=30)
        probes["ready_again_seconds"] = round(time.monotonic() - began, 2)
        cluster.fault_end = time.monotonic()

    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("postgres_down_10s"))
    f.extra["probes_during_outage"] = {k: v for k, v in probes.items() if k != "write"}
    f.extra["discovery_during_outage"] = probes["discovery"]
    _save(f)
    assert_guarantees(f)
    assert probes["readyz"] == 503
    assert probes["discovery"] == 200, "a token its worker cached still serves discovery"
    status, retry_after, body = probes["write"]
    assert status == 503 and retry_after is not None and int(retry_after) >= 1
    assert body["status"] == "503" and "retry" in body["detail"].lower()
    assert probes["seconds"] < 5, "answers during the outage are prompt, not hangs"
    assert f.http_503 > 0
    assert probes["ready_again_seconds"] < 10


# --- 4. the webhook fails, then refuses connections, then recovers -------------------------------


async def test_webhook_outage(cluster: Cluster) -> None:
    """The receiver answers 500 for 60 s, then refuses connections for 60 s, then recovers:
    the events wait (retried with backoff, in order), NATS is not held up meanwhile, and the
    backlog drains once the receiver is back."""
    serve = cluster.service("serve", "serve")
    serve.spawn()
    await serve.ready()
    nats_during: list[int] = []

    async def faults() -> None:
        await asyncio.sleep(3)
        cluster.receiver.mode = "fail"
        await asyncio.sleep(60)
        await cluster.receiver.refuse()
        await asyncio.sleep(60)
        nats_during.append(len(await cluster.nats.messages(cluster.stream)))
        cluster.receiver.mode = "ok"
        await cluster.receiver.start()
        cluster.fault_end = time.monotonic()

    ledger = await run_load(cluster, serve, 128, faults)
    f = await cluster.verdict(ledger, Figures("webhook_500_60s_refused_60s"))
    f.extra["nats_events_during_outage"] = nats_during[0]
    assert_guarantees(f)
    assert nats_during[0] > 0.5 * RATE * 100, "the NATS lane waited for the failing webhook"


# --- 5. NATS restarts -------------------------------------------------------------------------------


async def test_nats_restarts(cluster: Cluster) -> None:
    """nats-server stops (SIGTERM, then SIGKILL) and comes back under load: JetStream events
    are re-sent with the same Nats-Msg-Id, none is lost, webhooks never wait for NATS."""
    serve = cluster.service("serve", "serve")
    serve.spawn()
    await serve.ready()

    async def faults() -> None:
        for at, sig in ((5, signal.SIGTERM), (13, signal.SIGKILL)):
            await asyncio.sleep(at - (time.monotonic() - t0))
            await asyncio.to_thread(cluster.nats.stop, sig)
            await asyncio.sleep(2)
            await asyncio.to_thread(cluster.nats.start)
        cluster.fault_end = time.monotonic()

    t0 = time.monotonic()
    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("nats_restart_term_kill"))
    assert_guarantees(f)


# --- 6. a slow receiver --------------------------------------------------------------------------------


async def test_slow_receiver_keeps_transactions_short(cluster: Cluster) -> None:
    """The receiver answers after 2 s. No transaction of ours stays open across a delivery (in
    pg_stat_activity, none older than 1.5 s but for a rare stall), and delivery keeps up with
    30 writes/s at the default concurrency (64 in flight): the backlog does not grow."""
    cluster.receiver.mode = "slow"
    cluster.receiver.slow_seconds = 2.0
    serve = cluster.service(
        "serve", "serve", SCIM_WEBHOOK_TIMEOUT="5", SCIM_PUBLISHER_LEASE_SECONDS="12"
    )
    serve.spawn()
    await serve.ready()
    oldest: list[float] = []
    backlog: list[int] = []
    long_ones: list[dict[str, Any]] = []  # what a transaction over 1.5 s was doing (the cause)
    stop = asyncio.Event()
    # Only sessions inside a client transaction ('active', 'idle in transaction'): a LISTEN
    # session reads each incoming NOTIFY in a transaction of its own while 'idle', and that
    # transaction's xact_start is the start of the session's last statement (its ping, up to
    # PING_EVERY = 15 s before). That showed as a 12.1 s "transaction" in one CI run (issue 23).

    async def sample() -> None:
        conn = await asyncpg.connect(cluster.dsn)
        try:
            while not stop.is_set():
                row = await conn.fetchrow(
                    "SELECT extract(epoch FROM now() - xact_start)::float8 AS age, state,"
                    " wait_event_type, wait_event, left(query, 160) AS query, pid"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'scim-service' AND xact_start IS NOT NULL"
                    " AND state <> 'idle' ORDER BY xact_start LIMIT 1"
                )
                age = float(row["age"]) if row is not None else 0.0
                if row is not None and age > 1.5 and len(long_ones) < 20:
                    long_ones.append(dict(row))
                oldest.append(age)
                backlog.append(
                    int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sink = 'webhook'"))
                )
                await asyncio.sleep(0.25)
        finally:
            await conn.close()

    async def faults() -> None:
        sampler = asyncio.create_task(sample())
        await asyncio.sleep(30)
        stop.set()
        await sampler
        cluster.fault_end = time.monotonic()

    ledger = await run_load(cluster, serve, 30, faults)
    f = await cluster.verdict(ledger, Figures("slow_receiver_2s"))
    third = max(1, len(backlog) // 3)
    f.extra["oldest_transaction_seconds"] = round(max(oldest), 3)
    f.extra["transaction_samples"] = len(oldest)
    f.extra["transactions_over_1_5s"] = long_ones
    f.extra["backlog_first_third_max"] = max(backlog[:third])
    f.extra["backlog_last_third_max"] = max(backlog[-third:])
    _save(f)
    assert_guarantees(f, recovery_bound=15)
    # Held across a 2 s delivery, a transaction would show in most samples (the old publisher's
    # did, for up to 54 s); a rare spike on an overloaded machine is a stalled process instead.
    long = sum(1 for age in oldest if age > 1.5)
    assert long <= max(2, len(oldest) // 50), f"{long} of {len(oldest)} samples over 1.5 s: {f}"
    assert max(oldest) < 10.0, f"a transaction stayed open {max(oldest):.1f}s: {f}"
    # In flight at 30/s with 2 s answers: about 60, plus one recording round; growing would be
    # hundreds more by the end.
    assert max(backlog[-third:]) <= max(backlog[:third]) + 60, f
    assert max(backlog) < 200, f


# --- 8. worker processes of one serve, each killed -----------------------------------------------


def _worker_pids(serve: Service) -> dict[str, int]:
    """slot -> pid of the latest incarnation of each worker, from the supervisor's log."""
    pids: dict[str, int] = {}
    for line in serve.log_lines():
        entry = json.loads(line)
        if entry.get("event") == "worker_spawned":
            pids[entry["slot"]] = entry["pid"]
    return pids


async def test_workers_killed_one_by_one(cluster: Cluster) -> None:
    """`serve` with two request workers and its publisher process (SCIM_WORKERS=2): each is
    SIGKILLed once under load (worker 1, worker 2, then the publisher while it delivers). The
    supervisor replaces each; nothing acknowledged is lost, and the supervisor itself never
    restarts."""
    serve = cluster.service("serve", "serve", SCIM_WORKERS="2")
    serve.spawn()
    await serve.ready()
    victims: list[int] = []

    async def faults() -> None:
        for at, slot in ((4, "1"), (9, "2"), (14, "publisher")):
            await asyncio.sleep(at - (time.monotonic() - t0))
            pid = _worker_pids(serve)[slot]
            victims.append(pid)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while _worker_pids(serve)[slot] == pid:  # until the supervisor has replaced it
                assert time.monotonic() < deadline, f"worker {slot} was not replaced"
                await asyncio.sleep(0.05)
        cluster.fault_end = time.monotonic()

    t0 = time.monotonic()
    ledger = await run_load(cluster, serve, 22, faults)
    f = await cluster.verdict(ledger, Figures("workers_kill9_each"))
    died = [json.loads(x) for x in serve.log_lines() if '"worker_died"' in x]
    f.extra["workers_replaced"] = len(died)
    _save(f)
    assert sorted(d["pid"] for d in died) == sorted(victims)
    assert serve.starts == 1 and serve.proc is not None and serve.proc.poll() is None
    assert_guarantees(f)


# --- 9. clients that hang up, trickle or stay silent, and a locked group ---------------------


async def _hang_up_mid_body(base: str, token: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/scim+json\r\nContent-Length: 400\r\n\r\n"
        '{"userName": "gone@example.com", "disp'.encode()
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()


async def _until_closed(base: str, payload: bytes, every: float) -> tuple[bytes, float]:
    """Send `payload` a few bytes at a time every `every` seconds (nothing if empty) until the
    server answers or closes; what it sent and when it closed."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    began = time.monotonic()
    got: list[bytes] = []

    async def collect() -> None:
        try:
            while chunk := await reader.read(4096):
                got.append(chunk)
        except ConnectionError:
            pass

    reading = asyncio.ensure_future(collect())
    try:
        for i in range(0, len(payload), 2):
            if reading.done() or got:
                break
            writer.write(payload[i : i + 2])
            await writer.drain()
            await asyncio.sleep(every)
    except ConnectionError:
        pass
    await asyncio.wait_for(reading, 20)
    writer.close()
    return b"".join(got), time.monotonic() - began


def _metric_sum(text: str, *parts: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith("#") and all(p in line for p in parts):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_hostile_clients_and_a_locked_group(cluster: Cluster) -> None:
    """Under the 30 writes/s load: 20 clients hang up mid-body, 10 connections never send a
    byte, 5 trickle their body at 4 bytes/s, and another session holds a group's row for 8 s
    while 4 clients PATCH that group in a loop. The load's writes (other users of the same
    organization) are all answered 2xx, none 429 or 503, nothing is lost; the hang-ups count
    as 499, never 503; silent and trickling connections are cut (408) within their bounds;
    the locked group's writers get 503 with Retry-After."""
    serve = cluster.service(
        "serve",
        "serve",
        SCIM_HTTP_HEAD_TIMEOUT="2",
        SCIM_HTTP_BODY_GRACE="1",
        SCIM_HTTP_BODY_MIN_RATE="100",
    )
    serve.spawn()
    await serve.ready()
    headers = {"Authorization": f"Bearer {cluster.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{serve.base}/scim/v2/Groups", json={"displayName": "Hot"}, headers=headers
        ) as resp,
    ):
        assert resp.status == 201
        gid = (await resp.json())["id"]
    group_answers: list[tuple[int, str | None]] = []
    cut: dict[str, list[tuple[bytes, float]]] = {}
    body = b'{"userName": "trickle@example.com", "displayName": "' + b"x" * 100 + b'"}'
    trickle_head = (
        f"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cluster.token}\r\n"
        f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    async def lock_group(stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(cluster.dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM groups WHERE id = $1 FOR UPDATE", uuid.UUID(gid))
                await asyncio.sleep(8)
        finally:
            await conn.close()
            stop.set()

    async def hammer(stop: asyncio.Event, session: aiohttp.ClientSession) -> None:
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Hot!"}],
        }
        while not stop.is_set():
            async with session.patch(
                f"{serve.base}/scim/v2/Groups/{gid}", json=patch, headers=headers
            ) as resp:
                await resp.read()
                group_answers.append((resp.status, resp.headers.get("Retry-After")))

    async def faults() -> None:
        await asyncio.sleep(2)
        stop = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            locker = asyncio.ensure_future(lock_group(stop))
            await asyncio.sleep(0.2)
            hammers = [asyncio.ensure_future(hammer(stop, session)) for _ in range(4)]
            await asyncio.gather(*(_hang_up_mid_body(serve.base, cluster.token) for _ in range(20)))
            cut["silent"] = await asyncio.gather(
                *(_until_closed(serve.base, b"", 0) for _ in range(10))
            )
            cut["trickle"] = await asyncio.gather(
                *(_until_closed(serve.base, trickle_head + body, 0.5) for _ in range(5))
            )
            await locker
            await asyncio.gather(*hammers)
        cluster.fault_end = time.monotonic()

    ledger = await run_load(cluster, serve, 14, faults)
    f = await cluster.verdict(ledger, Figures("hostile_clients_locked_group"))
    async with aiohttp.ClientSession() as session, session.get(f"{serve.base}/metrics") as resp:
        metrics = await resp.text()
    during = [a for a in group_answers if a[0] != 200]
    f.extra["hang_ups_499"] = _metric_sum(metrics, "scim_http_requests_total{", 'status="499"')
    f.extra["users_503_in_metrics"] = _metric_sum(
        metrics, "scim_http_requests_total{", 'route="/scim/v2/Users"', 'status="503"'
    )
    f.extra["silent_closed_after_s"] = max(t for _, t in cut["silent"])
    f.extra["trickle_closed_after_s"] = max(t for _, t in cut["trickle"])
    f.extra["locked_group_answers"] = {
        str(s): sum(1 for a in group_answers if a[0] == s) for s in {a[0] for a in group_answers}
    }
    _save(f)
    assert_guarantees(f)
    assert set(ledger.statuses) <= {200, 201}, f"the load was turned away: {f}"
    assert f.extra["hang_ups_499"] == 20, f
    assert f.extra["users_503_in_metrics"] == 0, f
    assert all(d.startswith(b"HTTP/1.1 408") for d, _ in cut["silent"]), cut["silent"]
    assert f.extra["silent_closed_after_s"] < 5, f
    assert all(d.startswith(b"HTTP/1.1 408") for d, _ in cut["trickle"]), cut["trickle"]
    assert f.extra["trickle_closed_after_s"] < 6, f
    assert during and all(s == 503 and ra is not None for s, ra in during), group_answers
