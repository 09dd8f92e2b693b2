"""The state digest: a consumer's copy, caught up exactly to the digest's cursor with
`until`, yields the service's digest while writes run; a copy that missed an event does not;
held resources count at the version consumers have."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

import aiohttp
import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.config import Settings
from tests.conftest import ADMIN_TOKEN, Tenant, make_tenant
from tests.support import PATCH_OP, consumer_example, make_user


async def deactivate(client: Any, tenant: Tenant, user_id: str) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    resp = await client.patch(f"/scim/v2/Users/{user_id}", json=body, headers=tenant.headers)
    assert resp.status == 200, await resp.text()


async def test_digest_of_the_database(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """The digest is the documented SHA-256 of the sorted id/version lines; another
    organization's resources are not in it; unknown organizations are 404s."""
    other = await make_tenant(db, "other")
    for i in range(3):
        await make_user(client, tenant, f"d{i}@x.test")
    await make_user(client, other, "o@x.test")
    resp = await client.post("/scim/v2/Groups", json={"displayName": "Ops"}, headers=tenant.headers)
    assert resp.status == 201
    lines = [
        f"User {r['id']} {r['event_seq']}\n"
        for r in await db.fetch("SELECT id, event_seq FROM users WHERE org_id = $1", tenant.org_id)
    ] + [
        f"Group {r['id']} {r['event_seq']}\n"
        for r in await db.fetch("SELECT id, event_seq FROM groups WHERE org_id = $1", tenant.org_id)
    ]
    want = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/digest", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["digest"], body["users"], body["groups"]) == (want, 3, 1)
    assert body["events_cursor"].startswith("c1.")

    empty = await make_tenant(db, "empty")
    resp = await client.get(f"/admin/v1/orgs/{empty.org_id}/digest", headers=admin_headers)
    assert (await resp.json())["digest"] == hashlib.sha256(b"").hexdigest()
    unknown = "00000000-0000-4000-8000-000000000000"
    resp = await client.get(f"/admin/v1/orgs/{unknown}/digest", headers=admin_headers)
    assert resp.status == 404


async def test_until_ends_the_page_at_the_cursor(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """Events up to `until` and none after; a long poll at `until` answers at once."""
    first = await make_user(client, tenant, "a@x.test")
    resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/digest", headers=admin_headers)
    at = (await resp.json())["events_cursor"]
    await make_user(client, tenant, "b@x.test")
    resp = await client.get(
        "/admin/v1/events", params={"until": at, "wait": "10"}, headers=admin_headers
    )
    page = await resp.json()
    assert [e["subject"] for e in page["events"]] == [first]
    assert page["next_cursor"] == at
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await client.get(
        "/admin/v1/events", params={"after": at, "until": at, "wait": "10"}, headers=admin_headers
    )
    assert (await resp.json())["events"] == []
    assert loop.time() - started < 5, "a poll at its bound waited"
    resp = await client.get("/admin/v1/events", params={"until": "c1.nope"}, headers=admin_headers)
    assert resp.status == 400
    assert "'until'" in (await resp.json())["detail"]


async def test_a_copy_verifies_while_writes_run_and_a_lost_event_shows(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """Writers create, rename, deactivate and delete users and change groups while the
    README's consumer verifies its copy again and again: every verification holds. A copy that
    dropped one event fails the next verification."""
    await db.execute("UPDATE organizations SET guard_enabled = false WHERE id = $1", tenant.org_id)
    rng = random.Random(77)
    h = tenant.headers
    users = [await make_user(client, tenant, f"w{i}@x.test") for i in range(30)]
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": u} for u in users[:10]]},
        headers=h,
    )
    group = (await resp.json(content_type=None))["id"]
    stop = asyncio.Event()
    writes = 0

    async def writer(n: int) -> None:
        nonlocal writes
        for k in range(300):  # bounded; stops when the verifications are done
            if stop.is_set():
                return
            live = [u for u in users if u]
            choice = rng.random()
            if choice < 0.2:
                users.append(await make_user(client, tenant, f"n{n}-{k}@x.test"))
            elif choice < 0.5:
                ops = [{"op": "replace", "path": "displayName", "value": f"D{n}-{k}"}]
                resp = await client.patch(
                    f"/scim/v2/Users/{rng.choice(live)}",
                    json={"schemas": [PATCH_OP], "Operations": ops},
                    headers=h,
                )
                assert resp.status in (200, 404)
            elif choice < 0.6:
                victim = rng.choice(live)
                users[users.index(victim)] = ""
                resp = await client.delete(f"/scim/v2/Users/{victim}", headers=h)
                assert resp.status in (204, 404)
            else:
                op = "add" if choice < 0.85 else "remove"
                ops = [{"op": op, "path": "members", "value": [{"value": rng.choice(live)}]}]
                resp = await client.patch(
                    f"/scim/v2/Groups/{group}",
                    json={"schemas": [PATCH_OP], "Operations": ops},
                    headers=h,
                )
                assert resp.status in (200, 204, 400, 404), await resp.text()
            writes += 1
            await asyncio.sleep(0)

    ns = consumer_example()
    directory = ns["Directory"](
        str(client.make_url("")), ADMIN_TOKEN, str(tenant.org_id), page_size=7
    )
    writers = [asyncio.create_task(writer(n)) for n in range(2)]
    checks, seen = [], []
    async with aiohttp.ClientSession() as session:
        await directory.bootstrap(session)
        for _ in range(8):
            checks.append(await ns["verify"](directory, session))
            seen.append(writes)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*writers)
        assert len(set(seen)) >= 4, f"writes ran between verifications: {seen}"
        assert checks == [True] * 8
        assert await ns["verify"](directory, session)

        # A consumer that lost one event (here: the latest rename of a user it holds).
        victim = next(u for u in users if u)
        ops = [{"op": "replace", "path": "displayName", "value": "missed"}]
        resp = await client.patch(
            f"/scim/v2/Users/{victim}",
            json={"schemas": [PATCH_OP], "Operations": ops},
            headers=h,
        )
        assert resp.status == 200
        want = await (
            await session.get(
                str(client.make_url(f"/admin/v1/orgs/{tenant.org_id}/digest")),
                headers=directory.headers,
            )
        ).json()
        page = await directory.get(
            session,
            "/admin/v1/events",
            after=directory.cursor,
            until=want["events_cursor"],
            org_id=directory.org,
        )
        assert [e["subject"] for e in page["events"]] == [victim]
        directory.cursor = page["next_cursor"]  # skipped, never applied
        assert not await ns["verify"](directory, session)


async def test_held_changes_count_at_the_version_consumers_have(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """While the guard holds deactivations, a copy that has every delivered event verifies;
    after the release, it verifies again once it pulled the released events."""
    conf = msgspec.structs.replace(
        settings,
        deprovision_guard_percent=25.0,
        deprovision_guard_min_users=3,
        deprovision_guard_window_minutes=15.0,
    )
    client = await aiohttp_client(create_app(conf))
    users = [await make_user(client, tenant, f"g{i}@x.test") for i in range(6)]
    ns = consumer_example()
    directory = ns["Directory"](str(client.make_url("")), ADMIN_TOKEN, str(tenant.org_id))
    async with aiohttp.ClientSession() as session:
        await directory.bootstrap(session)
        for uid in users[:4]:
            await deactivate(client, tenant, uid)
        resp = await client.get(f"/admin/v1/orgs/{tenant.org_id}/guard", headers=admin_headers)
        assert (await resp.json())["tripped"] is True
        assert await ns["verify"](directory, session)
        held = [u for u in users[:4] if directory.users[u]["active"]]
        assert held, "the guard held some of the deactivations back from the copy"
        resp = await client.post(
            f"/admin/v1/orgs/{tenant.org_id}/guard/release", headers=admin_headers
        )
        assert resp.status == 200
        assert await ns["verify"](directory, session)
        assert not any(directory.users[u]["active"] for u in users[:4])
