"""Memberships under concurrency and at scale, against the real database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from scim_service.events.emitter import Emitter
from scim_service.provisioning import groups as provisioning
from scim_service.provisioning.scope import Scope
from tests.conftest import Tenant
from tests.support import PATCH_OP, add, bulk_users, new_group, recorded_connection


def remove(ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": "members", "value": [{"value": i} for i in ids]}],
    }


async def consistent(db: asyncpg.Connection, group_id: str) -> int:
    """The stored member_count agrees with the membership rows; return the count."""
    gid = uuid.UUID(group_id)
    counted = await db.fetchval("SELECT count(*) FROM group_members WHERE group_id = $1", gid)
    stored = await db.fetchval("SELECT member_count FROM groups WHERE id = $1", gid)
    assert counted == stored, f"member_count {stored} but {counted} rows"
    return int(counted)


async def test_fifty_concurrent_adds_to_one_group(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """50 IdP requests at once, each adding a different member: none is lost."""
    gid = await new_group(client, tenant, "Busy")
    ids = await bulk_users(db, tenant.org_id, 50)
    results = await asyncio.gather(
        *(
            client.patch(f"/scim/v2/Groups/{gid}", json=add([i]), headers=tenant.headers)
            for i in ids
        )
    )
    assert [r.status for r in results] == [200] * 50
    assert await consistent(db, gid) == 50
    members = {
        str(r["user_id"])
        for r in await db.fetch(
            "SELECT user_id FROM group_members WHERE group_id = $1", uuid.UUID(gid)
        )
    }
    assert members == set(ids)
    # Every membership change made a version: 1 (created) + 50.
    assert await db.fetchval("SELECT version FROM groups WHERE id = $1", uuid.UUID(gid)) == 51


async def test_concurrent_add_and_remove_of_one_member_stay_consistent(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    gid = await new_group(client, tenant, "Flip")
    [uid] = await bulk_users(db, tenant.org_id, 1)
    bodies = [add([uid]) if i % 2 == 0 else remove([uid]) for i in range(40)]
    results = await asyncio.gather(
        *(client.patch(f"/scim/v2/Groups/{gid}", json=b, headers=tenant.headers) for b in bodies)
    )
    assert {r.status for r in results} == {200}
    count = await consistent(db, gid)
    assert count in (0, 1)
    listed = await (await client.get(f"/scim/v2/Groups/{gid}", headers=tenant.headers)).json(
        content_type=None
    )
    assert [m["value"] for m in listed.get("members", [])] == ([uid] if count else [])
    # The version moved exactly once per effective change, so it tells a consumer how many
    # changes there were; each one flips the membership, hence the parity.
    version = await db.fetchval("SELECT version FROM groups WHERE id = $1", uuid.UUID(gid))
    assert (version - 1) % 2 == count


async def test_deleting_a_user_while_groups_gain_it(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """A user deleted while ten groups add it: no membership survives the user, every group's
    count is exact, and no request fails with a 500 (deadlocks are retried)."""
    gids = [await new_group(client, tenant, f"G{i}") for i in range(10)]
    for _ in range(3):
        [uid] = await bulk_users(db, tenant.org_id, 1, prefix=f"victim{uuid.uuid4().hex[:6]}")
        calls = [
            client.patch(f"/scim/v2/Groups/{g}", json=add([uid]), headers=tenant.headers)
            for g in gids
        ]
        calls.insert(5, client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers))
        results = await asyncio.gather(*calls)
        statuses = [r.status for r in results]
        assert 500 not in statuses and 503 not in statuses, statuses
        assert set(statuses) <= {200, 204, 400}
        assert (
            await db.fetchval(
                "SELECT count(*) FROM group_members WHERE user_id = $1", uuid.UUID(uid)
            )
            == 0
        )
        for g in gids:
            await consistent(db, g)


async def test_a_thousand_members_is_one_statement(
    tenant: Tenant, db: asyncpg.Connection, database_url: str
) -> None:
    """Adding or removing 1,000 members runs one set-based statement, not 1,000 round trips."""
    gid = uuid.uuid4()
    await db.execute(
        "INSERT INTO groups (id, org_id, attrs) VALUES ($1, $2, $3)",
        gid,
        tenant.org_id,
        {"displayName": "Scale"},
    )
    ids = await bulk_users(db, tenant.org_id, 1000)
    conn, statements = await recorded_connection(database_url)
    try:
        scope = Scope(tenant.org_id, Emitter("test", ("log",)))
        group, change = await provisioning.patch_group(conn, scope, gid, add(ids), None)
        assert group.member_count == 1000 and len(change.added) == 1000
        touching = [q for q in statements if "group_members" in q]
        assert len(touching) == 1, touching
        statements.clear()
        # BEGIN, lock, members, version bump, events, COMMIT
        assert len(statements) <= 7, "\n---\n".join(statements)
        statements.clear()
        group, change = await provisioning.patch_group(conn, scope, gid, remove(ids), None)
        assert group.member_count == 0 and len(change.removed) == 1000
        # The removal (1,000 users lose access) trips the guard, which keeps the members as
        # they were: one more set-based statement, not one per member.
        touching = [q for q in statements if "group_members" in q]
        assert len(touching) == 2, touching
        assert len(statements) <= 16, "\n---\n".join(statements)
    finally:
        await conn.close()


async def test_fifty_thousand_member_group(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """A 50,000-member group, filled through the API 1,000 at a time: exact counts, and reads
    without members stay small."""
    gid = await new_group(client, tenant, "Everyone")
    ids = await bulk_users(db, tenant.org_id, 50_000)
    for start in range(0, len(ids), 1000):
        resp = await client.patch(
            f"/scim/v2/Groups/{gid}", json=add(ids[start : start + 1000]), headers=tenant.headers
        )
        assert resp.status == 200
        assert len(await resp.read()) < 1000, "PATCH answers of a big group stay small"
    assert await consistent(db, gid) == 50_000
    resp = await client.get(
        f"/scim/v2/Groups/{gid}?excludedAttributes=members", headers=tenant.headers
    )
    assert resp.status == 200 and len(await resp.read()) < 1000
    resp = await client.patch(
        f"/scim/v2/Groups/{gid}", json=remove(ids[:1000]), headers=tenant.headers
    )
    assert resp.status == 200
    assert await consistent(db, gid) == 49_000
