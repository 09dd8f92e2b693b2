"""The scenarios, as methods of the benchmark (run.py's Bench): what each measures and how."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import dataset
import events_bench
import loadgen
import procs
import spyprofile as pyspy
from common import CONCURRENCY, ROOT, Target, say


class Scenarios:
    """Mixed into Bench; uses its measurement primitives (scenario, paths_file, check, ...)."""

    # Provided by Bench.
    a: Any
    rows: list[dict[str, Any]]
    extra: dict[str, Any]
    skipped: list[str]
    profiles: dict[str, Any]
    offsets: dict[str, int]
    us: Target | None
    us1: Target | None
    peer: Target | None
    django: Target | None
    rng: Any
    work: Path
    logs: Path
    dsn: str
    token: str
    org_id: uuid.UUID
    source: str
    ceiling: Any

    # -- the scenarios ----------------------------------------------------------------------
    def get_scenarios(self, users: int, label: str, kinds: list[str]) -> None:
        """Search scenarios (filters) at this size, plus the others at full size."""
        ceiling = self.ceiling
        base_defines = {"org": str(self.org_id), "lim": "100", "off": "0"}
        seeds = iter(range(1, 10_000))

        def paths_script(name: str, paths: list[str]) -> Any:
            def spec(t: Target) -> tuple[str, Any]:
                f = self.paths_file(name, t, paths)
                return "paths.lua", lambda i, c: [str(f), t.token, str(next(seeds))]

            return spec

        def filter_paths(kind: str) -> list[str]:
            out = []
            for _ in range(2000):
                if kind == "eq":
                    f = dataset.eq_filter(self.rng.randrange(users))
                elif kind == "co":
                    f = dataset.co_filter(self.rng.randrange(users // 10))
                else:
                    f = dataset.sw_filter(self.rng.randrange(users // 10))
                out.append("/Users?filter=" + urllib.parse.quote(f, safe=""))
            return out

        titles = {
            "eq": 'filter userName eq "…"',
            "co": 'filter userName co ".KKKKK"',
            "sw": 'filter emails.value sw "…"',
        }
        for kind in kinds:
            spec = paths_script(f"{kind}-{users}", filter_paths(kind))
            self.scenario(
                f"{kind}{'10k' if users == self.a.small_users else '100k'}",
                f"{titles[kind]} ({label})",
                http={"us": spec, "peer": spec, "django": spec}
                if users == self.a.users
                else {"us": spec, "peer": spec},  # the django peer runs at full size only
                pg=(
                    ceiling.search(f"search_{kind}_{users}", kind, users),
                    lambda i, c: base_defines,
                ),
                note="" if kind == "eq" else "each value matches 10 users",
            )

    def full_scenarios(self, users: int) -> None:
        ceiling = self.ceiling
        defines = {"org": str(self.org_id)}
        seeds = iter(range(10_000, 20_000))
        ids = [str(dataset.user_id(self.rng.randrange(users))) for _ in range(5000)]

        def get_spec(t: Target) -> tuple[str, Any]:
            f = self.paths_file("get-user", t, [f"/Users/{u}" for u in ids])
            return "paths.lua", lambda i, c: [str(f), t.token, str(next(seeds))]

        self.scenario(
            "get_user",
            f"GET /Users/{{id}} ({users // 1000}k)",
            http={"us": get_spec, "peer": get_spec, "django": get_spec},
            pg=(ceiling.get_user(users), lambda i, c: defines),
        )
        self.get_scenarios(users, f"{users // 1000}k", ["eq", "co", "sw"])

        run_tag = uuid.uuid4().hex[:6]

        def post_spec(t: Target) -> tuple[str, Any]:
            return "post_users.lua", lambda i, c: [
                t.prefix + "/Users",
                t.token,
                f"{run_tag}{t.key}{c}r{i}",
            ]

        try:
            post_pg: tuple[Path, Any] | None = (ceiling.post_user(), lambda i, c: defines)
            post_note = "pgbench: " + " ; ".join(ceiling.post_statements)
        except RuntimeError as exc:  # the write path changed beyond what ceiling.py records
            post_pg, post_note = None, f"no pgbench ceiling: {exc}"
            say(f"  ! POST /Users: {post_note}")
        self.scenario(
            "post_user",
            "POST /Users (durable + outbox)",
            http={"us": post_spec, "peer": post_spec, "django": post_spec},
            pg=post_pg,
            note=post_note,
        )

        pool = self.work / "paths" / "member-pool.txt"
        pool.parent.mkdir(parents=True, exist_ok=True)
        pool.write_text(
            "\n".join(str(dataset.user_id(i)) for i in range(dataset.TEAM_SIZE, users)) + "\n"
        )
        team = dataset.group_id(dataset.TEAM_GROUP_NAME)

        def patch_spec(t: Target) -> tuple[str, Any]:
            return "patch_member.lua", lambda i, c: [
                f"{t.prefix}/Groups/{team}",
                t.token,
                str(pool),
                str(self.offsets["us" if t.key == "us1" else t.key]),
            ]

        runs_per_c = 1 + self.a.repeats

        def pg_patch_defines(i: int, c: int) -> dict[str, str]:
            n = CONCURRENCY.index(c) * runs_per_c + i
            gid = dataset.group_id(f"{dataset.TEAM_GROUP_NAME} pg {n}")
            return {"org": str(self.org_id), "gid": str(gid), "c": "0"}

        # Not for the django peer: its PATCH add reads members' "value" as the integer primary
        # key (int(value): the SCIM ids sent here fail), and its PATCH answer and GET of a group
        # list every member (it has no excludedAttributes): 50,000 for get_group.
        self.scenario(
            "patch_member",
            "PATCH group: add 1 member",
            http={"us": patch_spec, "peer": patch_spec},
            pg=(ceiling.patch_member(), pg_patch_defines),
            note=f"group of {dataset.TEAM_SIZE:,}+ members; c=10 all hit one group (row lock)",
        )

        big = dataset.group_id(dataset.BIG_GROUP_NAME)

        def group_spec(t: Target) -> tuple[str, Any]:
            f = self.paths_file("get-group", t, [f"/Groups/{big}?excludedAttributes=members"])
            return "paths.lua", lambda i, c: [str(f), t.token, "1"]

        self.scenario(
            "get_group",
            f"GET {self.a.big_group // 1000}k-member group, no members",
            http={"us": group_spec, "peer": group_spec},
            pg=(ceiling.get_group(), lambda i, c: {**defines, "gid": str(big)}),
        )
        if self.wanted("patch_1000"):
            self.patch_1000(users)

    def patch_1000(self, users: int) -> None:
        """PATCH adding 1,000 new members to the 50,000-member group: time per request."""
        n = self.a.patch1000_n
        if not self.has_time(self.a.patch1000_seconds + n + 10, "PATCH adding 1,000 members"):
            return
        big = dataset.group_id(dataset.BIG_GROUP_NAME)
        result: dict[str, Any] = {"n": n, "members_per_request": 1000}
        for t in (self.us, self.peer):
            if t is None:
                continue
            host, port = t.base.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            times = []
            statuses = []
            try:
                cap = time.monotonic() + self.a.patch1000_seconds
                for j in range(n):
                    first = self.a.big_group + j * 1000
                    if first + 1000 > users or time.monotonic() > cap:
                        break
                    body = json.dumps(
                        dataset.add_members_body(
                            [str(dataset.user_id(i)) for i in range(first, first + 1000)]
                        )
                    )
                    started = time.perf_counter()
                    conn.request(
                        "PATCH",
                        f"{t.prefix}/Groups/{big}",
                        body=body,
                        headers={
                            "Authorization": f"Bearer {t.token}",
                            "Content-Type": "application/scim+json",
                        },
                    )
                    resp = conn.getresponse()
                    resp.read()
                    times.append((time.perf_counter() - started) * 1000)
                    statuses.append(resp.status)
            finally:
                conn.close()
            ok = all(s in (200, 204) for s in statuses)
            self.check(ok, f"{t.key}: PATCH +1,000 members answered {sorted(set(statuses))}")
            result[t.key] = {
                "n": len(times),
                "ms_median": sorted(times)[len(times) // 2] if times else None,
                "ms_min": min(times, default=None),
                "ms_max": max(times, default=None),
                "times_ms": times,
            }
        self.extra["patch_1000"] = result
        us, peer = result.get("us") or {}, result.get("peer") or {}
        say(
            f"  PATCH +1,000 members to the {self.a.big_group:,}-member group (median of {n}):"
            f" us {us.get('ms_median') or float('nan'):.1f} ms,"
            f" peer {peer.get('ms_median') or float('nan'):.1f} ms"
        )

    # -- profiles -----------------------------------------------------------------------------
    def profile(self, users: int) -> None:
        if not self.a.profile or self.us is None:
            return
        if not pyspy.available():
            self.skipped.append("profiles: py-spy is not installed in the service environment")
            return
        us = self.us
        ids = self.work / "paths" / "us-get-user.txt"
        cases = {
            "get_user": ("paths.lua", [str(ids), us.token, "77"]),
            "post_user": (
                "post_users.lua",
                [us.prefix + "/Users", us.token, "prof" + uuid.uuid4().hex[:6]],
            ),
        }
        for name, (script, args) in cases.items():
            if not self.has_time(15, f"profile {name}"):
                return
            raw = self.work / f"profile-{name}.txt"
            spy = pyspy.start(us.pid or 0, 8, raw)
            time.sleep(0.5)
            run = loadgen.wrk(us.base, script, args, connections=10, duration=8)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
            if raw.exists():
                summary = pyspy.summarize(raw)
                summary["rps_while_profiled"] = run.rps
                summary["raw"] = str(raw.relative_to(ROOT))
                self.profiles[name] = summary

    # -- events ----------------------------------------------------------------------------
    def events(self) -> None:
        if self.wanted("webhook") and self.has_time(
            45 + 2 * self.a.webhook_seconds, "webhook latency"
        ):
            # Exactly the asked rate (issue 15: 1,000 events/s through POST /Users), whatever
            # POST c=10 measured: what the server sustained is reported beside it.
            rate = float(self.a.webhook_rate)
            say(
                f"  webhook: POST /Users at {rate:.0f}/s for {self.a.webhook_seconds}s, "
                f"publisher poll {self.a.webhook_poll}s"
            )
            try:
                self.extra["webhook"] = events_bench.webhook(
                    self.dsn,
                    self.token,
                    self.org_id,
                    self.logs,
                    rate=rate,
                    sql_rate=self.a.webhook_rate,
                    seconds=self.a.webhook_seconds,
                    poll=self.a.webhook_poll,
                    source=self.source,
                )
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                self.extra["webhook"] = {"error": str(exc)[:500]}
                say(f"  ! webhook scenario failed: {exc}")
        if self.wanted("longpoll") and self.has_time(40, "long-poll latency"):
            say("  long poll: GET /admin/v1/events?wait=30, 400 events, 50 idle waiters")
            try:
                self.extra["longpoll"] = events_bench.long_poll(
                    self.dsn,
                    self.org_id,
                    self.logs,
                    samples=400,
                    idle_waiters=50,
                    source=self.source,
                )
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                self.extra["longpoll"] = {"error": str(exc)[:500]}
                say(f"  ! long-poll scenario failed: {exc}")
        if self.wanted("nats") and self.has_time(30, "claim loop"):
            # First, on the same table sizes the relay will see (it deletes its events after).
            self.extra["claim_loop"] = asyncio.run(
                events_bench.claim_loop(
                    self.dsn,
                    self.org_id,
                    events=self.a.nats_events,
                    source=self.source,
                )
            )
        nats_url = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
        host_port = nats_url.split("://", 1)[-1].split(",")[0]
        host, _, port = host_port.rpartition(":")
        if self.wanted("nats") and self.has_time(60, "NATS relay"):
            if not procs.tcp_open(host or "127.0.0.1", int(port or 4222)):
                self.skipped.append(f"NATS relay: no NATS server answers at {nats_url}")
                say(f"  ! {self.skipped[-1]}")
            else:
                try:
                    self.extra["nats"] = asyncio.run(
                        events_bench.nats_relay(
                            self.dsn,
                            self.org_id,
                            self.logs,
                            events=self.a.nats_events,
                            nats_url=nats_url,
                            source=self.source,
                        )
                    )
                except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
                    self.extra["nats"] = {"error": str(exc)[:500]}
                    say(f"  ! NATS scenario failed: {exc}")

    # -- the whole run ------------------------------------------------------------------------
