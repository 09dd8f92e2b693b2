"""A live `scim-service serve` for the fuzz tests, and the checks every answer must pass.

The server is the real process (`python -m scim_service serve`) on a real TCP port of
127.0.0.1, on its own database cloned from the test template, with the admin API switched on.
Its JSON log goes to a file, so a 5xx can be traced to the exception behind it by request id.
Fuzzers call it with blocking `requests` (schemathesis's transport), so no event loop is shared.

Every answer is checked by `check_answer`: no status >= 500 (except `KNOWN_5XX`, below), no
traceback or internals in the body, every error an RFC 7644 §3.12 body whose `status` is the
HTTP status as a string, and `application/scim+json` on SCIM paths.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests

from tests.conftest import _SESSION, ADMIN_TOKEN, REPO, _counter, with_database
from tests.support import free_port

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_TYPES = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
}
# Internals that must never reach a client: tracebacks, driver and module names, file paths.
# Specific enough that no generated input echoed back in a body can match by chance.
_INTERNALS = re.compile(
    r"Traceback|asyncpg\.|msgspec\.[A-Z]|site-packages|scim_service/\w+|File \"/|/usr/lib/python"
    r"|\w+Error: |Exception: "
)
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0


def examples(default: int) -> int:
    """Generated cases per fuzz target: `default` in CI, SCIM_FUZZ_EXAMPLES=N for a long run."""
    raw = os.environ.get("SCIM_FUZZ_EXAMPLES")
    return max(1, int(raw)) if raw else default


# --- known 5xx classes ----------------------------------------------------------------------
#
# Each entry: a name, the exception type(s) the server logs for it, and a test of the request.
# A 5xx is excused only when both match; any other 5xx fails the fuzz tests. Empty: the classes
# issue 12 listed (NUL and out-of-range values in filters, deep JSON, NUL in admin bodies) are
# all 400s now, and test_fuzz_scim.py keeps a reproduction of each.


@dataclass(frozen=True)
class KnownBug:
    name: str
    exceptions: tuple[str, ...]
    applies: Callable[[str, str, str], bool]  # (method, path, request text) -> bool


KNOWN_5XX: tuple[KnownBug, ...] = ()


@dataclass
class Tally:
    """What a fuzz module sent and got, printed at the end of the module (`pytest -s`)."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_target: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    # Requests whose request line is longer than the HTTP parser takes (a plain 400 from aiohttp).
    parser_refused: int = 0
    started: float = field(default_factory=time.monotonic)

    def report(self, title: str) -> str:
        by_class = Counter(f"{s // 100}xx" for s in self.statuses.elements())
        lines = [
            f"{title}: {self.requests} requests over {len(self.per_target)} targets in "
            f"{time.monotonic() - self.started:.1f} s; statuses {dict(sorted(by_class.items()))}"
            f"; 5xx {sum(n for s, n in self.statuses.items() if s >= 500)}",
        ]
        for name, n in self.known.items():
            lines.append(f"  known 5xx, excused until its fix is merged: {n} x {name}")
        if self.parser_refused:
            lines.append(
                f"  request line over 8,190 bytes, 400 from the HTTP parser: {self.parser_refused}"
            )
        return "\n".join(lines)


@dataclass
class Live:
    """The running server and what the fuzzers need to reach past authentication and 404s."""

    base: str
    log_path: Path
    scim_token: str
    org_id: str
    admin_org_id: str
    user_ids: list[str]
    group_ids: list[str]
    admin_token_ids: list[str]
    session: requests.Session
    tally: Tally = field(default_factory=Tally)
    # Scoped admin credentials (issue 22) for the spare organization: scope → credential.
    scoped: dict[str, str] = field(default_factory=dict)

    def headers(self, path: str, scope: str = "operator") -> dict[str, str]:
        token = ADMIN_TOKEN if path.startswith("/admin/") else self.scim_token
        if path.startswith("/admin/") and scope != "operator":
            token = self.scoped[scope]
        return {"Authorization": f"Bearer {token}"}

    def call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> requests.Response:
        headers = {**self.headers(path), "Content-Type": "application/scim+json"}
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        return self.session.request(
            method,
            self.base + path,
            data=data,
            params=params,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
        )

    def exceptions_of(self, request_id: str) -> list[str]:
        """The exception type names the server logged for one request (by X-Request-ID)."""
        found: list[str] = []
        deadline = time.monotonic() + 2.0
        while not found and time.monotonic() < deadline:
            for line in self.log_path.read_text("utf-8", errors="replace").splitlines():
                if request_id not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("request_id") == request_id and entry.get("exception"):
                    found += re.findall(
                        r"^(?:\w+\.)*(\w+(?:Error|Exception))\b", entry["exception"], re.M
                    )
            if not found:
                time.sleep(0.05)
        return found


def _database(pg_server: str, template_db: str, name: str, *, create: bool) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            if create:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
            else:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in {START_TIMEOUT:g}s:\n{log_path.read_text()[-4000:]}")


def _ok(resp: requests.Response, status: int) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    return resp.json() if resp.content else None


def seed_user(live: Live, n: int | str) -> str:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"seed{n}-{uuid.uuid4().hex[:8]}@example.com",
        "name": {"givenName": "Seed", "familyName": str(n)},
        "emails": [{"value": f"seed{n}@example.com", "type": "work", "primary": True}],
        "active": True,
    }
    user_id: str = _ok(live.call("POST", "/scim/v2/Users", body=body), 201)["id"]
    return user_id


def seed_group(live: Live, n: int | str, members: list[str]) -> str:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": f"seed group {n} {uuid.uuid4().hex[:8]}",
        "members": [{"value": m} for m in members],
    }
    group_id: str = _ok(live.call("POST", "/scim/v2/Groups", body=body), 201)["id"]
    return group_id


def replace_deleted(live: Live, path: str, status: int) -> None:
    """A fuzzer deleted a seed resource: put a fresh one in its place in the pool."""
    if status != 204:
        return
    for ids, make in (
        (live.user_ids, lambda: seed_user(live, "r")),
        (live.group_ids, lambda: seed_group(live, "r", live.user_ids[:1])),
    ):
        for i, rid in enumerate(ids):
            if path.endswith("/" + rid):
                ids[i] = make()
                return


@pytest.fixture(name="live", scope="module")
def fixture_live(pg_server: str, template_db: str, tmp_path_factory: Any) -> Iterator[Live]:
    """`scim-service serve` on 127.0.0.1 with two organizations (one for SCIM, one the admin
    fuzzer may switch off and revoke tokens of), seed users and groups, and both tokens."""
    name = f"scim_fuzz_{_SESSION}_{next(_counter)}"
    _database(pg_server, template_db, name, create=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": with_database(pg_server, name),
        "SCIM_HOST": "127.0.0.1",
        "SCIM_PORT": str(port),
        "SCIM_PUBLIC_URL": base,
        "SCIM_ADMIN_TOKEN": ADMIN_TOKEN,
        "SCIM_PUBLISHER_ENABLED": "false",
        "SCIM_METRICS_ENABLED": "true",
        "SCIM_LOG_FORMAT": "json",
        "SCIM_LOG_LEVEL": "warning",
        "SCIM_SHUTDOWN_GRACE": "2",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scim_service", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    session = requests.Session()
    try:
        _wait_ready(base, proc, log_path)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        org = _ok(session.post(f"{base}/admin/v1/orgs", json={"name": "fuzz"}, headers=admin), 201)
        target = _ok(
            session.post(f"{base}/admin/v1/orgs", json={"name": "fuzz-admin"}, headers=admin), 201
        )
        token = _ok(
            session.post(f"{base}/admin/v1/orgs/{org['id']}/tokens", json={}, headers=admin), 201
        )["token"]
        spare = [
            _ok(
                session.post(f"{base}/admin/v1/orgs/{target['id']}/tokens", json={}, headers=admin),
                201,
            )["info"]["id"]
            for _ in range(3)
        ]
        live = Live(base, log_path, token, org["id"], target["id"], [], [], spare, session)
        for scope in ("org:admin", "events:read"):
            live.scoped[scope] = _ok(
                session.post(
                    f"{base}/admin/v1/credentials",
                    json={"scope": scope, "org_ids": [target["id"]]},
                    headers=admin,
                ),
                201,
            )["token"]
        live.user_ids.extend(seed_user(live, i) for i in range(6))
        live.group_ids.extend(seed_group(live, i, live.user_ids[i : i + 3]) for i in range(3))
        yield live
    finally:
        session.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        _database(pg_server, template_db, name, create=False)


# --- the checks ---------------------------------------------------------------------------


def check_answer(
    live: Live,
    method: str,
    path: str,
    request_text: str,
    status: int,
    content_type: str,
    body: bytes,
    request_id: str | None,
) -> str | None:
    """Fail (AssertionError) on a bad answer; return a known bug's name when a 5xx is one of
    KNOWN_5XX (the caller counts it), else None."""
    live.tally.requests += 1
    live.tally.statuses[status] += 1
    text = body.decode("utf-8", errors="replace")
    shown = f"{method} {path} -> {status} {content_type}\nrequest: {request_text[:600]!r}\n"
    leaked = _INTERNALS.search(text)
    assert leaked is None, f"internals in the body ({leaked.group(0)!r}):\n{shown}{text[:800]}"
    if status >= 500:
        exceptions = live.exceptions_of(request_id) if request_id else []
        decoded = urllib.parse.unquote_plus(request_text)
        for bug in KNOWN_5XX:
            if set(exceptions) & set(bug.exceptions) and bug.applies(method, path, decoded):
                live.tally.known[bug.name] += 1
                _check_error_body(status, content_type, text, shown, path)
                return bug.name
        raise AssertionError(f"server error {status} ({', '.join(exceptions)}):\n{shown}{text}")
    if status >= 400:
        _check_error_body(status, content_type, text, shown, path)
    elif body and path.startswith("/scim/"):
        assert content_type == "application/scim+json", shown
    return None


def _check_error_body(status: int, content_type: str, text: str, shown: str, path: str) -> None:
    want = "application/scim+json" if path.startswith("/scim/") else "application/json"
    assert content_type == want, f"error content type {content_type!r}, expected {want}\n{shown}"
    try:
        error = json.loads(text)
    except ValueError:
        raise AssertionError(f"error body is not JSON:\n{shown}{text[:800]}") from None
    assert isinstance(error, dict), shown + text
    assert error.get("schemas") == [ERROR_URN], shown + text
    assert error.get("status") == str(status), (
        f"status must be the string {status!r}\n{shown}{text}"
    )
    assert isinstance(error.get("detail"), str), shown + text
    if "scimType" in error:
        assert error["scimType"] in SCIM_TYPES, shown + text
        assert status == 400 or (status == 409 and error["scimType"] == "uniqueness"), shown + text
