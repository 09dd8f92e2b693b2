"""Bootstrap: the README's consumer pages through the snapshot while writes run, pulls the
events after the snapshot's cursor, and ends up with exactly what the database holds; after the
pull API's 410 or a hole in a resource's versions it bootstraps again and still does."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from scim_service.events.envelope import profile
from scim_service.store import outbox
from tests.conftest import ADMIN_TOKEN, Tenant
from tests.support import PATCH_OP, consumer_example, make_user, patch_user


async def database_state(
    db: asyncpg.Connection, org_id: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    users = {}
    for r in await db.fetch("SELECT id, attrs FROM users WHERE org_id = $1", org_id):
        p = profile(r["attrs"])
        users[str(r["id"])] = {
            "user_name": p.user_name,
            "external_id": p.external_id,
            "display_name": p.display_name,
            "email": p.email,
            "active": p.active,
        }
    groups: dict[str, dict[str, Any]] = {}
    for r in await db.fetch("SELECT id, display_name FROM groups WHERE org_id = $1", org_id):
        groups[str(r["id"])] = {"display_name": r["display_name"], "members": set()}
    for r in await db.fetch(
        "SELECT gm.group_id, gm.user_id FROM group_members gm JOIN groups g ON g.id = gm.group_id"
        " WHERE g.org_id = $1",
        org_id,
    ):
        groups[str(r["group_id"])]["members"].add(str(r["user_id"]))
    return users, groups


async def test_bootstrap_under_writes_equals_the_database(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """Users created, renamed, deactivated, deleted; groups created, renamed, deleted; members
    added and removed, all while the consumer pages (10 items a page): after it pulls the
    events from the first page's cursor, its copy equals the database."""
    rng = random.Random(1313)
    h = tenant.headers

    async def new_user(i: int) -> str:
        resp = await client.post(
            "/scim/v2/Users",
            json={
                "userName": f"user{i}@x.test",
                "externalId": f"x{i}",
                "displayName": f"U {i}",
                "emails": [{"value": f"user{i}@x.test", "primary": True}],
            },
            headers=h,
        )
        assert resp.status == 201, await resp.text()
        return str((await resp.json(content_type=None))["id"])

    # The writers remove many memberships: with the guard on it would trip and hold them, and
    # the consumer's copy would rightly lag the store (tests/integration/test_guard*.py).
    await db.execute("UPDATE organizations SET guard_enabled = false WHERE id = $1", tenant.org_id)
    users = [await new_user(i) for i in range(120)]
    groups = []
    for g in range(6):
        members = [{"value": u} for u in rng.sample(users, 40)]
        resp = await client.post(
            "/scim/v2/Groups", json={"displayName": f"G{g}", "members": members}, headers=h
        )
        assert resp.status == 201
        groups.append(str((await resp.json(content_type=None))["id"]))

    async def patch(kind: str, rid: str, *ops: dict[str, Any]) -> None:
        resp = await client.patch(
            f"/scim/v2/{kind}/{rid}",
            json={"schemas": [PATCH_OP], "Operations": list(ops)},
            headers=h,
        )
        text = await resp.text()
        # A member added while another writer deletes that user is skipped (issue 25).
        assert resp.status in (200, 204, 404), text

    stop = asyncio.Event()
    writes = 0

    async def writer(n: int) -> None:
        nonlocal writes
        counter = 1000 * (n + 1)
        for _ in range(400):  # bounded; stops earlier when the consumer is done
            if stop.is_set():
                return
            counter += 1
            choice = rng.random()
            live = [u for u in users if u]
            if choice < 0.15:
                users.append(await new_user(counter))
            elif choice < 0.35:
                await patch(
                    "Users",
                    rng.choice(live),
                    {"op": "replace", "path": "displayName", "value": f"D{counter}"},
                )
            elif choice < 0.45:
                await patch(
                    "Users",
                    rng.choice(live),
                    {"op": "replace", "path": "active", "value": rng.random() < 0.5},
                )
            elif choice < 0.52:
                victim = rng.choice(live)
                users[users.index(victim)] = ""
                resp = await client.delete(f"/scim/v2/Users/{victim}", headers=h)
                assert resp.status in (204, 404)
            elif choice < 0.60:
                await patch(
                    "Groups",
                    rng.choice(groups),
                    {"op": "replace", "path": "displayName", "value": f"G{counter}"},
                )
            elif choice < 0.85:
                await patch(
                    "Groups",
                    rng.choice(groups),
                    {
                        "op": "add",
                        "path": "members",
                        "value": [{"value": u} for u in rng.sample(live, 3)],
                    },
                )
            elif choice < 0.97:
                g = rng.choice(groups)
                await patch(
                    "Groups",
                    g,
                    {
                        "op": "remove",
                        "path": "members",
                        "value": [{"value": u} for u in rng.sample(live, 3)],
                    },
                )
            elif len(groups) > 3:
                g = groups.pop(rng.randrange(len(groups)))
                resp = await client.delete(f"/scim/v2/Groups/{g}", headers=h)
                assert resp.status in (204, 404)
            writes += 1
            await asyncio.sleep(0)

    example = consumer_example()
    directory = example["Directory"](
        str(client.make_url("")), ADMIN_TOKEN, str(tenant.org_id), page_size=10
    )
    writers = [asyncio.create_task(writer(n)) for n in range(3)]
    async with aiohttp.ClientSession() as session:
        await directory.bootstrap(session)
        stop.set()
        await asyncio.gather(*writers)
        assert writes > 20  # the writes really ran during the paging
        want = await database_state(db, tenant.org_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # any open transaction on the server delays events
            assert await directory.pull(session, wait=0.5), "a hole where there is none"
            if (directory.users, directory.groups) == want:
                break
    assert directory.users == want[0]
    assert directory.groups == want[1]
    assert directory.resyncs == 0


async def synced(directory: Any, db: asyncpg.Connection, org_id: Any) -> None:
    """Sync the README consumer until its copy equals the database (events become readable
    once every older transaction on the server has ended)."""
    want = await database_state(db, org_id)
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            await directory.sync(session, wait=0.5)
            if (directory.users, directory.groups) == want:
                return
    assert (directory.users, directory.groups) == want


async def test_consumer_bootstraps_again_after_the_pull_apis_410(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """When retention deleted events after the consumer's cursor, the pull API answers 410 with
    `oldest_cursor`; the README consumer takes a fresh snapshot and equals the database again,
    the change whose event it never saw included."""
    example = consumer_example()
    directory = example["Directory"](str(client.make_url("")), ADMIN_TOKEN, str(tenant.org_id))
    first = await make_user(client, tenant, "a@x.test")
    await synced(directory, db, tenant.org_id)
    await make_user(client, tenant, "b@x.test")
    await patch_user(client, tenant, first, {"op": "replace", "path": "displayName", "value": "A"})
    await make_user(client, tenant, "c@x.test")
    # Everything but c's event was delivered long ago: retention removes b's and the rename.
    await db.execute("DELETE FROM outbox")
    await db.execute(
        "UPDATE events SET time = now() - interval '30 days'"
        " WHERE convert_from(payload, 'UTF8') NOT LIKE '%c@x.test%'"
    )
    assert await outbox.purge_delivered(db, datetime.now(UTC) - timedelta(days=7)) == 3
    async with aiohttp.ClientSession() as session:
        with pytest.raises(example["CursorGone"]):
            await directory.pull(session)
    await synced(directory, db, tenant.org_id)
    assert directory.resyncs == 1
    assert directory.users[first]["display_name"] == "A"
    assert len(directory.users) == 3


async def test_consumer_bootstraps_again_after_a_hole(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """An event missing for good (as after `events orphans discard`): the next version of that
    resource arrives two above the one held, and the README consumer does not apply it over the
    hole but takes a fresh snapshot; a group's membership, which events carry only as changes,
    comes out right."""
    example = consumer_example()
    directory = example["Directory"](str(client.make_url("")), ADMIN_TOKEN, str(tenant.org_id))
    users = [await make_user(client, tenant, f"h{i}@x.test") for i in range(3)]
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": users[0]}]},
        headers=tenant.headers,
    )
    group = (await resp.json(content_type=None))["id"]
    await synced(directory, db, tenant.org_id)
    for member in users[1:]:  # versions 2 and 3 of the group
        resp = await client.patch(
            f"/scim/v2/Groups/{group}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
            },
            headers=tenant.headers,
        )
        assert resp.status in (200, 204), await resp.text()
    await db.execute("DELETE FROM outbox")
    await db.execute(
        "DELETE FROM events WHERE subject = $1 AND resource_version = 2", uuid.UUID(group)
    )
    async with aiohttp.ClientSession() as session:
        assert await directory.pull(session) is False  # version 3 over a missing 2
    assert directory.versions[group] == 1
    await synced(directory, db, tenant.org_id)
    assert directory.resyncs == 1
    assert directory.groups[group]["members"] == set(users)


async def test_snapshot_pages_and_errors(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """Keyset pages by id with `next_page` until the end, the cursor on the first page only,
    each item's version its latest event's; unknown organizations and groups are 404s, bad
    page tokens and limits 400s."""
    ids = []
    for i in range(5):
        resp = await client.post(
            "/scim/v2/Users", json={"userName": f"p{i}@x.test"}, headers=tenant.headers
        )
        ids.append((await resp.json(content_type=None))["id"])
    await client.patch(
        f"/scim/v2/Users/{ids[0]}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "T"}],
        },
        headers=tenant.headers,
    )
    base = f"/admin/v1/orgs/{tenant.org_id}"
    got, versions, page, pages = [], {}, None, []
    for _ in range(10):
        params = {"limit": "2", **({"page": page} if page else {})}
        resp = await client.get(f"{base}/users", params=params, headers=admin_headers)
        body = await resp.json()
        assert resp.status == 200, body
        pages.append(body)
        got += [u["id"] for u in body["users"]]
        versions.update({u["id"]: u["version"] for u in body["users"]})
        if (page := body["next_page"]) is None:
            break
    assert got == sorted(ids)
    assert "events_cursor" in pages[0] and all("events_cursor" not in p for p in pages[1:])
    assert versions[ids[0]] == 2 and versions[ids[1]] == 1

    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "G", "members": [{"value": u} for u in ids]},
        headers=tenant.headers,
    )
    gid = (await resp.json(content_type=None))["id"]
    resp = await client.get(
        f"{base}/groups/{gid}/members", params={"limit": "3"}, headers=admin_headers
    )
    first = await resp.json()
    assert first["version"] == 1 and len(first["members"]) == 3 and first["next_page"]
    resp = await client.get(
        f"{base}/groups/{gid}/members", params={"page": first["next_page"]}, headers=admin_headers
    )
    assert sorted(first["members"] + (await resp.json())["members"]) == sorted(ids)

    for path, params, status in (
        (f"/admin/v1/orgs/{uuid.uuid4()}/users", {}, 404),
        (f"{base}/groups/{uuid.uuid4()}/members", {}, 404),
        (f"{base}/users", {"page": "x"}, 400),
        (f"{base}/groups", {"limit": "1001"}, 400),
    ):
        resp = await client.get(path, params=params, headers=admin_headers)
        assert resp.status == status, await resp.text()
    assert (await client.get(f"{base}/users", headers=tenant.headers)).status == 401
