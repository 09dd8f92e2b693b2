"""The SCIM activity log: every SCIM request of an organization, written off the request path,
with masked bodies; failed authentications filed under the organization whose token prefix
they carry, without telling the caller anything."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from scim_service.activity import UNVERIFIED_PER_MINUTE, ActivityLog, Record, idp_of, mask_body
from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.store.db import connect
from tests.conftest import Tenant, make_tenant
from tests.support import PATCH_OP, cli, entries, ok_json

JUMPCLOUD = {"User-Agent": "JumpCloud-SCIM/1.0"}


def test_idp_from_user_agent() -> None:
    assert idp_of("Okta SCIM Client 1.0.0") == "Okta"
    assert idp_of("JumpCloud-SCIM/1.0") == "JumpCloud"
    assert idp_of("Microsoft.Azure.ActiveDirectory") == "Entra"
    assert idp_of("curl/8.0") == "other" and idp_of(None) == "other"


def test_bodies_lose_their_secrets() -> None:
    raw = msgspec.json.encode(
        {
            "userName": "ann",
            "Password": "hunter2",
            "Operations": [{"op": "replace", "value": {"password": "p@ss"}}],
            "note": "token scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA here",
        }
    )
    text, _ = mask_body(raw)
    assert text is not None
    assert "hunter2" not in text and "p@ss" not in text and "scim_AAAAAAAA" not in text
    assert '"userName":"ann"' in text


async def test_failed_patch_is_logged_with_its_masked_body(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """A successful POST is logged without bodies; a failed PATCH with both, password masked,
    its scimType and detail, the IdP, the token prefix and the request id."""
    resp = await client.post(
        "/scim/v2/Users",
        json={"userName": "ann@example.com", "password": "Secret-1"},
        headers={**tenant.headers, **JUMPCLOUD},
    )
    assert resp.status == 201
    uid = (await resp.json(content_type=None))["id"]
    bad = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "password", "value": "Secret-2"},
            {"op": "replace", "path": "active", "value": "maybe"},
        ],
    }
    resp = await client.patch(
        f"/scim/v2/Users/{uid}", json=bad, headers={**tenant.headers, "X-Request-ID": "req-42"}
    )
    assert resp.status == 400
    error = await resp.json(content_type=None)
    found = await entries(client, tenant.org_id, admin_headers, count=2)
    created, failed = found[-2:]
    assert created["status"] == 201 and created["route"] == "/scim/v2/Users"
    assert created["idp"] == "JumpCloud" and created["request_body"] is None
    assert failed["method"] == "PATCH" and failed["status"] == 400
    assert failed["route"] == "/scim/v2/Users/{id}" and failed["path"] == f"/scim/v2/Users/{uid}"
    assert failed["scim_type"] == error["scimType"] == "invalidValue"
    assert failed["detail"] == error["detail"]
    assert failed["request_id"] == "req-42"
    assert failed["token_prefix"] == tenant.token[:11]
    assert "Secret-2" not in failed["request_body"]
    operations = msgspec.json.decode(failed["request_body"])["Operations"]
    assert [o["value"] for o in operations] == ["***", "maybe"], "a PATCH of password is masked"
    assert failed["response_body"] is not None and "invalidValue" in failed["response_body"]
    errors_only = await entries(client, tenant.org_id, admin_headers, count=1, query="?errors=1")
    assert [e["status"] for e in errors_only] == [400]


async def test_mistyped_token_appears_in_its_org_only(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """A token with a typo after its prefix is 401 like any unknown token (same body), and the
    attempt is in the log of the organization owning that prefix, not in any other."""
    other = await make_tenant(db, "other")
    typo = tenant.token[:-3] + ("abc" if not tenant.token.endswith("abc") else "xyz")
    unknown = "scim_" + "Z" * 43
    answers = []
    for token in (typo, unknown):
        resp = await client.get(
            "/scim/v2/Users", headers={"Authorization": f"Bearer {token}", **JUMPCLOUD}
        )
        answers.append((resp.status, await resp.read()))
    assert answers[0] == answers[1] and answers[0][0] == 401
    found = await entries(client, tenant.org_id, admin_headers, count=1)
    assert len(found) == 1
    attempt = found[0]
    assert attempt["status"] == 401 and attempt["auth_failure"] == "invalid"
    assert attempt["token_prefix"] == tenant.token[:11] and attempt["idp"] == "JumpCloud"
    # The writer drains one FIFO queue in order: once a later request of the other org is in
    # its log, any wrongly filed attempt would be there before it.
    assert (await client.get("/scim/v2/Users", headers=other.headers)).status == 200
    logged = await entries(client, other.org_id, admin_headers, count=1)
    assert [e["status"] for e in logged] == [200], "only its own request"
    # A revoked token: logged as revoked.
    await db.execute("UPDATE scim_tokens SET revoked_at = now() WHERE id = $1", tenant.token_id)
    resp = await client.get("/scim/v2/Users", headers={**tenant.headers, **JUMPCLOUD})
    assert resp.status == 401
    found = await entries(client, tenant.org_id, admin_headers, count=2)
    assert found[-1]["auth_failure"] == "revoked"


async def test_capture_off_writes_nothing(
    aiohttp_client: Any, settings: Settings, tenant: Tenant, db: asyncpg.Connection
) -> None:
    client = await aiohttp_client(create_app(msgspec.structs.replace(settings, activity_log="off")))
    resp = await client.get("/scim/v2/Users", headers=tenant.headers)
    assert resp.status == 200
    await client.close()  # the app stops: its activity writer flushes what it queued
    assert await db.fetchval("SELECT count(*) FROM scim_activity") == 0


async def test_retention_and_cap_are_pruned(
    settings: Settings, tenant: Tenant, database_url: str, db: asyncpg.Connection
) -> None:
    """Entries older than the retention go; an organization keeps its newest `cap` entries."""
    log = ActivityLog(msgspec.structs.replace(settings, activity_max_per_org=5))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        now = datetime.now(UTC)
        for i in range(12):
            at = now - timedelta(days=30) if i < 3 else now
            log.record(
                Record(
                    org_id=tenant.org_id,
                    at=at,
                    method="GET",
                    route="/scim/v2/Users",
                    path="/scim/v2/Users",
                    status=200,
                    duration_ms=1.0,
                    user_agent=None,
                    token_prefix=None,
                    auth_failure=None,
                    request_id=f"r{i}",
                    request_body=None,
                    response_body=None,
                    keep_bodies=False,
                )
            )
        await log.flush(pool.acquire)
        assert await db.fetchval("SELECT count(*) FROM scim_activity") == 12
        assert await log.prune(pool.acquire) == 7
        kept = await db.fetch("SELECT request_id FROM scim_activity ORDER BY id")
        assert [r["request_id"] for r in kept] == [f"r{i}" for i in range(7, 12)]
    finally:
        await pool.close()


async def test_cli_activity(client: Any, tenant: Tenant, database_url: str) -> None:
    """`scim-service activity ORG [--errors] [--json]` and a bounded `--follow`."""
    resp = await client.get("/scim/v2/Users/nope", headers={**tenant.headers, **JUMPCLOUD})
    assert resp.status == 404
    resp = await client.get(
        "/scim/v2/Users", headers={"Authorization": f"Bearer {tenant.token[:-1]}x", **JUMPCLOUD}
    )
    assert resp.status == 401
    org = str(tenant.org_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conn = await connect(database_url)
        try:
            n = await conn.fetchval("SELECT count(*) FROM scim_activity")
        finally:
            await conn.close()
        if n >= 2:
            break
        await asyncio.sleep(0.05)
    proc = await asyncio.to_thread(cli, database_url, "activity", org)
    assert proc.returncode == 0, proc.stderr
    assert f"401 invalid token {tenant.token[:11]}… from JumpCloud" in proc.stdout
    assert "404 GET /scim/v2/Users/nope from JumpCloud" in proc.stdout
    found = ok_json(
        await asyncio.to_thread(cli, database_url, "activity", org, "--errors", "--json")
    )
    assert [e["status"] for e in found] == [404, 401]
    proc = await asyncio.to_thread(
        cli, database_url, "activity", org, "--follow", "--for", "1", "--json"
    )
    assert proc.returncode == 0, proc.stderr


URN_PASSWORD = "urn:ietf:params:scim:schemas:core:2.0:User:password"


async def test_urn_qualified_passwords_never_reach_the_log(
    client: Any, tenant: Tenant, admin_headers: dict[str, str]
) -> None:
    """Issue 22: a failing POST and a failing path-less PATCH (as Entra sends it) whose body
    holds the URN-qualified password key, in any case, are logged with the password masked."""
    resp = await client.post(
        "/scim/v2/Users",
        json={"userName": "ann@example.com", URN_PASSWORD: "Leak-Post-1", "active": "maybe"},
        headers=tenant.headers,
    )
    assert resp.status == 400
    resp = await client.post(
        "/scim/v2/Users", json={"userName": "bob@example.com"}, headers=tenant.headers
    )
    assert resp.status == 201
    uid = (await resp.json(content_type=None))["id"]
    bad = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "Replace",
                "value": {URN_PASSWORD.upper(): "Leak-Patch-2", "active": "maybe"},
            },
        ],
    }
    resp = await client.patch(f"/scim/v2/Users/{uid}", json=bad, headers=tenant.headers)
    assert resp.status == 400
    found = await entries(client, tenant.org_id, admin_headers, count=2, query="?errors=1")
    assert [e["method"] for e in found] == ["POST", "PATCH"]
    for e in found:
        assert e["request_body"] is not None
        text = msgspec.json.encode(e).decode()
        assert "Leak-Post-1" not in text and "Leak-Patch-2" not in text, text


async def _status(client: Any, org: Any, admin: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(f"/admin/v1/orgs/{org}/status", headers=admin)
    assert resp.status == 200
    found: dict[str, Any] = await resp.json()
    return found


async def test_unauthenticated_flood_with_a_public_prefix_does_not_move_the_status(
    client: Any,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
    database_url: str,
) -> None:
    """Issue 22: 50 requests whose token carries a real token's public prefix but does not
    authenticate (any User-Agent) are kept apart: at most UNVERIFIED_PER_MINUTE of them per
    source and prefix are logged, marked unverified, and the organization's status (error rate,
    warnings) does not move, neither in the admin API nor in `org status`."""
    for _ in range(5):
        assert (await client.get("/scim/v2/Users", headers=tenant.headers)).status == 200
    assert (await client.get("/scim/v2/Users/nope", headers=tenant.headers)).status == 404
    await entries(client, tenant.org_id, admin_headers, count=6)
    before = await _status(client, tenant.org_id, admin_headers)
    assert before["last_hour"] == {"requests": 6, "errors": 1, "rate": round(1 / 6, 4)}
    forged = {"Authorization": f"Bearer {tenant.token[:11]}{'Q' * 37}", **JUMPCLOUD}
    for _ in range(50):
        assert (await client.get("/scim/v2/Users", headers=forged)).status == 401
    # Another organization's request after the flood: once it is in its log (one FIFO queue
    # for every organization, written in order), anything beyond the limit would be too.
    marker = await make_tenant(db, "marker")
    assert (await client.get("/scim/v2/Users", headers=marker.headers)).status == 200
    await entries(client, marker.org_id, admin_headers, count=1)
    found = await entries(client, tenant.org_id, admin_headers, count=6, query="?limit=1000")
    flood = [e for e in found if e["auth_failure"] == "invalid"]
    assert len(flood) == UNVERIFIED_PER_MINUTE and all(e["unverified"] for e in flood)
    assert not any(e["unverified"] for e in found if e["auth_failure"] is None)
    after = await _status(client, tenant.org_id, admin_headers)
    assert after["last_hour"] == before["last_hour"] and after["warnings"] == before["warnings"]
    status = ok_json(
        await asyncio.to_thread(cli, database_url, "org", "status", str(tenant.org_id), "--json")
    )
    assert status["last_hour"] == before["last_hour"]
    proc = await asyncio.to_thread(cli, database_url, "activity", str(tenant.org_id), "--errors")
    assert "(unverified: only the public prefix matched)" in proc.stdout


async def test_a_refused_genuine_token_is_verified_and_counts(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """A revoked token matched a token: its attempt is filed under its own organization as a
    verified entry and counts in the error rate (the IdP needs a new token)."""
    await db.execute("UPDATE scim_tokens SET revoked_at = now() WHERE id = $1", tenant.token_id)
    assert (await client.get("/scim/v2/Users", headers=tenant.headers)).status == 401
    (entry,) = await entries(client, tenant.org_id, admin_headers, count=1)
    assert entry["auth_failure"] == "revoked" and entry["unverified"] is False
    status = await _status(client, tenant.org_id, admin_headers)
    assert status["last_hour"]["errors"] == 1


async def test_unverified_entries_never_push_real_ones_past_the_cap(
    settings: Settings, tenant: Tenant, database_url: str, db: asyncpg.Connection
) -> None:
    """The per-organization cap counts verified entries only; unverified ones have their own."""
    log = ActivityLog(msgspec.structs.replace(settings, activity_max_per_org=5))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    prefix = tenant.token[:11]
    try:
        for i in range(25):
            real = i < 5
            log.record(
                Record(
                    org_id=tenant.org_id if real else None,
                    at=datetime.now(UTC),
                    method="GET",
                    route="/scim/v2/Users",
                    path="/scim/v2/Users",
                    status=200 if real else 401,
                    duration_ms=1.0,
                    user_agent=None,
                    token_prefix=prefix,
                    auth_failure=None if real else "invalid",
                    request_id=f"r{i}",
                    request_body=None,
                    response_body=None,
                    keep_bodies=False,
                )
            )
        await log.flush(pool.acquire)
        log._touched.add(tenant.org_id)
        assert await log.prune(pool.acquire) == 15
        kept = await db.fetch("SELECT request_id, unverified FROM scim_activity ORDER BY id")
        assert [r["request_id"] for r in kept if not r["unverified"]] == [f"r{i}" for i in range(5)]
        assert [r["request_id"] for r in kept if r["unverified"]] == [
            f"r{i}" for i in range(20, 25)
        ]
    finally:
        await pool.close()


def test_unverified_entries_are_rate_limited_per_source_and_prefix(settings: Settings) -> None:
    log = ActivityLog(settings)
    admitted = [log.admit_unverified("10.0.0.1", "scim_abcdef", now=100.0) for _ in range(15)]
    assert admitted.count(True) == UNVERIFIED_PER_MINUTE and log.unverified_dropped == 5
    assert log.admit_unverified("10.0.0.2", "scim_abcdef", now=100.0)
    assert log.admit_unverified("10.0.0.1", "scim_ghijkl", now=100.0)
    assert log.admit_unverified("10.0.0.1", "scim_abcdef", now=161.0), "a new minute"
