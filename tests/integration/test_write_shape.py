"""A change and its events are written by one statement, for users and groups alike: the
round trips a write costs, and what a change that touches no row writes (nothing)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from scim_service import errors
from scim_service.events import envelope as ev
from scim_service.events.emitter import Emitter
from scim_service.provisioning import groups as provisioning_groups
from scim_service.provisioning import users as provisioning_users
from scim_service.provisioning.scope import Scope
from scim_service.store import users as user_store
from scim_service.store.db import QUERIES as Q
from tests.conftest import Tenant
from tests.support import recorded_connection

EMITTER = Emitter("http://scim.test/scim/v2", ("log",))


async def _events(db: asyncpg.Connection, subject: uuid.UUID) -> list[tuple[int, str]]:
    rows = await db.fetch(
        "SELECT resource_version, type FROM events WHERE subject = $1 ORDER BY seq", subject
    )
    return [(r["resource_version"], r["type"]) for r in rows]


async def test_user_writes_carry_their_events(
    database_url: str, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """POST /Users is a primary-key read of the organization's role settings (the event carries
    the user's role) and one statement; a PATCH is BEGIN, the row lock, the user's role, (a
    deactivation reduces access: the organization's row lock for the guard), one statement
    writing the new version with its events, COMMIT. The events are numbered 1, 2, 3 in order."""
    conn, statements = await recorded_connection(database_url)
    scope = Scope(tenant.org_id, EMITTER)
    try:
        user = await provisioning_users.create_user(conn, scope, {"userName": "shape@example.com"})
        await asyncio.sleep(0)  # query loggers are called soon after the query
        assert statements == [Q["role_settings"], Q["insert_user_with_events"]]
        statements.clear()
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "value": {"displayName": "Shape", "active": False}},
            ],
        }
        await provisioning_users.patch_user(conn, scope, user.id, body, None)
        await asyncio.sleep(0)
        writes = [q for q in statements if not q.startswith(("BEGIN", "COMMIT"))]
        assert writes[:4] == [
            Q["lock_user"],
            Q["effective_roles"],
            Q["guard_lock_org"],
            Q["update_user_attrs"],
        ]
        assert Q["insert_events"] not in statements
    finally:
        await conn.close()
    assert await _events(db, user.id) == [
        (1, ev.USER_PROVISIONED),
        (2, ev.USER_UPDATED),
        (3, ev.USER_DEPROVISIONED),
    ]


async def test_group_writes_carry_their_events(
    database_url: str, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """Creating, renaming and deleting a group: each change's version and its events in one
    statement (no separate events statement), numbered 1, 2, 3."""
    conn, statements = await recorded_connection(database_url)
    scope = Scope(tenant.org_id, EMITTER)
    try:
        group, _ = await provisioning_groups.create_group(conn, scope, {"displayName": "g"})
        statements.clear()
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "h"}],
        }
        await provisioning_groups.patch_group(conn, scope, group.id, body, None)
        await provisioning_groups.delete_group(conn, scope, group.id, None)
        await asyncio.sleep(0)
        assert Q["update_group"] in statements and Q["delete_group"] in statements
        assert Q["insert_events"] not in statements
    finally:
        await conn.close()
    assert [v for v, _ in await _events(db, group.id)] == [1, 2, 3]


async def test_a_change_that_touches_no_row_writes_no_event(
    tenant: Tenant, db: asyncpg.Connection
) -> None:
    """The events of a write-with-events statement are written only with its change: an
    update of a user that does not exist raises 404 and leaves no event behind, even on a
    connection outside any transaction."""
    missing = uuid.uuid4()
    event = ev.user_setup_completed(tenant.org_id, missing, {}, completed_at=datetime.now(UTC))
    rows = EMITTER.rows(tenant.org_id, [event], [1])
    with pytest.raises(errors.NotFound):
        await user_store.update_user_attrs(db, tenant.org_id, missing, {"userName": "x"}, rows)
    assert await _events(db, missing) == []
