"""Filters IdPs send on large organizations use indexes (their cost does not grow with the
number of users): EXPLAIN of the SQL our compiler produces, on 20,000 users."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from scim_service.scim.filter import parse_filter
from scim_service.store.users import filter_sql
from tests.conftest import Tenant, make_tenant

N = 20_000


@pytest.fixture(name="big_org")
async def fixture_big_org(
    db: asyncpg.Connection,
) -> AsyncIterator[tuple[asyncpg.Connection, Tenant]]:
    tenant = await make_tenant(db, "big")
    other = await make_tenant(db, "noise")
    for org, n in ((tenant.org_id, N), (other.org_id, 2000)):
        await db.execute(
            """
            INSERT INTO users (id, org_id, attrs)
            SELECT gen_random_uuid(), $1, jsonb_build_object(
                'userName', 'user' || i || '@example.com',
                'displayName', 'User ' || i,
                'externalId', 'ext-' || i,
                'active', true,
                'emails', jsonb_build_array(jsonb_build_object(
                    'value', 'u' || i || '@corp' || (i % 50) || '.example', 'type', 'work')))
            FROM generate_series(1, $2) AS i
            """,
            org,
            n,
        )
    await db.execute("ANALYZE users")
    has_trgm = await db.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
    if not has_trgm:
        pytest.skip("pg_trgm is not installed on this server")
    yield db, tenant


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out.extend(plan_nodes(child))
    return out


async def explain(
    db: asyncpg.Connection, tenant: Tenant, filter_: str, generic: bool
) -> list[dict[str, Any]]:
    where, params = filter_sql(tenant.org_id, parse_filter(filter_))
    sql = f"SELECT u.id FROM users u WHERE {where} ORDER BY u.created_at, u.id LIMIT 100"
    async with db.transaction():
        if generic:
            await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params.values)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan_nodes(plan)


CASES = [
    ('userName eq "user123@example.com"', "users_org_username_key"),
    ('userName sw "user1234"', "users_org_username_key"),
    ('userName co "er1234@"', "users_username_trgm"),
    ('userName ew "1234@example.com"', "users_username_trgm"),
    ('displayName eq "User 77"', "users_org_display_name"),
    ('displayName sw "User 777"', "users_org_display_name"),
    ('displayName co "ser 1234"', "users_display_name_trgm"),
    ('externalId eq "ext-99"', "users_org_external_id"),
    ('emails.value eq "u42@corp42.example"', "users_emails"),
    ('emails eq "u42@corp42.example"', "users_emails"),
    ('emails.value sw "u4242@"', "user_emails_org_value"),
    ('emails.value co "4242@corp"', "users_emails_trgm"),
    # Entra matching on `emails[type eq "work"].value`, and the RFC value-path forms
    ('emails[type eq "work"].value eq "u42@corp42.example"', "users_emails"),
    ('emails[type eq "work" and value eq "u42@corp42.example"]', "users_emails"),
    ('emails[type eq "work"].value sw "u4242@"', "user_emails_org_value"),
    ('emails[type eq "work"].value co "4242@corp"', "users_emails_trgm"),
    ('emails[type eq "work"].value ew "4242@corp42.example"', "users_emails_trgm"),
]


async def test_filters_use_indexes(big_org: tuple[asyncpg.Connection, Tenant]) -> None:
    """Each filter, with a custom and with a generic plan (asyncpg re-uses prepared
    statements, so PostgreSQL may switch to a generic plan), scans an index, never the table."""
    db, tenant = big_org
    problems = []
    for filter_, index in CASES:
        for generic in (False, True):
            nodes = await explain(db, tenant, filter_, generic)
            used = {n.get("Index Name") for n in nodes if n.get("Index Name")}
            seq = [
                n
                for n in nodes
                if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "users"
            ]
            plan = "generic" if generic else "custom"
            if index not in used:
                problems.append(
                    f"{filter_} ({plan} plan): expected {index}, used {used or 'no index'}"
                )
            if seq:
                problems.append(f"{filter_} ({plan} plan): sequential scan of users")
    assert not problems, "\n".join(problems)
