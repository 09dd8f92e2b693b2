"""Role changes at scale (issue 25): set-based, no per-member round trips. Prints its figures
(`pytest -s`)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from scim_service.events.emitter import Emitter
from scim_service.provisioning import groups as provisioning
from scim_service.provisioning import roles
from scim_service.provisioning.scope import Scope
from tests.conftest import Tenant
from tests.support import add, bulk_users, recorded_connection


class _Lag:
    """The worst lateness of a 5 ms sleep on this event loop while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - started - 0.005)

    def stop(self) -> None:
        self._stop.set()


async def _mapped_group(db: asyncpg.Connection, tenant: Tenant, name: str) -> uuid.UUID:
    gid = uuid.uuid4()
    await db.execute(
        "INSERT INTO groups (id, org_id, attrs) VALUES ($1, $2, $3)",
        gid,
        tenant.org_id,
        {"displayName": name},
    )
    return gid


async def _role_events(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM events WHERE resource_type = 'User' AND type = 'user.updated'"
        )
    )


async def test_a_thousand_members_into_a_mapped_group(
    tenant: Tenant, db: asyncpg.Connection, database_url: str
) -> None:
    """1,000 users added to a mapped group in one PATCH: 1,000 role events, a fixed number of
    statements (none per member)."""
    gid = await _mapped_group(db, tenant, "Vault Admins")
    ids = await bulk_users(db, tenant.org_id, 1000)
    conn, statements = await recorded_connection(database_url)
    scope = Scope(tenant.org_id, Emitter("test", ("log",)))
    try:
        config = roles.RoleConfig(
            default_role="member",
            mappings=[
                roles.Mapping(
                    group=roles.GroupRef(displayName="Vault Admins"), role="admin", priority=1
                )
            ],
        )
        await roles.set_roles(conn, scope, config)
        before = await _role_events(db)
        await asyncio.sleep(0)
        statements.clear()
        lag = _Lag()
        sampler = asyncio.create_task(lag.run())
        started = time.perf_counter()
        group, _ = await provisioning.patch_group(conn, scope, gid, add(ids), None)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.02)
        lag.stop()
        await sampler
    finally:
        await conn.close()
    assert group.member_count == 1000
    assert await _role_events(db) - before == 1000
    print(
        f"\n1,000 members into a mapped group: {elapsed * 1000:.0f} ms, "
        f"{len(statements)} statements, worst loop lag {lag.worst * 1000:.0f} ms"
    )
    assert len(statements) <= 14, "\n---\n".join(statements)


@pytest.mark.slow
async def test_a_mapping_change_on_a_fifty_thousand_member_group(
    tenant: Tenant, db: asyncpg.Connection, database_url: str
) -> None:
    """Mapping a 50,000-member group to a role: 50,000 role events in one transaction, a fixed
    number of statements."""
    gid = await _mapped_group(db, tenant, "Everyone")
    ids = await bulk_users(db, tenant.org_id, 50_000)
    await db.execute(
        "INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::uuid[])",
        gid,
        [uuid.UUID(i) for i in ids],
    )
    await db.execute("UPDATE groups SET member_count = 50000 WHERE id = $1", gid)
    conn, statements = await recorded_connection(database_url)
    scope = Scope(tenant.org_id, Emitter("test", ("log",)))
    try:
        config = roles.RoleConfig(
            mappings=[roles.Mapping(group=roles.GroupRef(id_=str(gid)), role="staff")]
        )
        lag = _Lag()
        sampler = asyncio.create_task(lag.run())
        started = time.perf_counter()
        await roles.set_roles(conn, scope, config)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.02)
        lag.stop()
        await sampler
    finally:
        await conn.close()
    assert await _role_events(db) == 50_000
    print(
        f"\nmapping change on 50,000 members: {elapsed:.2f} s, {len(statements)} statements, "
        f"worst loop lag {lag.worst * 1000:.0f} ms"
    )
    assert len(statements) <= 20, "\n---\n".join(statements)
