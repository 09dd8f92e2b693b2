"""Test database and app fixtures.

Where the PostgreSQL server comes from, in order: SCIM_TEST_DATABASE_URL (or DATABASE_URL);
a testcontainers PostgreSQL when a Docker engine answers; else the embedded server. The schema
is built once per session in a template database; every test gets a fresh
`CREATE DATABASE ... TEMPLATE`, so no test ever sees another's rows.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.provisioning import tenants
from scim_service.store import migrate
from scim_service.store.db import connect

ADMIN_TOKEN = "admin-test-token-0123456789"
REPO = Path(__file__).resolve().parents[1]


def with_database(dsn: str, database: str) -> str:
    """The same server DSN pointing at another database (works for host= socket DSNs too)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=5, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(name="pg_server", scope="session")
def fixture_pg_server() -> Iterator[str]:
    """A DSN for a PostgreSQL server on which the tests may create databases."""
    dsn = os.environ.get("SCIM_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if dsn:
        yield dsn
        return
    if _docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    from scim_service.embedded import EmbeddedPostgres

    data = Path(tempfile.mkdtemp(prefix="scim-test-pg-"))
    os.chmod(data, 0o755)
    server = EmbeddedPostgres(data)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


_SESSION = uuid.uuid4().hex[:8]
_counter = itertools.count()


@pytest.fixture(name="template_db", scope="session")
def fixture_template_db(pg_server: str) -> Iterator[str]:
    """Name of a database holding the migrated schema, used as the template for each test."""
    name = f"scim_tmpl_{_SESSION}"

    async def create() -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await connect(with_database(pg_server, name))
        try:
            await migrate.migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"scim_%_{_SESSION}%"
            )
            for row in rows:
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


@pytest.fixture(name="database_url")
async def fixture_database_url(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"scim_t_{_SESSION}_{next(_counter)}"
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await conn.close()
    yield with_database(pg_server, name)
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(name="settings")
def fixture_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        log_format="json",
        public_url_override="http://scim.test",
        db_pool_min=1,
        db_pool_max=10,
        # Tests of the publisher start it themselves; other apps only write events.
        publisher_enabled=False,
        # Tests change tokens behind the app's back and expect the next request to see it;
        # the cache and its invalidation are tested on their own (integration/test_auth_cache.py).
        auth_cache_seconds=0,
    )


@pytest.fixture(name="db")
async def fixture_db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, for arranging and checking rows."""
    conn = await connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture(name="client")
async def fixture_client(settings: Settings, aiohttp_client: Any) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(settings))


class Tenant(msgspec.Struct):
    """An organization with a working SCIM token, and request headers that use it."""

    org_id: uuid.UUID
    token: str
    token_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_tenant(conn: asyncpg.Connection, name: str = "acme") -> Tenant:
    org = await tenants.create_org(conn, name)
    new = await tenants.create_token(conn, org.id, description="test")
    return Tenant(org.id, new.token, new.info.id)


@pytest.fixture(name="tenant")
async def fixture_tenant(db: asyncpg.Connection) -> Tenant:
    return await make_tenant(db)


@pytest.fixture(name="admin_headers")
def fixture_admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(name="nats_url", scope="session")
def fixture_nats_url() -> str:
    """The NATS (JetStream) server: SCIM_TEST_NATS_URL or 127.0.0.1:4222. Skipped when none
    answers, unless SCIM_REQUIRE_NATS=1 (CI sets it where nats-server is installed)."""
    import socket
    from urllib.parse import urlsplit

    url = os.environ.get("SCIM_TEST_NATS_URL", "nats://127.0.0.1:4222")
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2):
            return url
    except OSError:
        if os.environ.get("SCIM_REQUIRE_NATS") == "1":
            pytest.fail(f"no NATS server at {url}, and SCIM_REQUIRE_NATS=1")
        pytest.skip(f"no NATS server at {url} (start nats-server -js)")
