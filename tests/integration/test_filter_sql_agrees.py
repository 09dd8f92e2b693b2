"""Property: for any filter, the SQL the compiler produces selects exactly the users the
in-memory evaluator (`scim.evaluate.matches`) selects on their SCIM representations.

Hypothesis generates filters from the RFC 7644 grammar over real User attributes, with values
drawn from (and mutated around) the stored data; a real PostgreSQL answers the SQL.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_service.errors import InvalidFilter
from scim_service.scim import schema as s
from scim_service.scim.evaluate import matches
from scim_service.scim.filter import parse_filter
from scim_service.scim.mapping import user_resource
from scim_service.scim.resource import normalize_resource
from scim_service.store.db import connect
from scim_service.store.users import filter_sql
from tests.conftest import _SESSION, with_database

ENT = s.ENTERPRISE_USER_SCHEMA
WORDS = [
    "Ann",
    "anna",
    "BOB",
    "Bo_b",
    "c%d",
    "Ünïcödé",
    "zoë",
    "O'Brien",
    "x",
    "",
    "Smith",
    "smithson",
]


def make_users(rng: random.Random, n: int) -> list[dict[str, Any]]:
    users = []
    for i in range(n):
        attrs: dict[str, Any] = {
            "userName": f"{rng.choice(WORDS)}{i}@{rng.choice(['ex.com', 'EX.org', 'corp.io'])}"
        }
        attrs["active"] = rng.random() < 0.7
        if rng.random() < 0.7:
            attrs["displayName"] = f"{rng.choice(WORDS)} {rng.choice(WORDS)}".strip()
        if rng.random() < 0.5:
            attrs["title"] = rng.choice(["Engineer", "engineer", "CTO", "Tour Guide"])
        if rng.random() < 0.6:
            attrs["externalId"] = rng.choice(["A1", "a1", "B-2", f"ext{i}"])
        if rng.random() < 0.8:
            attrs["name"] = {
                k: rng.choice(WORDS) for k in ("givenName", "familyName") if rng.random() < 0.8
            }
            if not attrs["name"]:
                del attrs["name"]
        emails = []
        for j in range(rng.choice([0, 1, 1, 2, 3])):
            email: dict[str, Any] = {
                "value": f"{rng.choice(WORDS).lower() or 'e'}{j}@{rng.choice(['ex.com', 'Corp.IO', 'mail.net'])}"
            }
            if rng.random() < 0.8:
                email["type"] = rng.choice(["work", "home", "other", "Work"])
            if j == 0 and rng.random() < 0.5:
                email["primary"] = True
            if rng.random() < 0.1:
                del email["value"]  # IdPs do send typed elements without a value
            emails.append(email)
        if emails:
            attrs["emails"] = emails
        if rng.random() < 0.4:
            attrs["phoneNumbers"] = [
                {"value": rng.choice(["555-0100", "555-0199", "+1 555"]), "type": "work"}
            ]
        if rng.random() < 0.3:
            attrs["roles"] = [{"value": rng.choice(["admin", "Admin", "viewer"])}]
        if rng.random() < 0.5:
            attrs[ENT] = {"department": rng.choice(["R&D", "r&d", "Sales"])}
        users.append(normalize_resource(s.USER_TYPE, attrs))  # as the API would store it
    return users


# --- filter generator -------------------------------------------------------------------------------

STRING_ATTRS = [
    "userName",
    "displayName",
    "title",
    "externalId",
    "name.givenName",
    "name.familyName",
    "emails.value",
    "emails",
    "emails.type",
    "phoneNumbers.value",
    "roles.value",
    f"{ENT}:department",
]
BOOL_ATTRS = ["active", "emails.primary"]
DATE_ATTRS = ["meta.created", "meta.lastModified"]
STRING_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
BASE_TIME = datetime(2030, 1, 1, tzinfo=UTC)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def string_values(draw: st.DrawFn, pool: list[str]) -> str:
    base = draw(st.sampled_from(pool))
    how = draw(st.sampled_from(["same", "upper", "lower", "prefix", "suffix", "middle", "random"]))
    if how == "upper":
        return base.upper()
    if how == "lower":
        return base.lower()
    if how in ("prefix", "suffix", "middle") and base:
        i = draw(st.integers(0, len(base)))
        j = draw(st.integers(i, len(base)))
        return {"prefix": base[:j], "suffix": base[i:], "middle": base[i:j]}[how]
    if how == "random":
        return draw(st.text(alphabet="abcxyzAB_%@.é0", max_size=4))
    return base


@st.composite
def atoms(draw: st.DrawFn, pool: list[str]) -> str:
    kind = draw(st.sampled_from(["string", "string", "string", "bool", "date", "present", "null"]))
    if kind == "string":
        attr = draw(st.sampled_from(STRING_ATTRS))
        return f"{attr} {draw(st.sampled_from(STRING_OPS))} {quote(draw(string_values(pool)))}"
    if kind == "bool":
        literal = draw(st.sampled_from(["true", "false", '"False"']))
        return (
            f"{draw(st.sampled_from(BOOL_ATTRS))} {draw(st.sampled_from(['eq', 'ne']))} {literal}"
        )
    if kind == "date":
        when = BASE_TIME + timedelta(seconds=draw(st.integers(-5, 60)))
        op = draw(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]))
        return f"{draw(st.sampled_from(DATE_ATTRS))} {op} {quote(when.isoformat().replace('+00:00', 'Z'))}"
    if kind == "null":
        return f"{draw(st.sampled_from(STRING_ATTRS + BOOL_ATTRS))} {draw(st.sampled_from(['eq', 'ne']))} null"
    return f"{draw(st.sampled_from(STRING_ATTRS + BOOL_ATTRS + ['name', 'emails', 'phoneNumbers']))} pr"


@st.composite
def email_value_path(draw: st.DrawFn, pool: list[str]) -> str:
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        sub = draw(st.sampled_from(["value", "type", "primary"]))
        if sub == "primary":
            terms.append(
                f"primary {draw(st.sampled_from(['eq', 'ne']))} {draw(st.sampled_from(['true', 'false']))}"
            )
        else:
            terms.append(
                f"{sub} {draw(st.sampled_from(STRING_OPS))} {quote(draw(string_values(pool)))}"
            )
    joiner = draw(st.sampled_from([" and ", " or "]))
    inner = joiner.join(terms)
    if draw(st.booleans()):
        inner = f"not ({inner})"
    return f"emails[{inner}]"


@st.composite
def email_value_path_sub(draw: st.DrawFn, pool: list[str]) -> str:
    """Entra's form `emails[type eq "work"].value eq "x"`: a value path, then a
    sub-attribute compared (or `pr`) like any attribute."""
    inner = draw(email_value_path(pool))
    sub = draw(st.sampled_from(["value", "value", "type", "primary", "Value"]))
    if sub == "primary":
        tail = f"{draw(st.sampled_from(['eq', 'ne']))} {draw(st.sampled_from(['true', 'false', 'null']))}"
    else:
        tail = draw(
            st.one_of(
                st.just("pr"),
                st.sampled_from(["eq null", "ne null"]),
                st.builds(
                    lambda op, v: f"{op} {quote(v)}",
                    st.sampled_from(STRING_OPS),
                    string_values(pool),
                ),
            )
        )
    return f"{inner}.{sub} {tail}"


def filters(pool: list[str]) -> st.SearchStrategy[str]:
    leaf = st.one_of(atoms(pool), atoms(pool), email_value_path(pool), email_value_path_sub(pool))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda f: f"not ({f})"),
        ),
        max_leaves=5,
    )


# --- the database side ------------------------------------------------------------------------------


@pytest.fixture(name="sample", scope="module")
def fixture_sample(
    pg_server: str, template_db: str
) -> Iterator[
    tuple[asyncio.AbstractEventLoop, asyncpg.Connection, uuid.UUID, list[dict[str, Any]]]
]:
    """40 varied users in a database of their own; their SCIM representations."""
    loop = asyncio.new_event_loop()
    name = f"scim_prop_{_SESSION}"
    rng = random.Random(7)
    users = make_users(rng, 40)

    async def setup() -> tuple[asyncpg.Connection, uuid.UUID, list[dict[str, Any]]]:
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        await admin.close()
        conn = await connect(with_database(pg_server, name))
        org = await conn.fetchval("INSERT INTO organizations (name) VALUES ('prop') RETURNING id")
        resources = []
        for i, attrs in enumerate(users):
            created = BASE_TIME + timedelta(seconds=i)
            row = await conn.fetchrow(
                "INSERT INTO users (id, org_id, attrs, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) "
                "RETURNING id, attrs, setup_state, setup_completed_at, version, created_at, updated_at",
                uuid.uuid4(),
                org,
                attrs,
                created,
                created + timedelta(seconds=i % 7),
            )
            resources.append(
                user_resource(
                    user_id=row["id"],
                    attrs=row["attrs"],
                    setup_state=row["setup_state"],
                    setup_completed_at=None,
                    version=row["version"],
                    created_at=row["created_at"],
                    updated_at=row["updated_at"],
                    groups=None,
                    base_url="http://scim.test/scim/v2",
                )
            )
        return conn, org, resources

    conn, org, resources = loop.run_until_complete(setup())
    yield loop, conn, org, resources
    loop.run_until_complete(conn.close())

    async def drop() -> None:
        admin = await asyncpg.connect(pg_server)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    loop.run_until_complete(drop())
    loop.close()


def value_pool(resources: list[dict[str, Any]]) -> list[str]:
    pool: set[str] = set(WORDS)

    def walk(v: Any) -> None:
        if isinstance(v, str):
            pool.add(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for r in resources:
        walk({k: v for k, v in r.items() if k not in ("id", "meta", "schemas")})
    return sorted(pool)


def test_sql_and_evaluator_agree(sample: Any) -> None:
    loop, conn, org, resources = sample
    pool = value_pool(resources)
    by_id = {r["id"]: r for r in resources}

    async def sql_ids(expr: Any) -> set[str]:
        where, params = filter_sql(org, expr)
        rows = await conn.fetch(f"SELECT u.id FROM users u WHERE {where}", *params.values)
        return {str(r["id"]) for r in rows}

    @settings(
        max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(filters(pool))
    def check(text: str) -> None:
        expr = parse_filter(text)
        try:
            expected = {rid for rid, r in by_id.items() if matches(s.USER_TYPE, expr, r)}
        except InvalidFilter:
            with pytest.raises(InvalidFilter):
                loop.run_until_complete(sql_ids(expr))
            return
        got = loop.run_until_complete(sql_ids(expr))
        assert got == expected, (
            f"{text}: SQL-only {got - expected}, evaluator-only {expected - got}"
        )

    check()
