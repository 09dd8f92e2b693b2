"""The guard as an operator tries it (issue 21): 40 users in two groups, guard at 25 % / 20
users / 15 minutes, 20 DELETEs trip it; then, while tripped, 5 more DELETEs, 5 PUTs with
`active: false`, one group PATCH removing all members and one reactivation. Nothing of any of
that reaches the webhook or the pull feed, nor after the rejection and a replay; the store is
restored and no user's delivered versions have a hole. With a staging delay, nothing of the
burst that tripped it leaves either."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from scim_service.app import create_app
from scim_service.config import Settings
from tests.conftest import Tenant
from tests.support import (
    PATCH_OP,
    Receiver,
    make_user,
    outbox_settled,
    publisher_settings,
    until,
)
from tests.support import fixture_receiver as fixture_receiver

GUARD = {
    "deprovision_guard_percent": 25.0,
    "deprovision_guard_min_users": 20,
    "deprovision_guard_window_minutes": 15.0,
}


async def _pull_all(client: Any, tenant: Tenant, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every event of the organization the pull feed serves now, from the start."""
    out: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(50):  # bounded
        url = f"/admin/v1/events?org_id={tenant.org_id}&limit=1000"
        resp = await client.get(url + (f"&after={cursor}" if cursor else ""), headers=headers)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        out.extend(page["events"])
        if not page["events"]:
            return out
        cursor = page["next_cursor"]
    raise AssertionError("the feed did not end")


def _contiguous(events: list[dict[str, Any]]) -> None:
    """Per subject, the versions seen (deduplicated) are 1..n with no hole."""
    seen: dict[str, set[int]] = {}
    for e in events:
        seen.setdefault(e["subject"], set()).add(e["resourceversion"])
    for subject, versions in seen.items():
        assert sorted(versions) == list(range(1, max(versions) + 1)), (subject, sorted(versions))


async def _setup(client: Any, tenant: Tenant) -> tuple[list[str], list[str], list[str]]:
    a = [await make_user(client, tenant, f"a{i}@example.com") for i in range(20)]
    b = [await make_user(client, tenant, f"b{i}@example.com") for i in range(20)]
    groups = []
    for name, members in (("Vault A", a), ("Vault B", b)):
        resp = await client.post(
            "/scim/v2/Groups",
            json={"displayName": name, "members": [{"value": u} for u in members]},
            headers=tenant.headers,
        )
        assert resp.status == 201
        groups.append((await resp.json(content_type=None))["id"])
    return a, b, groups


async def test_nothing_held_reaches_a_consumer_and_a_rejection_sticks(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver, **GUARD)))
    a, b, (group_a, group_b) = await _setup(client, tenant)
    await until(lambda: len(receiver.accepted) == 42, what="40 users and 2 groups delivered")
    start = datetime.now(UTC)
    h = tenant.headers

    for uid in a:  # the 20th trips the guard
        assert (await client.delete(f"/scim/v2/Users/{uid}", headers=h)).status == 204
    # While tripped: 5 deletes, 5 PUTs with active false, all members removed, a reactivation.
    for uid in b[:5]:
        assert (await client.delete(f"/scim/v2/Users/{uid}", headers=h)).status == 204
    for i, uid in enumerate(b[5:10], start=5):
        body = {"userName": f"b{i}@example.com", "active": False}
        assert (await client.put(f"/scim/v2/Users/{uid}", json=body, headers=h)).status == 200
    remove_all = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members"}]}
    resp = await client.patch(f"/scim/v2/Groups/{group_b}", json=remove_all, headers=h)
    assert resp.status in (200, 204), await resp.text()
    reactivate = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": True}}],
    }
    assert (await client.patch(f"/scim/v2/Users/{b[5]}", json=reactivate, headers=h)).status == 200
    # Unrelated, additive: flows.
    newcomer = await make_user(client, tenant, "new@example.com")

    await until(
        lambda: any(e["event"]["subject"] == newcomer for e in receiver.accepted),
        what="the newcomer delivered",
    )
    await outbox_settled(db)  # every deliverable event delivered: a wrong one would be too
    held_subjects = {a[19], group_a, group_b, *b[:10]}
    after_trip = {str(u) for u in held_subjects}
    late = [
        e["event"]
        for e in receiver.accepted
        if e["event"]["subject"] in after_trip and e["event"]["resourceversion"] > 1
    ]
    # Only the 19 deletes before the trip left (and group A's 19 removals), nothing after.
    assert [e["subject"] for e in late if e["subject"] == a[19]] == []
    assert {e["subject"] for e in late} <= {group_a}
    assert all(e["resourceversion"] <= 20 for e in late), "group A: versions 2..20 only"
    pulled = await _pull_all(client, tenant, admin_headers)
    pulled_late = [e for e in pulled if e["subject"] in after_trip and e["resourceversion"] > 1]
    assert {e["subject"] for e in pulled_late} <= {group_a}
    assert all(e["resourceversion"] <= 20 for e in pulled_late)
    # The snapshot shows the held users as they were.
    url = f"/admin/v1/orgs/{tenant.org_id}"
    resp = await client.get(f"{url}/users?limit=1000", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    snap = {u["id"]: u for u in (await resp.json())["users"]}
    assert snap[b[7]]["profile"]["active"] is True and b[0] in snap and a[19] in snap
    assert snap[b[0]]["version"] == 1, "the version consumers have"
    resp = await client.get(f"{url}/groups/{group_b}/members?limit=1000", headers=admin_headers)
    assert len((await resp.json())["members"]) == 20, "group B as it was"

    # Reject, then replay everything since before the burst: nothing rejected is ever sent.
    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/reject", headers=admin_headers)
    outcome = await resp.json()
    assert resp.status == 200, outcome
    assert outcome["resources"] == len(held_subjects)
    kept_ids = {str(r["id"]) for r in await db.fetch("SELECT id FROM events")}
    resp = await client.post(
        "/admin/v1/events/replay",
        json={"since": start.isoformat(), "org_id": str(tenant.org_id)},
        headers=admin_headers,
    )
    assert resp.status == 200, await resp.text()
    await until(
        lambda: any(e["event"]["type"] == "directory.guard_rejected" for e in receiver.accepted),
        what="the rejection event",
    )
    await outbox_settled(db)  # the replay delivered
    delivered = [e["event"] for e in receiver.accepted]
    assert {e["id"] for e in delivered} <= kept_ids, "no consumer saw a rejected change"
    assert {e["id"] for e in await _pull_all(client, tenant, admin_headers)} <= kept_ids

    # The store is as before the held changes: b0-b9 active users, group B whole.
    for uid in b[:10]:
        resp = await client.get(f"/scim/v2/Users/{uid}", headers=h)
        assert resp.status == 200 and (await resp.json(content_type=None))["active"] is True
    resp = await client.get(f"/scim/v2/Groups/{group_b}", headers=h)
    assert len((await resp.json(content_type=None))["members"]) == 20
    members = await db.fetchval("SELECT member_count FROM groups WHERE id = $1", uuid.UUID(group_a))
    assert members == 1, "group A keeps the one member whose delete was held"

    # New changes of restored users continue without a hole, for every consumer.
    for uid in (b[0], b[5], a[19]):
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "x"}],
        }
        assert (await client.patch(f"/scim/v2/Users/{uid}", json=body, headers=h)).status == 200
    await until(
        lambda: sum(1 for e in receiver.accepted if e["event"]["type"] == "user.updated") >= 3,
        what="the updates delivered",
    )
    _contiguous(
        [e["event"] for e in receiver.accepted if e["event"]["subject"] != str(tenant.org_id)]
    )
    _contiguous(
        [
            e
            for e in await _pull_all(client, tenant, admin_headers)
            if e["subject"] != str(tenant.org_id)
        ]
    )


async def test_a_staged_burst_is_held_whole(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    admin_headers: dict[str, str],
) -> None:
    """With 5 s of staging the 19 deletes before the trip are held too; a release then
    delivers all 20, each user's versions in order."""
    conf = publisher_settings(settings, receiver, deprovision_guard_staging_seconds=5.0, **GUARD)
    client = await aiohttp_client(create_app(conf))
    a, _b, _groups = await _setup(client, tenant)
    await until(lambda: len(receiver.accepted) == 42, what="40 users and 2 groups delivered")
    for uid in a:
        assert (await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)).status == 204
    await until(
        lambda: any(e["event"]["type"] == "directory.guard_tripped" for e in receiver.accepted),
        what="the trip",
    )
    await asyncio.sleep(6.0)  # past the staging delay: tripped, so nothing is released
    assert not [e for e in receiver.accepted if e["event"]["type"] == "user.deprovisioned"]
    pulled = await _pull_all(client, tenant, admin_headers)
    assert not [e for e in pulled if e["type"] == "user.deprovisioned"]
    resp = await client.post(f"/admin/v1/orgs/{tenant.org_id}/guard/release", headers=admin_headers)
    assert resp.status == 200
    await until(
        lambda: (
            sum(1 for e in receiver.accepted if e["event"]["type"] == "user.deprovisioned") == 20
        ),
        what="all 20 deletes released",
    )
    _contiguous(
        [e["event"] for e in receiver.accepted if e["event"]["subject"] != str(tenant.org_id)]
    )
