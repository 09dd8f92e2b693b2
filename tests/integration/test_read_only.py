"""A database that cannot take writes answers SCIM 503 with Retry-After (issue 23)."""

from __future__ import annotations

from typing import Any

import asyncpg

from scim_service.keys import POOL
from tests.conftest import Tenant


async def test_read_only_database_is_503_with_retry_after(
    client: Any, tenant: Tenant, db: asyncpg.Connection
) -> None:
    """With default_transaction_read_only on (a failover in progress), a create is a 503 with
    Retry-After and an RFC 7644 §3.12 body, not a 500."""
    name = await db.fetchval("SELECT current_database()")
    await db.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    await client.server.app[POOL].expire_connections()  # new sessions see the setting
    resp = await client.post("/scim/v2/Users", json={"userName": "ro"}, headers=tenant.headers)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.content_type == "application/scim+json"
    body = await resp.json()
    assert body["status"] == "503"
    assert "read-only" in body["detail"]
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["status"] == "read_only"
