"""`make bench`: scim-service side by side with scim2-server 0.8.3, django-scim2 0.23.0 and the
PostgreSQL ceiling.

Phases (see bench/README.md for what each scenario does and how to read the table):

  0. prerequisites: wrk, pgbench, the peers' virtual environments (bench/.venv-peer,
     bench/.venv-django)
  1. a fresh database on the local PostgreSQL (else the embedded one), migrated; an org and a
     token made with the CLI; 10,000 users bulk-loaded (loader.py), ANALYZE; `serve` with its
     default workers and a second `serve` with SCIM_WORKERS=1
  2. at 10,000 users: co / sw filters, us vs 1 worker vs scim2-server vs pgbench
  3. 90,000 more users + groups (the scim2 peer's launcher preloads 100,000 meanwhile, and
     the django peer's own database is migrated and loaded with the same 100,000), ANALYZE;
     GET /Users/{id}, eq / co / sw filters, POST /Users (also on django), PATCH add member,
     GET a 50,000-member group, PATCH adding 1,000 members; peak RSS of every server
  4. events: webhook commit-to-receipt with POST /Users driven at 1,000/s, NATS relay
     throughput from a pre-filled outbox, and the bare claim loop of the same database
  5. the table, target verdicts, and bench/results/bench-<timestamp>.json

Everything the benchmark starts is stopped on exit, on error and on Ctrl-C; the database is
dropped. Every load loop is bounded in time (and count); traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import cpu
import dataset
import djangopeer
import loader
import loadgen
import procs
import report
import svc
from ceiling import Ceiling
from checks import Checks
from common import CONCURRENCY, HERE, ROOT, Failure, Target, http_json, say, with_database
from prereqs import ensure_django_venv, ensure_peer_venv, ensure_tool
from scenarios import Scenarios

from scim_service.config import Settings
from scim_service.tokens import token_digest

WORK = HERE / "work"
RESULTS = HERE / "results"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PEER_TOKEN = "scim_bench_peer_token_" + uuid.uuid4().hex  # the peer accepts only this
DJANGO_TOKEN = "scim_bench_django_token_" + uuid.uuid4().hex  # the django peer: only this
PEERS = ("scim2", "django")


class Bench(Checks, Scenarios):
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.stamp = stamp
        if WORK.is_dir():  # keep the logs of the last few runs only
            runs = sorted(p for p in WORK.iterdir() if p.is_dir() and p.name[:1].isdigit())
            for old in runs[:-3]:
                shutil.rmtree(old, ignore_errors=True)
        self.work = WORK / stamp
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(20261129)  # noqa: S311 - reproducible samples
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.memory: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.checks: list[str] = []
        self.profiles: dict[str, Any] = {}
        self.dbname = f"scim_bench_{stamp.replace('-', '_')}"
        self.django_dbname = f"scim_bench_django_{stamp.replace('-', '_')}"
        self.admin_dsn = ""
        self.dsn = ""
        self.django_dsn = ""
        self.embedded: Any = None
        self.us: Target | None = None
        self.peer: Target | None = None
        self.us1: Target | None = None  # the same service with SCIM_WORKERS=1
        self.django: Target | None = None
        self.us_service: svc.Service | None = None
        self.us1_service: svc.Service | None = None
        self.peer_proc: procs.Proc | None = None
        self.django_proc: procs.Proc | None = None
        self.django_preload: Any = None
        self.django_env: dict[str, str] = {}
        # What `serve` runs by default (SCIM_WORKERS unset), and so gunicorn's worker count.
        self.workers = Settings(workers=None).worker_count
        # PATCH member offsets per database: us and us1 share one, so their ids never repeat.
        self.offsets = {"us": 0, "peer": 0, "django": 0}
        self.revision = service_revision()

    # -- time ----------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def measurement_seconds(self) -> float:
        return self.a.warmup + self.a.repeats * self.a.duration + 0.5 * (self.a.repeats + 1)

    def has_time(self, seconds: float, what: str) -> bool:
        if time.monotonic() + seconds <= self.deadline:
            return True
        self.skipped.append(f"{what}: skipped, the time budget ({self.a.budget:.0f}s) is spent")
        say(f"  ! {self.skipped[-1]}")
        return False

    def wanted(self, key: str) -> bool:
        return not self.a.only or key in self.a.only

    # -- phase 1 ------------------------------------------------------------------------------
    def setup_database(self) -> None:
        base = os.environ.get("BENCH_DATABASE_URL") or None
        if base is None or base == "embedded":
            if base is None and procs.tcp_open("127.0.0.1", 5432):
                base = DEFAULT_PG
            else:
                say("  starting the embedded PostgreSQL (no server on 127.0.0.1:5432, or asked)")
                from scim_service.embedded import EmbeddedPostgres

                self.embedded = EmbeddedPostgres(WORK / "embedded")
                base = self.embedded.start()
        self.admin_dsn = base
        self.dsn = with_database(base, self.dbname)

        async def create() -> tuple[str, str]:
            conn = await asyncpg.connect(base, timeout=10)
            try:
                await conn.execute(f'CREATE DATABASE "{self.dbname}"')
                if "django" in self.a.peers:
                    await conn.execute(f'CREATE DATABASE "{self.django_dbname}"')
                    self.django_dsn = with_database(base, self.django_dbname)
                return (
                    await conn.fetchval("SHOW server_version"),
                    await conn.fetchval("SHOW shared_buffers"),
                )
            finally:
                await conn.close()

        try:
            version, buffers = asyncio.run(create())
        except (OSError, asyncpg.PostgresError) as exc:
            raise Failure(f"cannot create a database on {base}: {exc}") from exc
        self.extra["postgres"] = {"version": version, "shared_buffers": buffers}
        say(f"  database {self.dbname} (PostgreSQL {version}, shared_buffers {buffers})")
        svc.cli(self.dsn, "migrate")
        org = svc.cli(self.dsn, "org", "create", "bench")
        self.org_id = uuid.UUID(org["id"])
        token = svc.cli(self.dsn, "token", "create", str(self.org_id), "--description", "bench")
        self.token = token["token"]
        self.source = "http://127.0.0.1:8080/scim/v2"

    def drop_database(self) -> None:
        if not self.admin_dsn or self.a.keep_db:
            return

        async def drop() -> None:
            conn = await asyncpg.connect(self.admin_dsn, timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
                if self.django_dsn:
                    await conn.execute(
                        f'DROP DATABASE IF EXISTS "{self.django_dbname}" WITH (FORCE)'
                    )
            finally:
                await conn.close()

        with contextlib.suppress(Exception):
            asyncio.run(drop())
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.stop()

    def load(self, start: int, end: int, groups: bool) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                await loader.load_users(conn, self.org_id, start, end, self.source)
                if groups:
                    await loader.create_group(
                        conn,
                        self.org_id,
                        dataset.BIG_GROUP_NAME,
                        range(self.a.big_group),
                        self.source,
                    )
                    await loader.create_group(
                        conn,
                        self.org_id,
                        dataset.TEAM_GROUP_NAME,
                        range(dataset.TEAM_SIZE),
                        self.source,
                    )
                    for n in range(len(CONCURRENCY) * (1 + self.a.repeats)):
                        await loader.create_group(
                            conn,
                            self.org_id,
                            f"{dataset.TEAM_GROUP_NAME} pg {n}",
                            range(dataset.TEAM_SIZE),
                            self.source,
                        )
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()

        t = time.monotonic()
        asyncio.run(run())
        say(
            f"  loaded users {start:,}..{end - 1:,}{' and groups' if groups else ''}, "
            f"VACUUM ANALYZE: {time.monotonic() - t:.1f}s"
        )

    # -- servers --------------------------------------------------------------------------
    def start_us(self, name: str) -> None:
        """`serve` as deployed (SCIM_WORKERS unset: one worker per CPU), and beside it, idle
        while the other is measured, the same with SCIM_WORKERS=1 (the single process)."""
        self.us_service = svc.start(name, self.dsn, self.logs, SCIM_PUBLISHER_ENABLED="false")
        self.us = Target(
            "us", self.us_service.base, "/scim/v2", self.token, self.us_service.proc.pid
        )
        if self.a.one_worker != "none":
            self.us1_service = svc.start(
                f"{name}-1worker",
                self.dsn,
                self.logs,
                SCIM_PUBLISHER_ENABLED="false",
                SCIM_WORKERS="1",
            )
            self.us1 = Target(
                "us1", self.us1_service.base, "/scim/v2", self.token, self.us1_service.proc.pid
            )

    def stop_us(self, label: str) -> None:
        if self.us_service is not None:
            self.memory[label] = procs.tree_memory_kb(self.us_service.proc.pid)
            self.check_alive(self.us_service.proc)
            procs.stop(self.us_service.proc)
            self.us_service = None
        if self.us1_service is not None:
            self.memory[label + "_1worker"] = procs.tree_memory_kb(self.us1_service.proc.pid)
            self.check_alive(self.us1_service.proc)
            procs.stop(self.us1_service.proc)
            self.us1_service = None
            self.us1 = None

    def check_alive(self, proc: procs.Proc) -> None:
        """A server that exited before the benchmark stopped it is a failed check (its
        later rows say "connection refused"): name its exit status and its log's last lines."""
        status = proc.popen.poll()
        if status is not None:
            tail = proc.tail(5).replace("\n", " | ")[-400:]
            self.check(
                False, f"{proc.name} exited by itself (status {status}) before the end: {tail}"
            )

    def process_of(self, target: Target) -> procs.Proc | None:
        services = {"us": self.us_service, "us1": self.us1_service}
        if target.key in services:
            service = services[target.key]
            return service.proc if service is not None else None
        return {"peer": self.peer_proc, "django": self.django_proc}.get(target.key)

    # -- the django-scim2 peer (djangopeer.py) ------------------------------------------------
    def preload_django(self, start: int, end: int, groups: bool) -> None:
        """Start loading the django peer's database (in its own process, while ours loads)."""
        if "django" not in self.a.peers:
            return
        self.django_env = djangopeer.env(self.django_dsn, DJANGO_TOKEN)
        self.django_preload = djangopeer.preload(
            self.django_python,
            self.django_env,
            self.logs / "django-preload.log",
            start=start,
            end=end,
            big_group=min(self.a.big_group, end) if groups else 0,
        )

    def start_django(self, users: int) -> None:
        if self.django_preload is None:
            return
        line = djangopeer.wait_preload(self.django_preload, self.logs / "django-preload.log")
        self.django_preload = None
        say(f"  {line}")
        port = procs.free_port()
        self.django_proc = djangopeer.start(
            self.django_python,
            self.django_env,
            self.logs / f"django-{users}.log",
            port=port,
            workers=self.workers,
            name=f"django-{users}",
        )
        self.django = Target(
            "django", f"http://127.0.0.1:{port}", "/scim/v2", DJANGO_TOKEN, self.django_proc.pid
        )
        procs.wait_http(
            self.django.url("/ServiceProviderConfig"),
            self.django_proc,
            120,
            headers={"Authorization": f"Bearer {DJANGO_TOKEN}"},
        )
        say(f"  django peer ready: gunicorn, {self.workers} sync workers")

    def stop_django(self, label: str) -> None:
        if self.django_proc is not None:
            self.memory[label] = procs.tree_memory_kb(self.django_proc.pid)
            self.check_alive(self.django_proc)
            procs.stop(self.django_proc)
            self.django_proc = None
            self.django = None

    def start_peer(self, users: int) -> None:
        if "scim2" not in self.a.peers:
            return
        port = procs.free_port()
        self.peer_proc = procs.start(
            f"peer-{users}",
            [
                str(self.peer_python),
                str(HERE / "peer_launcher.py"),
                "--port",
                str(port),
                "--users",
                str(users),
                "--big-group",
                str(min(self.a.big_group, users)),
                "--token",
                PEER_TOKEN,
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith("SCIM_")},
            log=self.logs / f"peer-{users}.log",
            cwd=HERE,
        )
        self.peer = Target(
            "peer", f"http://127.0.0.1:{port}", "/v2", PEER_TOKEN, self.peer_proc.pid
        )

    def wait_peer(self) -> None:
        if self.peer_proc is None or self.peer is None:
            return
        procs.wait_http(self.peer.url("/ServiceProviderConfig"), self.peer_proc, 600)
        say(f"  peer ready: {self.peer_proc.tail(3).splitlines()[0]}")

    def stop_peer(self, label: str) -> None:
        if self.peer_proc is not None:
            self.memory[label] = procs.memory_kb(self.peer_proc.pid)
            procs.stop(self.peer_proc)
            self.peer_proc = None
            self.peer = None

    # -- HTTP measurements ------------------------------------------------------------------
    def paths_file(self, name: str, target: Target, paths: list[str]) -> Path:
        path = self.work / "paths" / f"{target.key}-{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(target.prefix + p for p in paths) + "\n")
        return path

    def run_http(self, target: Target, script: str, args_for: Any, c: int) -> dict[str, Any]:
        proc = self.process_of(target)
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} is not running (exit status {proc.popen.poll()})")

        def one(duration: float, index: int) -> loadgen.Run:
            meter = cpu.CpuMeter(target.pid)
            meter.start()
            run = loadgen.wrk(
                target.base, script, args_for(index, c), connections=c, duration=duration
            )
            run.extra.update(meter.stop())
            if script == "patch_member.lua":
                self.offsets[offset_key(target)] += run.requests + 2 * c + 20
            run.extra["drain_s"] = self.drain(target)
            return run

        result = loadgen.measure(
            one, warmup=self.a.warmup, repeats=self.a.repeats, duration=self.a.duration
        )
        rps, p50 = result["rps"]["median"], result["p50_ms"]["median"]
        if c == 1 and rps * self.a.duration < 3 and p50 == p50 and p50 > 0:
            # Too slow for a run to count requests (one in flight when the run ends is not
            # counted): with one client, throughput is 1 / latency.
            result["rps"]["median"] = 1000.0 / p50
            result["rps_from_latency"] = True
        cpus = [r["extra"].get("server_cpu_pct", 0.0) for r in result["runs"]]
        pgs = [r["extra"].get("pg_cpu_pct", 0.0) for r in result["runs"]]
        result["server_cpu_pct"] = sorted(cpus)[len(cpus) // 2]
        result["pg_cpu_pct"] = sorted(pgs)[len(pgs) // 2]
        # CPU time per request (microseconds): the figure that holds on a noisy machine, where
        # req/s moves with whatever else runs. A run's share of one core over its requests/s.
        for key, shares in (("server_cpu_us", cpus), ("pg_cpu_us", pgs)):
            per = sorted(
                share / 100.0 * 1e6 / r["rps"]
                for share, r in zip(shares, result["runs"], strict=True)
                if r["rps"] > 0
            )
            result[key] = per[len(per) // 2] if per else float("nan")
        return result

    def drain(self, target: Target, limit: float = 90.0) -> float:
        """Wait until the server has finished the requests wrk left in flight (a single-threaded
        server keeps working on them after wrk closes its connections), so they do not slow
        the next run: a cheap request must answer within 100 ms. Bounded by `limit` seconds."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            t = time.monotonic()
            try:
                status, _ = http_json(
                    "GET", target.url("/ServiceProviderConfig"), target.token, timeout=limit
                )
            except OSError as exc:  # a reset while its backlog clears: ask again, bounded
                self.extra.setdefault("drain_errors", []).append(f"{target.key}: {exc}")
                time.sleep(0.05)
                continue
            if status == 200 and time.monotonic() - t < 0.1:
                break
        return time.monotonic() - started

    def run_pg(self, script: Path, c: int, defines_for: Any) -> dict[str, Any]:
        def one(duration: float, index: int) -> loadgen.Run:
            meter = cpu.CpuMeter(None)
            meter.start()
            run = loadgen.pgbench(
                self.dsn, script, clients=c, duration=duration, defines=defines_for(index, c)
            )
            run.extra.update(meter.stop())
            return run

        return loadgen.measure(
            one, warmup=self.a.warmup, repeats=self.a.repeats, duration=self.a.pg_duration
        )

    def scenario(
        self,
        key: str,
        title: str,
        *,
        http: dict[str, Any] | None,
        pg: tuple[Path, Any] | None,
        note: str = "",
    ) -> None:
        """Measure one scenario at each concurrency for us, the peer and pgbench.

        `http[target_key]` is (script, args_for(index, c)) or a function of the Target
        returning it; the SCIM_WORKERS=1 server ("us1") runs what "us" runs, unless
        `--one-worker core` limits it to GET /Users/{id} and POST /Users."""
        if not self.wanted(key):
            return
        http = dict(http or {})
        if "us" in http and "us1" not in http and self.one_worker_for(key):
            http["us1"] = http["us"]
        targets = [
            t
            for t in (self.us, self.us1, self.peer, self.django)
            if t is not None and t.key in http
        ]
        per_c = len(targets) * self.measurement_seconds()
        per_c += (self.a.warmup + self.a.repeats * self.a.pg_duration + 2) if pg else 0
        if not self.has_time(per_c * len(CONCURRENCY), title):
            return
        previous: dict[str, Any] = {}
        for c in CONCURRENCY:
            row: dict[str, Any] = {"key": key, "title": title, "c": c, "note": note}
            for t in targets:
                spec = http[t.key]
                before = previous.get(t.key)
                if before and before["rps"]["median"] * self.a.duration < 2 * c:
                    row[f"{t.key}_skipped"] = (
                        f"c={c} not run: at c={previous['c']} it served "
                        f"{before['rps']['median']:.2f} req/s, so {c} requests in flight would "
                        f"only queue ({self.a.duration:g}s runs)"
                    )
                    continue
                script, args_for = spec(t) if callable(spec) else spec
                try:
                    row[t.key] = self.run_http(t, script, args_for, c)
                    if row[t.key].get("rps_from_latency"):
                        row[f"{t.key}_note"] = (
                            "req/s = 1 / p50 (a request outlasts most runs, so wrk counted "
                            f"{row[t.key]['requests']} in all)"
                        )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    row[f"{t.key}_error"] = str(exc)[:500]
                    say(f"  ! {title} c={c} {t.key}: {str(exc)[:300]}")
            if pg is not None:
                try:
                    row["pg"] = self.run_pg(pg[0], c, pg[1])
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    row["pg_error"] = str(exc)[:500]
                    say(f"  ! {title} c={c} pgbench: {str(exc)[:300]}")
            self.rows.append(row)
            previous = {"c": c, **{k: row[k] for k in TARGET_KEYS if row.get(k)}}
            say(report.http_table([row]).splitlines()[2])

    def one_worker_for(self, key: str) -> bool:
        if self.a.one_worker == "none":
            return False
        return self.a.one_worker == "all" or key in ("get_user", "post_user")

    def run(self) -> None:
        say("[0] prerequisites")
        allow_apt = os.environ.get("BENCH_NO_APT") != "1"
        ensure_tool("wrk", "wrk", allow_apt)
        ensure_tool("pgbench", "postgresql-client", allow_apt)
        self.peer_python = ensure_peer_venv() if "scim2" in self.a.peers else None
        self.django_python = ensure_django_venv() if "django" in self.a.peers else None

        say(f"[1] database and {self.a.small_users:,} users")
        self.setup_database()
        self.ceiling = Ceiling(
            self.work / "pgbench", self.org_id, token_digest(self.token), ("log",)
        )
        self.start_peer(self.a.small_users)
        self.load(0, self.a.small_users, groups=False)
        self.start_us("scim-10k")
        self.wait_peer()
        say(
            f"  serve: {self.workers} workers (SCIM_WORKERS unset)"
            + (", and a second serve with SCIM_WORKERS=1" if self.us1 else "")
        )
        self.check_fidelity()

        say(f"[2] {self.a.small_users:,} users: filters")
        self.check_filters(self.a.small_users, ["co", "sw"])
        print(report.http_table([]).splitlines()[0], flush=True)
        self.get_scenarios(self.a.small_users, f"{self.a.small_users // 1000}k", ["co", "sw"])
        self.stop_peer("peer_10k")
        self.stop_us("us_10k")

        say(f"[3] {self.a.users:,} users")
        self.start_peer(self.a.users)  # preloads in its own process while we load ours
        self.preload_django(0, self.a.users, groups=True)  # so does the django peer
        self.load(self.a.small_users, self.a.users, groups=True)
        self.start_us("scim-100k")
        self.wait_peer()
        self.start_django(self.a.users)
        self.check_post_peers()
        self.check_filters(self.a.users, ["eq", "co", "sw"])
        self.check_get(self.a.users)
        print(report.http_table([]).splitlines()[0], flush=True)
        self.full_scenarios(self.a.users)
        self.profile(self.a.users)
        self.stop_peer("peer_100k")
        self.stop_django("django_100k")
        self.stop_us("us_100k")

        say("[4] events")
        self.events()

    def results(self) -> dict[str, Any]:
        return {
            "timestamp": self.stamp,
            "elapsed_seconds": self.elapsed(),
            "config": {
                k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(self.a).items()
            },
            "service_code": self.revision,
            "machine": {
                "cpus": os.cpu_count(),
                "cpus_available": self.workers,
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "scenarios": self.rows,
            "extra": self.extra,
            "memory_kb": self.memory,
            "profiles": self.profiles,
            "checks": self.checks,
            "skipped": self.skipped,
            "verdicts": report.verdicts(self),
        }


TARGET_KEYS = ("us", "us1", "peer", "django")


def offset_key(t: Target) -> str:
    """Which database's PATCH member ids a target draws from (us and us1 share ours)."""
    return "us" if t.key == "us1" else t.key


def service_revision() -> str:
    """The commit the service ran from, with `-dirty` when its tree had uncommitted changes
    (read-only git calls; "unknown" outside a git checkout)."""
    try:
        proc = subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--exclude", "*"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return proc.stdout.strip() or "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--small-users", type=int, default=10_000)
    p.add_argument("--big-group", type=int, default=50_000)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per HTTP run")
    p.add_argument("--pg-duration", type=float, default=1.0, help="seconds per pgbench run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--patch1000-n", type=int, default=5)
    p.add_argument(
        "--patch1000-seconds",
        type=float,
        default=30.0,
        help="stop sending PATCH +1,000 requests to one server after this long",
    )
    p.add_argument(
        "--webhook-rate",
        type=float,
        default=1000.0,
        help="events/s driven through POST /Users (exactly; the row says what was achieved)",
    )
    p.add_argument("--webhook-seconds", type=float, default=5.0)
    p.add_argument("--webhook-poll", type=float, default=0.05)
    p.add_argument("--nats-events", type=int, default=50_000)
    p.add_argument(
        "--budget",
        type=float,
        default=960.0,
        help="seconds; scenarios that would not fit are skipped (and listed)",
    )
    p.add_argument(
        "--only",
        type=lambda s: set(s.split(",")),
        default=set(),
        help="comma-separated scenario keys: co10k,sw10k,get_user,eq100k,co100k,"
        "sw100k,post_user,patch_member,get_group,patch_1000,webhook,longpoll,nats",
    )
    p.add_argument(
        "--peers",
        type=lambda s: tuple(x for x in s.split(",") if x),
        default=PEERS,
        help="comma-separated peers to run beside us: scim2,django (default both)",
    )
    p.add_argument("--no-peer", action="store_true", help="skip both peers (--peers '')")
    p.add_argument(
        "--one-worker",
        choices=("all", "core", "none"),
        default="all",
        help="measure a SCIM_WORKERS=1 serve beside the default one on every wrk row (all), "
        "on GET /Users/{id} and POST /Users only (core), or not at all (none)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy our server under GET /Users/{id} and POST /Users",
    )
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)
    if args.no_peer:
        args.peers = ()
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        p.error(f"unknown peers {sorted(unknown)}: choose from {','.join(PEERS)}")
    if args.repeats < 3:
        p.error("--repeats must be at least 3")
    if args.users < args.big_group + args.patch1000_n * 1000 or args.small_users > args.users:
        p.error("--users must hold the big group plus the PATCH +1,000 members")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.install_signal_handlers()
    bench = Bench(args)
    status = 0
    try:
        bench.run()
    except KeyboardInterrupt:
        say("\ninterrupted: stopping everything the benchmark started")
        status = 130
    except Failure as exc:
        say(f"\nbench: {exc}")
        status = 2
    except Exception as exc:  # a report with what was measured beats none
        say(f"\nbench: failed: {type(exc).__name__}: {exc}")
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        procs.stop_all()
        bench.drop_database()
    if bench.rows or bench.extra:
        path = RESULTS / f"bench-{bench.stamp}.json"
        report.write_json(path, bench.results())
        report.print_report(bench, path, bench.revision)
    say(f"elapsed: {bench.elapsed():.0f}s ({bench.elapsed() / 60:.1f} min)")
    return status


if __name__ == "__main__":
    sys.exit(main())
