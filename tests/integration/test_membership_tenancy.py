"""Membership statements are scoped by the organization themselves: a call naming another
organization's groups or users changes and returns nothing, whatever ids the caller passes.
(Tenancy does not rest on the ids having come from an org-scoped query.) And the organization
predicate keeps them on their indexes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from scim_service.events.emitter import Emitter
from scim_service.provisioning import groups as provisioning_groups
from scim_service.provisioning import users as provisioning_users
from scim_service.provisioning.scope import Scope
from scim_service.store import groups as group_store
from scim_service.store import users as user_store
from scim_service.store.db import QUERIES as Q
from tests.conftest import make_tenant

EMITTER = Emitter("http://scim.test/scim/v2", ("log",))


async def _members(db: asyncpg.Connection, group_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.fetch(
        "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id", group_id
    )
    return [r["user_id"] for r in rows]


@pytest.fixture(name="two_orgs")
async def fixture_two_orgs(db: asyncpg.Connection) -> dict[str, Any]:
    """Organization A with a group of two users; organization B with a user of its own."""
    a = Scope((await make_tenant(db, "a")).org_id, EMITTER)
    b = Scope((await make_tenant(db, "b")).org_id, EMITTER)
    alice = await provisioning_users.create_user(db, a, {"userName": "alice@a.example"})
    bob = await provisioning_users.create_user(db, a, {"userName": "bob@a.example"})
    carol = await provisioning_users.create_user(db, b, {"userName": "carol@b.example"})
    group, _ = await provisioning_groups.create_group(
        db,
        a,
        {"displayName": "team", "members": [{"value": str(alice.id)}, {"value": str(bob.id)}]},
    )
    return {"a": a, "b": b, "alice": alice, "bob": bob, "carol": carol, "group": group}


async def test_another_orgs_id_cannot_remove_members(
    db: asyncpg.Connection, two_orgs: dict[str, Any]
) -> None:
    """remove_members, remove_all_members, replace_members and remove_user_from_groups with
    organization B's id leave organization A's group as it was, and report nothing removed."""
    b, group, alice = two_orgs["b"].org_id, two_orgs["group"].id, two_orgs["alice"]
    before = await _members(db, group)
    assert len(before) == 2
    async with db.transaction():
        assert await group_store.remove_members(db, b, group, (str(alice.id),)) == ()
        assert await group_store.remove_all_members(db, b, group) == ()
        change = await group_store.replace_members(db, b, group, ())
        assert change.removed == ()
        assert await group_store.remove_user_from_groups(db, b, alice.id) == []
    assert await _members(db, group) == before


async def test_another_orgs_id_cannot_add_members(
    db: asyncpg.Connection, two_orgs: dict[str, Any]
) -> None:
    """add_members and replace_members with organization B's id and B's user do not put that
    user into organization A's group."""
    b, group, carol = two_orgs["b"].org_id, two_orgs["group"].id, two_orgs["carol"]
    before = await _members(db, group)
    async with db.transaction():
        assert (await group_store.add_members(db, b, group, (str(carol.id),))).added == ()
        change = await group_store.replace_members(db, b, group, (str(carol.id),))
        assert change.added == ()
    assert await _members(db, group) == before


async def test_another_orgs_id_reads_no_memberships(
    db: asyncpg.Connection, two_orgs: dict[str, Any]
) -> None:
    """members_of, members_of_group and attach_groups with organization B's id return no
    member and no group of organization A (and A's own id returns them)."""
    a, b = two_orgs["a"].org_id, two_orgs["b"].org_id
    group, alice = two_orgs["group"].id, two_orgs["alice"]
    assert await group_store.members_of(db, b, [group]) == {group: []}
    assert await group_store.members_of_group(db, b, group) == []
    user = await user_store.get_user(db, a, alice.id)
    assert user is not None
    users = [user]
    await user_store.attach_groups(db, b, users)
    assert users[0].groups == []
    # The same calls with the right organization see the membership.
    assert len((await group_store.members_of(db, a, [group]))[group]) == 2
    assert len(await group_store.members_of_group(db, a, group)) == 2
    await user_store.attach_groups(db, a, users)
    assert users[0].groups == [(group, "team")]


# --- plans ------------------------------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(_nodes(child))
    return out


async def test_membership_statements_stay_on_their_indexes(db: asyncpg.Connection) -> None:
    """On 20,000 users in 400 groups (two organizations), every membership statement reads
    group_members, groups and users through their indexes: the organization predicate adds
    no scan of any table."""
    orgs = [(await make_tenant(db, name)).org_id for name in ("big", "noise")]
    for org in orgs:
        await db.execute(
            """
            INSERT INTO users (id, org_id, attrs)
            SELECT md5($1 || i)::uuid, $1::uuid, jsonb_build_object('userName', 'u' || i)
            FROM generate_series(1, 10000) AS i
            """,
            str(org),
        )
        await db.execute(
            """
            INSERT INTO groups (id, org_id, attrs)
            SELECT md5($1 || 'g' || i)::uuid, $1::uuid, jsonb_build_object('displayName', 'g' || i)
            FROM generate_series(1, 200) AS i
            """,
            str(org),
        )
        await db.execute(
            """
            INSERT INTO group_members (group_id, user_id)
            SELECT md5($1 || 'g' || (i % 200 + 1))::uuid, md5($1 || i)::uuid
            FROM generate_series(1, 10000) AS i
            """,
            str(org),
        )
    await db.execute("ANALYZE users; ANALYZE groups; ANALYZE group_members")
    org = orgs[0]
    group = uuid.UUID(await db.fetchval("SELECT md5($1 || 'g1')", str(org)))
    user = uuid.UUID(await db.fetchval("SELECT md5($1 || '1')", str(org)))
    cases: dict[str, tuple[Any, ...]] = {
        "remove_members": (org, group, [user]),
        "remove_all_members": (org, group),
        "replace_members": (org, group, [user]),
        "add_members": (org, group, [user]),
        "group_members": (org, group),
        "members_of_groups": (org, [group]),
        "groups_of_users": (org, [user]),
        "remove_user_from_groups": (org, user),
        "get_user_with_groups": (org, user),
    }
    for name, args in cases.items():
        plan = await db.fetchval("EXPLAIN (FORMAT JSON) " + Q[name], *args)
        scans = [
            n["Relation Name"]
            for n in _nodes(plan[0]["Plan"])
            if n["Node Type"] == "Seq Scan" and "Relation Name" in n
        ]
        assert scans == [], (name, scans)
