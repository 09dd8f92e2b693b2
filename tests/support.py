"""Helpers that more than one test file uses: SCIM calls, waiting, a webhook receiver, real
`scim-service` processes, a locked table. tests/README.md says which folder is for what; the
fixtures every folder shares are in tests/conftest.py. Test modules import from here, never
from each other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from scim_service.config import Settings
from scim_service.events import envelope
from scim_service.events.emitter import Emitter
from scim_service.signing import generate_secret, generate_signing_key, verify_v1a
from scim_service.store import outbox
from scim_service.store.db import connect
from tests.conftest import REPO, Tenant, with_database

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# The documented shape of every event type, one JSON file each (README "Consuming events").
GOLDEN = REPO / "tests" / "golden_events"
README = (REPO / "README.md").read_text("utf-8")


# --- SCIM requests and what they leave behind -------------------------------------------------


async def create_user(client: Any, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    body = {
        "userName": "bjensen@example.com",
        "externalId": "00u1",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
        "displayName": "Babs",
        "emails": [
            {"value": "home@jensen.org", "type": "home"},
            {"value": "bjensen@example.com", "type": "work", "primary": True},
        ],
        **extra,
    }
    resp = await client.post("/scim/v2/Users", json=body, headers=tenant.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json(content_type=None)


async def patch_user(
    client: Any, tenant: Tenant, user_id: str, *ops: dict[str, Any], status: int = 200
) -> None:
    resp = await client.patch(
        f"/scim/v2/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": list(ops)},
        headers=tenant.headers,
    )
    assert resp.status == status, await resp.text()


async def make_user(client: Any, tenant: Tenant, name: str) -> str:
    resp = await client.post("/scim/v2/Users", json={"userName": name}, headers=tenant.headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json(content_type=None))["id"])


async def retitle(client: Any, tenant: Tenant, user_id: str, title: str) -> None:
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": title}],
    }
    resp = await client.patch(f"/scim/v2/Users/{user_id}", json=body, headers=tenant.headers)
    assert resp.status == 200


async def new_group(client: Any, tenant: Tenant, name: str) -> str:
    resp = await client.post("/scim/v2/Groups", json={"displayName": name}, headers=tenant.headers)
    assert resp.status == 201
    return str((await resp.json(content_type=None))["id"])


# asyncpg's own type introspection (first use of a type on a connection) does not count.
_INTERNAL_QUERIES = ("typeinfo_tree", "set_config('jit'")


async def recorded_connection(database_url: str) -> tuple[asyncpg.Connection, list[str]]:
    """A new connection and the list every statement it sends is appended to (asyncpg's own
    introspection left out): to count the statements of one operation."""
    conn = await connect(database_url)
    statements: list[str] = []
    conn.add_query_logger(
        lambda r: (
            None if any(m in r.query for m in _INTERNAL_QUERIES) else statements.append(r.query)
        )
    )
    return conn, statements


def add(ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


async def bulk_users(
    db: asyncpg.Connection, org_id: uuid.UUID, n: int, prefix: str = "bulk"
) -> list[str]:
    rows = await db.fetch(
        """INSERT INTO users (id, org_id, attrs)
           SELECT gen_random_uuid(), $1, jsonb_build_object('userName', $3 || i || '@example.com')
           FROM generate_series(1, $2) AS i RETURNING id""",
        org_id,
        n,
        prefix,
    )
    return [str(r["id"]) for r in rows]


def readme_example(name: str) -> str:
    """The Python block of the README between `<!-- name -->` and `<!-- /name -->`."""
    block = README.split(f"<!-- {name} -->", 1)[1].split(f"<!-- /{name} -->")[0]
    return block.split("```python", 1)[1].rsplit("```", 1)[0]


def consumer_example() -> dict[str, Any]:
    """The README's consumer (`Directory`, `user_state`) and its digest check (`copy_digest`,
    `verify`), run as the README shows them."""
    namespace: dict[str, Any] = {}
    for name in ("consumer-example", "digest-example"):
        exec(compile(readme_example(name), "README.md", "exec"), namespace)
    return namespace


async def scim_400(resp: Any, scim_type: str | None = None) -> dict[str, Any]:
    assert resp.status == 400, await resp.text()
    body = await resp.json(content_type=None)
    assert body["status"] == "400"
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    if scim_type is not None:
        assert body["scimType"] == scim_type, body
    assert "Traceback" not in body["detail"] and "asyncpg" not in body["detail"]
    return dict(body)


async def snapshot(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Everything a request could have changed: rows and versions of every table it writes."""
    return tuple(
        await db.fetchrow(
            """SELECT (SELECT count(*) FROM users), (SELECT coalesce(sum(version), 0) FROM users),
                      (SELECT count(*) FROM groups), (SELECT count(*) FROM group_members),
                      (SELECT count(*) FROM events), (SELECT count(*) FROM scim_tokens),
                      (SELECT count(*) FROM organizations)"""
        )
        or ()
    )


async def entries(
    client: Any, org: uuid.UUID, admin: dict[str, str], *, count: int, query: str = ""
) -> list[dict[str, Any]]:
    """The org's log once it holds `count` entries (the writer batches every ~0.2 s)."""
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        resp = await client.get(f"/admin/v1/orgs/{org}/activity{query}", headers=admin)
        assert resp.status == 200
        found = (await resp.json())["entries"]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(found)} entries: {found}")


def shape(value: Any) -> Any:
    """Replace values that differ per run (ids, times) with placeholders, keep everything else."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, str):
        try:
            uuid.UUID(value)
            return "<uuid>"
        except ValueError:
            pass
        if len(value) >= 20 and value[4] == "-" and value[10] == "T":
            return "<time>"
    return value


# --- events written directly ------------------------------------------------------------------


EMITTER = Emitter("http://scim.test/scim/v2", ("log",))


async def write_event(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    subject: uuid.UUID,
    version: int,
    sinks: tuple[str, ...] = ("log",),
) -> None:
    """One event of `subject` at `version` for `sinks`, written on `conn` (in its transaction,
    if any)."""
    event = envelope.user_provisioned(org_id, subject, {"userName": f"u-{subject}-{version}"})
    emitter = EMITTER if sinks == ("log",) else Emitter("http://scim.test/scim/v2", sinks)
    await outbox.insert_events(conn, emitter.rows(org_id, [event], [version]))


# --- waiting ----------------------------------------------------------------------------------


async def until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def listening(db: asyncpg.Connection, channel: str, timeout: float = 15.0) -> None:
    """Until a backend of this test's database LISTENs on `channel` (the publisher's wake-up,
    the token cache's invalidation): instead of sleeping while it connects."""

    async def up() -> bool:
        found = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = $1",
            f'LISTEN "{channel}"',
        )
        return bool(found)

    await until(up, timeout, f"a LISTEN on {channel}")


async def outbox_settled(db: asyncpg.Connection, timeout: float = 15.0) -> None:
    """Until every event of a resource the guard does not hold has been delivered to every
    sink (delivered rows leave the outbox): what is left waits for an operator's decision.
    The barrier for "nothing wrongly released arrived", instead of a sleep."""
    sql = (
        "SELECT count(*) FROM outbox o"
        " WHERE NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.subject = o.subject)"
    )

    async def drained() -> bool:
        return bool(await db.fetchval(sql) == 0)

    await until(drained, timeout, "the outbox drained")


# --- a webhook receiver and a publisher that delivers to it -----------------------------------


SECRET = generate_secret()


SIGNING_KEY, PUBLIC_KEY = generate_signing_key()


def verified(
    body: bytes, headers: dict[str, str], secret: str = SECRET, public_key: str = PUBLIC_KEY
) -> Any:
    """The delivered JSON once both signatures check: v1 (HMAC) with the standardwebhooks
    library (raises when invalid), v1a (Ed25519) with the public key."""
    payload = Webhook(secret).verify(body, headers)
    assert verify_v1a(
        public_key,
        headers["webhook-id"],
        headers["webhook-timestamp"],
        body,
        headers["webhook-signature"],
    ), "the v1a signature does not verify"
    return payload


class Receiver:
    """A webhook endpoint that records deliveries; `respond` decides each answer."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []  # every request, in arrival order
        self.accepted: list[dict[str, Any]] = []  # the 2xx-answered ones
        self.respond: Callable[[dict[str, Any]], Awaitable[int]] = self._ok
        self.url = ""

    async def _ok(self, request: dict[str, Any]) -> int:
        return 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry = {"headers": dict(request.headers), "body": body, "event": json.loads(body)}
        self.received.append(entry)
        status = await self.respond(entry)
        if 200 <= status < 300:
            self.accepted.append(entry)
        return web.Response(status=status)

    def versions(self, entries: list[dict[str, Any]] | None = None) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for e in self.accepted if entries is None else entries:
            out.setdefault(e["event"]["subject"], []).append(e["event"]["resourceversion"])
        return out


async def start_receiver(aiohttp_server: Any) -> Receiver:
    """A Receiver listening on 127.0.0.1 (its `url`)."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = await aiohttp_server(app)
    rec.url = str(server.make_url("/hook"))
    return rec


@pytest.fixture(name="receiver")
async def fixture_receiver(aiohttp_server: Any) -> Receiver:
    return await start_receiver(aiohttp_server)


def fast_delivery(settings: Settings, **overrides: Any) -> Settings:
    """The publisher on, with retries and polls of tens of milliseconds (tests, not hours)."""
    values: dict[str, Any] = {
        "publisher_enabled": True,
        "webhook_timeout": 5.0,
        "events_retry_schedule": (0.05, 0.1, 0.2),
        "events_max_attempts": 50,
        "publisher_poll_interval": 0.05,
        "shutdown_grace": 5.0,
    }
    values.update(overrides)
    return msgspec.structs.replace(settings, **values)


def publisher_settings(settings: Settings, receiver: Receiver, **overrides: Any) -> Settings:
    """fast_delivery with the configured webhook sink pointing at `receiver`."""
    values: dict[str, Any] = {
        "webhook_url": receiver.url,
        "webhook_secrets": (SECRET,),
        "webhook_signing_key": SIGNING_KEY,
    }
    values.update(overrides)
    return fast_delivery(settings, **values)


ENDPOINT_KEY = "k" * 40


def endpoint_settings(settings: Settings, **overrides: Any) -> Settings:
    """fast_delivery for webhook endpoints managed through the API (loopback allowed)."""
    values: dict[str, Any] = {
        "webhook_endpoint_key": ENDPOINT_KEY,
        "webhook_allowed_networks": ("127.0.0.0/8",),
    }
    values.update(overrides)
    return fast_delivery(settings, **values)


async def create_endpoint(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post("/admin/v1/endpoints", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def pending(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM outbox WHERE NOT dead"))


# --- scim-service processes -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server to bind, or to be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without any SCIM_* or DATABASE_URL of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SCIM_", "DATABASE_URL"))}


def service_env(**extra: str) -> dict[str, str]:
    """The environment of a `scim-service` process: `clean_env()`, JSON logs, then `extra`."""
    env = clean_env()
    env |= {"SCIM_LOG_FORMAT": "json"}
    env |= extra
    return env


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_service",
        *(args or ("serve",)),
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@contextlib.asynccontextmanager
async def serve_process(
    database_url: str, **env: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`scim-service serve` against `database_url` on a free port of 127.0.0.1 with `env`
    (not yet ready): the process and its base URL; killed on the way out if still running."""
    port = free_port()
    proc = await start(service_env(DATABASE_URL=database_url, SCIM_PORT=str(port), **env))
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_ready(
    base: str,
    timeout: float = 30,
    *,
    exited: Callable[[], bool] = lambda: False,
    what: str = "the service",
    log: Callable[[], str] = lambda: "",
    interval: float = 0.1,
) -> None:
    """Until `base`/readyz answers 200, asked every `interval` seconds. `exited` says the process
    is gone (fail at once, not at the timeout); `log` is what to show of its output when it fails."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if exited():
                raise AssertionError(f"{what} exited:\n{log()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(interval)
    raise AssertionError(f"{what} never became ready" + (f":\n{tail}" if (tail := log()) else ""))


async def refused(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as resp:
            await resp.read()
            return False
    except aiohttp.ClientConnectionError:
        return True


def cli(
    database_url: str | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One CLI command run to its end, as an operator runs it (`DATABASE_URL` when given)."""
    full_env = clean_env()
    if database_url:
        full_env["DATABASE_URL"] = database_url
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "scim_service", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --- locks ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lock_table(database_url: str, table: str) -> AsyncIterator[None]:
    """`table` locked ACCESS EXCLUSIVE by a transaction on a connection of its own until the
    block ends (then rolled back): whatever needs the table waits meanwhile."""
    locker = await asyncpg.connect(database_url)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        await tx.rollback()
    finally:
        await locker.close()


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[str, web.Application]]:
    """`create_app(settings)` listening on 127.0.0.1 the way `serve` runs it (its runner,
    `server.make_runner`: a handler is not cancelled when its client hangs up, the slow-client
    bounds apply), unlike the `client` fixture's test server. Yields (base URL, app)."""
    from scim_service.app import create_app
    from scim_service.server import api_site, listen_socket, make_runner

    app = create_app(settings)
    runner = make_runner(app, settings)
    await runner.setup()
    try:
        sock = listen_socket("127.0.0.1", 0, "test")
        await api_site(runner, sock, settings).start()
        port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def empty_database(pg_server: str, name: str) -> AsyncIterator[str]:
    """A database `name` of its own with no schema at all (not from the template): its DSN;
    dropped on the way out."""
    conn = await asyncpg.connect(pg_server)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield with_database(pg_server, name)
    finally:
        conn = await asyncpg.connect(pg_server)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
