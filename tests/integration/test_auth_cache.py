"""The token cache: fewer lookups, yet revocations and disablements apply at once everywhere."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import msgspec
import pytest

from scim_service.app import create_app
from scim_service.auth import CHANNEL
from scim_service.config import Settings
from scim_service.keys import AUTH
from scim_service.provisioning import tenants
from scim_service.store import tenants as store
from tests.conftest import Tenant
from tests.support import listening, lock_table

SPC = "/scim/v2/ServiceProviderConfig"


async def status_becomes(
    client: Any, headers: dict[str, str], want: int, timeout: float = 2.0
) -> float:
    """Seconds until a request answers `want` (fails after `timeout`)."""
    started = time.monotonic()
    while True:
        resp = await client.get(SPC, headers=headers)
        if resp.status == want:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"still {resp.status}, wanted {want}"
        await asyncio.sleep(0.01)


async def cached_client(aiohttp_client: Any, settings: Settings) -> Any:
    client = await aiohttp_client(
        create_app(msgspec.structs.replace(settings, auth_cache_seconds=300))
    )
    conn = await asyncpg.connect(settings.database_url)
    try:
        await listening(conn, CHANNEL)  # the invalidation listener is up
    finally:
        await conn.close()
    return client


async def test_cached_tokens_need_no_lookup(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, database_url: str
) -> None:
    """Once a token is cached, requests do not touch the token table: they still answer while
    another transaction holds an exclusive lock on it."""
    client = await cached_client(aiohttp_client, settings)
    assert (await client.get(SPC, headers=tenant.headers)).status == 200
    async with lock_table(database_url, "scim_tokens"):
        async with asyncio.timeout(2):
            for _ in range(20):
                assert (await client.get(SPC, headers=tenant.headers)).status == 200


async def test_revocation_by_another_process_applies_at_once(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """A revocation made elsewhere (CLI, another replica) reaches this process's cache through
    PostgreSQL's NOTIFY, not after the 300 s TTL."""
    client = await cached_client(aiohttp_client, settings)
    assert (await client.get(SPC, headers=tenant.headers)).status == 200
    await tenants.revoke_token(db, tenant.token_id)
    assert await status_becomes(client, tenant.headers, 401) < 1.0


async def test_disabling_scim_elsewhere_applies_at_once(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, db: asyncpg.Connection
) -> None:
    client = await cached_client(aiohttp_client, settings)
    assert (await client.get(SPC, headers=tenant.headers)).status == 200
    await tenants.set_scim_enabled(db, tenant.org_id, False)
    assert await status_becomes(client, tenant.headers, 403) < 1.0
    await tenants.set_scim_enabled(db, tenant.org_id, True)
    assert await status_becomes(client, tenant.headers, 200) < 1.0


async def test_expiry_is_checked_on_every_request(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, db: asyncpg.Connection
) -> None:
    client = await cached_client(aiohttp_client, settings)
    new = await tenants.create_token(db, tenant.org_id, ttl_days=1)
    headers = {"Authorization": f"Bearer {new.token}"}
    assert (await client.get(SPC, headers=headers)).status == 200
    await db.execute(
        "UPDATE scim_tokens SET expires_at = now() + interval '1 second' WHERE id = $1", new.info.id
    )
    await status_becomes(client, headers, 200)
    await asyncio.sleep(1.2)
    assert (await client.get(SPC, headers=headers)).status == 401


async def test_admin_revocation_applies_in_this_process_at_once(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    client = await cached_client(aiohttp_client, settings)
    assert (await client.get(SPC, headers=tenant.headers)).status == 200
    assert (
        await client.delete(f"/admin/v1/tokens/{tenant.token_id}", headers=admin_headers)
    ).status == 200
    assert (await client.get(SPC, headers=tenant.headers)).status == 401


async def test_a_lookup_racing_a_revocation_is_not_cached(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token lookup that read the row before a revocation, and finishes after the revocation's
    NOTIFY emptied the cache, must not put the pre-revocation row back: the next request is
    401, not 200 for up to the cache TTL. Deterministic: the lookup is held after its read
    until the invalidation has arrived."""
    client = await cached_client(aiohttp_client, settings)
    auth = client.app[AUTH]
    read_done, release, forgotten = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_lookup, real_forget = store.lookup_token, auth.forget

    async def held_lookup(conn: asyncpg.Connection, digest: bytes) -> Any:
        row = await real_lookup(conn, digest)  # the active, pre-revocation row
        read_done.set()
        await release.wait()
        return row

    def forget() -> None:
        real_forget()
        forgotten.set()

    monkeypatch.setattr(store, "lookup_token", held_lookup)
    monkeypatch.setattr(auth, "forget", forget)
    async with asyncio.timeout(10):
        first = asyncio.create_task(client.get(SPC, headers=tenant.headers))
        await read_done.wait()
        await tenants.revoke_token(db, tenant.token_id)  # its trigger NOTIFYs every cache
        await forgotten.wait()
        release.set()
        assert (await first).status == 200  # it authenticated before the revocation
    monkeypatch.setattr(store, "lookup_token", real_lookup)
    resp = await client.get(SPC, headers=tenant.headers)
    assert resp.status == 401, "the revoked token came back from the cache"
