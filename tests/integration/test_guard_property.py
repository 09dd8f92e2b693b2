"""The guard against random directories and random changes (issue 21's promise, tested as an
adversary would): whatever mix of deactivations, PUTs, deletes, member removals, group PUTs
and deletes, reactivations, additions and renames an IdP sends, once the guard trips no
consumer — the webhook receiver, the pull feed, a fresh snapshot — sees any user or membership
lose access that it had when the guard tripped, until an operator decides. After a release the
consumers' copies equal the store; after a rejection the store is back to (at least) that
access and the copies equal it again (the state digest says so for both)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from scim_service.app import create_app
from scim_service.config import Settings
from tests.conftest import ADMIN_TOKEN, Tenant
from tests.support import (
    PATCH_OP,
    Receiver,
    consumer_example,
    outbox_settled,
    publisher_settings,
)
from tests.support import fixture_receiver as fixture_receiver

GUARD = {
    "deprovision_guard_percent": 10.0,
    "deprovision_guard_min_users": 4,
    "deprovision_guard_window_minutes": 15.0,
}
USERS, GROUPS, OPS = 24, 3, 40

Access = set[tuple[str, ...]]


async def store_access(db: asyncpg.Connection, org_id: uuid.UUID) -> Access:
    """Who has access in the store: each active user, each membership of an active user."""
    users = await db.fetch("SELECT id FROM users WHERE org_id = $1 AND active", org_id)
    members = await db.fetch(
        "SELECT gm.group_id, gm.user_id FROM group_members gm JOIN groups g ON g.id = gm.group_id"
        " JOIN users u ON u.id = gm.user_id WHERE g.org_id = $1 AND u.active",
        org_id,
    )
    return {("user", str(r["id"])) for r in users} | {
        ("member", str(r["group_id"]), str(r["user_id"])) for r in members
    }


def copy_access(directory: Any) -> Access:
    """The same, as a consumer's copy (the README's Directory) shows it."""
    active = {uid for uid, u in directory.users.items() if u["active"]}
    return {("user", uid) for uid in active} | {
        ("member", gid, uid)
        for gid, g in directory.groups.items()
        for uid in g["members"]
        if uid in active
    }


class Idp:
    """Random SCIM changes against the store's current state."""

    def __init__(self, client: Any, tenant: Tenant, db: asyncpg.Connection, seed: int) -> None:
        self.client, self.h, self.db, self.org = client, tenant.headers, db, tenant.org_id
        self.rng = random.Random(seed)
        self.counter = 0

    async def _ids(self, sql: str) -> list[str]:
        return sorted(str(r[0]) for r in await self.db.fetch(sql, self.org))

    async def users(self, where: str = "true") -> list[str]:
        return await self._ids(f"SELECT id FROM users WHERE org_id = $1 AND {where}")

    async def groups(self) -> list[str]:
        return await self._ids("SELECT id FROM groups WHERE org_id = $1")

    async def members(self, group: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT user_id FROM group_members WHERE group_id = $1", uuid.UUID(group)
        )
        return sorted(str(r[0]) for r in rows)

    async def _patch(self, kind: str, rid: str, *ops: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": list(ops)}
        resp = await self.client.patch(f"/scim/v2/{kind}/{rid}", json=body, headers=self.h)
        assert resp.status in (200, 204), await resp.text()

    async def create(self) -> str:
        self.counter += 1
        name = f"p{self.counter}-{self.rng.randrange(10**6)}@example.com"
        resp = await self.client.post("/scim/v2/Users", json={"userName": name}, headers=self.h)
        assert resp.status == 201, await resp.text()
        return str((await resp.json(content_type=None))["id"])

    async def step(self) -> str:
        """One random change; returns its name."""
        rng = self.rng
        active, inactive = await self.users("active"), await self.users("NOT active")
        everyone, groups = active + inactive, await self.groups()
        kind = rng.choices(
            [
                "deactivate",
                "put_inactive",
                "delete",
                "remove_member",
                "group_put",
                "delete_group",
                "reactivate",
                "add_member",
                "rename",
                "create",
            ],
            weights=[12, 6, 10, 12, 5, 2, 6, 10, 8, 6],
        )[0]
        if kind in ("deactivate", "put_inactive", "rename") and active:
            uid = rng.choice(active)
            if kind == "deactivate":
                await self._patch("Users", uid, {"op": "replace", "value": {"active": False}})
            elif kind == "rename":
                self.counter += 1
                await self._patch(
                    "Users",
                    uid,
                    {"op": "replace", "path": "displayName", "value": f"R{self.counter}"},
                )
            else:
                name = await self.db.fetchval(
                    "SELECT attrs ->> 'userName' FROM users WHERE id = $1", uuid.UUID(uid)
                )
                resp = await self.client.put(
                    f"/scim/v2/Users/{uid}",
                    json={"userName": name, "active": False},
                    headers=self.h,
                )
                assert resp.status == 200, await resp.text()
        elif kind == "delete" and everyone:
            resp = await self.client.delete(
                f"/scim/v2/Users/{rng.choice(everyone)}", headers=self.h
            )
            assert resp.status == 204, await resp.text()
        elif kind == "reactivate" and inactive:
            await self._patch(
                "Users", rng.choice(inactive), {"op": "replace", "value": {"active": True}}
            )
        elif kind in ("remove_member", "add_member", "group_put", "delete_group") and groups:
            gid = rng.choice(groups)
            members = await self.members(gid)
            if kind == "remove_member" and members:
                value = [{"value": u} for u in rng.sample(members, min(2, len(members)))]
                await self._patch(
                    "Groups", gid, {"op": "remove", "path": "members", "value": value}
                )
            elif kind == "add_member" and everyone:
                value = [{"value": u} for u in rng.sample(everyone, min(2, len(everyone)))]
                await self._patch("Groups", gid, {"op": "add", "path": "members", "value": value})
            elif kind == "group_put" and everyone:
                name = await self.db.fetchval(
                    "SELECT display_name FROM groups WHERE id = $1", uuid.UUID(gid)
                )
                keep = rng.sample(everyone, min(len(everyone), rng.randrange(1, 8)))
                body = {"displayName": name, "members": [{"value": u} for u in keep]}
                resp = await self.client.put(f"/scim/v2/Groups/{gid}", json=body, headers=self.h)
                assert resp.status == 200, await resp.text()
            elif kind == "delete_group":
                resp = await self.client.delete(f"/scim/v2/Groups/{gid}", headers=self.h)
                assert resp.status == 204, await resp.text()
            else:
                return "nothing"
        elif kind == "create":
            await self.create()
        else:
            return "nothing"
        return kind


def webhook_copy(example: dict[str, Any], receiver: Receiver, org: str) -> Any:
    copy = example["Directory"]("http://unused", ADMIN_TOKEN, org)
    for entry in receiver.accepted:
        if entry["event"].get("orgid") == org:
            assert copy.apply(entry["event"]), f"a hole before {entry['event']}"
    return copy


@pytest.mark.parametrize(("seed", "decision"), [(11, "release"), (12, "reject"), (13, "release")])
async def test_no_consumer_sees_access_reduced_once_tripped(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    seed: int,
    decision: str,
) -> None:
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver, **GUARD)))
    idp = Idp(client, tenant, db, seed)
    org = str(tenant.org_id)
    users = [await idp.create() for _ in range(USERS)]
    for g in range(GROUPS):
        body = {
            "displayName": f"Vault {g}",
            "members": [{"value": u} for u in idp.rng.sample(users, 8)],
        }
        resp = await client.post("/scim/v2/Groups", json=body, headers=tenant.headers)
        assert resp.status == 201
    await outbox_settled(db)
    example = consumer_example()
    pulled = example["Directory"](str(client.make_url("")), ADMIN_TOKEN, org)

    async with aiohttp.ClientSession() as session:
        await pulled.bootstrap(session)
        at_trip: Access | None = None
        steps = []
        for _ in range(OPS):
            before = await store_access(db, tenant.org_id)
            steps.append(await idp.step())
            tripped = await db.fetchval(
                "SELECT guard_tripped_at IS NOT NULL FROM organizations WHERE id = $1",
                tenant.org_id,
            )
            if tripped and at_trip is None:
                at_trip = before
        assert at_trip is not None, f"the guard never tripped: {steps}"
        reduced_after = at_trip - await store_access(db, tenant.org_id)
        assert reduced_after, "the changes after the trip reduced nobody's access"

        # Held: no consumer sees any access lost that existed when the guard tripped.
        await outbox_settled(db)
        assert await pulled.pull(session), "no hole in the pull feed"
        fresh = example["Directory"](str(client.make_url("")), ADMIN_TOKEN, org)
        await fresh.bootstrap(session)
        for name, copy in (
            ("webhook", webhook_copy(example, receiver, org)),
            ("pull feed", pulled),
            ("snapshot", fresh),
        ):
            lost = at_trip - copy_access(copy)
            assert not lost, f"{name} saw access removed while the guard held it: {sorted(lost)}"
        assert await example["verify"](pulled, session), "the pull copy matches the digest"

        resp = await client.post(f"/admin/v1/orgs/{org}/guard/{decision}", headers=admin_headers)
        assert resp.status == 200, await resp.text()
        await outbox_settled(db)
        assert await db.fetchval("SELECT count(*) FROM guard_holds") == 0
        store = await store_access(db, tenant.org_id)
        if decision == "reject":
            assert at_trip <= store, "the rejection restored every access it held back"
        else:
            assert not store & reduced_after, "the release applied every held reduction"
        assert await example["verify"](pulled, session), "the pull copy equals the store"
        hooked = webhook_copy(example, receiver, org)
        resp = await client.get(f"/admin/v1/orgs/{org}/digest", headers=admin_headers)
        assert example["copy_digest"](hooked) == (await resp.json())["digest"]
        assert copy_access(pulled) == store
        assert copy_access(hooked) == store
