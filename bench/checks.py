"""Correctness checks made before measuring: the loader stores what the API stores, and both
servers answer the benchmark's requests the same way."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import dataset
import loader
from common import Target, http_json, say

from scim_service.events import envelope


class Checks:
    """Mixed into Bench (run.py)."""

    checks: list[str]
    us: Target | None
    us1: Target | None
    peer: Target | None
    django: Target | None
    token: str
    dsn: str
    org_id: uuid.UUID
    source: str
    rng: Any

    # -- correctness checks -----------------------------------------------------------------
    def check(self, ok: bool, what: str) -> None:
        self.checks.append(("ok    " if ok else "FAILED ") + what)
        if not ok:
            say(f"  ! check failed: {what}")

    def check_fidelity(self) -> None:
        """A user POSTed through the API is stored exactly as the loader stores users."""
        assert self.us is not None
        body = dataset.post_body("fidelity.check@example.com")
        status, created = http_json("POST", self.us.url("/Users"), self.token, body)
        if status != 201:
            self.check(False, f"POST /Users for the loader check answered {status}: {created}")
            return

        async def read() -> tuple[Any, Any]:
            conn = await asyncpg.connect(self.dsn)
            try:
                row = await conn.fetchrow(
                    "SELECT attrs::text AS attrs, version, event_seq FROM users WHERE id = $1",
                    uuid.UUID(created["id"]),
                )
                payload = await conn.fetchval(
                    "SELECT payload FROM events WHERE subject = $1", uuid.UUID(created["id"])
                )
                return row, payload
            finally:
                await conn.close()

        row, payload = asyncio.run(read())
        expected = loader.stored_user_attrs(body)
        same = row is not None and json.loads(row["attrs"]) == expected
        same = same and row["version"] == 1 and row["event_seq"] == 1
        event = json.loads(payload) if payload else {}
        reference = envelope.encode(
            envelope.user_provisioned(self.org_id, uuid.UUID(created["id"]), expected),
            event_id=uuid.uuid4(),
            source=self.source,
            time=datetime.now(UTC),
            org_id=self.org_id,
            version=1,
        )
        shape = json.loads(reference)
        same_event = event.get("type") == "user.provisioned" and sorted(event) == sorted(shape)
        same_event = same_event and sorted(event.get("data", {})) == sorted(shape["data"])
        self.check(
            same and same_event,
            "the loader writes the attrs, version and event the API writes for a POST",
        )

    def check_filters(self, users: int, kinds: list[str]) -> None:
        targets = [t for t in (self.us, self.us1, self.peer, self.django) if t is not None]
        for kind in kinds:
            for _ in range(3):
                if kind == "eq":
                    f, expected = dataset.eq_filter(self.rng.randrange(users)), 1
                elif kind == "co":
                    f, expected = dataset.co_filter(self.rng.randrange(users // 10)), 10
                else:
                    f, expected = dataset.sw_filter(self.rng.randrange(users // 10)), 10
                totals = []
                for t in targets:
                    q = urllib.parse.quote(f, safe="")
                    status, body = http_json("GET", t.url(f"/Users?filter={q}"), t.token)
                    totals.append(
                        (
                            t.key,
                            status,
                            body.get("totalResults") if isinstance(body, dict) else None,
                        )
                    )
                ok = all(s == 200 and n == expected for _, s, n in totals)
                self.check(ok, f"{users:,} users, {f}: totalResults {totals} (expected {expected})")

    def check_get(self, users: int) -> None:
        for t in (self.us, self.us1, self.peer, self.django):
            if t is None:
                continue
            i = self.rng.randrange(users)
            status, body = http_json("GET", t.url(f"/Users/{dataset.user_id(i)}"), t.token)
            ok = status == 200 and isinstance(body, dict)
            ok = ok and body.get("userName") == dataset.user_name(i)
            self.check(ok, f"{t.key}: GET /Users/<user {i}> answers 200 with its userName")
            if t.key == "django":
                continue  # get_group is not run on it (it would list all 50,000 members)
            gid = dataset.group_id(dataset.BIG_GROUP_NAME)
            status, body = http_json(
                "GET", t.url(f"/Groups/{gid}?excludedAttributes=members"), t.token
            )
            ok = status == 200 and isinstance(body, dict) and "members" not in body
            ok = ok and body.get("displayName") == dataset.BIG_GROUP_NAME
            self.check(ok, f"{t.key}: GET the 50,000-member group without members answers 200")

    def check_post_peers(self) -> None:
        """Each peer creates a user on POST /Users, and a GET of the id it answers finds it."""
        for t in (self.peer, self.django):
            if t is None:
                continue
            name = f"check.{t.key}.{uuid.uuid4().hex[:8]}@example.com"
            status, created = http_json("POST", t.url("/Users"), t.token, dataset.post_body(name))
            uid = created.get("id") if isinstance(created, dict) else None
            ok = status == 201 and isinstance(created, dict) and created.get("userName") == name
            if ok:
                status, body = http_json("GET", t.url(f"/Users/{uid}"), t.token)
                ok = status == 200 and isinstance(body, dict) and body.get("userName") == name
            self.check(ok, f"{t.key}: POST /Users answers 201 and the new user is found by its id")
