"""SCIM tokens: shown once, stored as digests, verified, expired, revoked."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from scim_service import errors
from scim_service.auth import Authenticator, Principal
from scim_service.provisioning import tenants
from scim_service.tokens import generate_token, looks_like_token, token_digest
from tests.conftest import Tenant


async def authenticate(conn: asyncpg.Connection, token: str) -> Principal:
    """The service's one authentication (auth.Authenticator), uncached, on `conn`."""

    @contextlib.asynccontextmanager
    async def on_conn() -> AsyncIterator[asyncpg.Connection]:
        yield conn

    return await Authenticator(None, "", 0, acquire=on_conn).authenticate(token)


def test_token_format_has_256_random_bits() -> None:
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200
    for t in tokens:
        assert looks_like_token(t)
        assert t.startswith("scim_") and len(t) == 5 + 43  # 32 bytes, base64url, unpadded


async def test_only_the_digest_is_stored(db: asyncpg.Connection, tenant: Tenant) -> None:
    """No column of any token row holds the token or any secret part beyond the prefix."""
    row = await db.fetchrow("SELECT * FROM scim_tokens WHERE id = $1", tenant.token_id)
    assert row["digest"] == token_digest(tenant.token)
    assert row["display_prefix"] == tenant.token[:11]
    dumped = " ".join(str(v) for v in row.values())
    assert tenant.token[11:] not in dumped
    assert tenant.token not in dumped


async def test_authenticate_resolves_the_organization(
    db: asyncpg.Connection, tenant: Tenant
) -> None:
    principal = await authenticate(db, tenant.token)
    assert principal.org_id == tenant.org_id
    assert principal.token_id == tenant.token_id


@pytest.mark.parametrize(
    "presented",
    ["", "scim_", "Bearer x", "scim_" + "A" * 43, generate_token()],
)
async def test_unknown_tokens_are_rejected(
    db: asyncpg.Connection, tenant: Tenant, presented: str
) -> None:
    with pytest.raises(errors.Unauthorized, match="not valid"):
        await authenticate(db, presented)


async def test_revoked_token_is_rejected_and_listed_as_revoked(
    db: asyncpg.Connection, tenant: Tenant
) -> None:
    info = await tenants.revoke_token(db, tenant.token_id)
    assert info.state == "revoked" and info.revoked_at is not None
    with pytest.raises(errors.Unauthorized, match="revoked"):
        await authenticate(db, tenant.token)
    again = await tenants.revoke_token(db, tenant.token_id)
    assert again.revoked_at == info.revoked_at, "revoking twice keeps the first time"
    [listed] = await tenants.list_tokens(db, tenant.org_id)
    assert listed.state == "revoked"


async def test_expired_token_is_rejected(db: asyncpg.Connection, tenant: Tenant) -> None:
    new = await tenants.create_token(db, tenant.org_id, ttl_days=1)
    assert new.info.expires_at is not None
    assert (
        timedelta(hours=23)
        < new.info.expires_at - new.info.created_at
        <= timedelta(days=1, seconds=5)
    )
    await authenticate(db, new.token)  # valid today
    await db.execute(
        "UPDATE scim_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", new.info.id
    )
    with pytest.raises(errors.Unauthorized, match="expired"):
        await authenticate(db, new.token)
    states = {t.id: t.state for t in await tenants.list_tokens(db, tenant.org_id)}
    assert states[new.info.id] == "expired"
    assert states[tenant.token_id] == "active"


async def test_ttl_must_be_reasonable(db: asyncpg.Connection, tenant: Tenant) -> None:
    for bad in (0, -1, 100_000):
        with pytest.raises(errors.InvalidValue):
            await tenants.create_token(db, tenant.org_id, ttl_days=bad)


async def test_last_used_is_written_at_most_once_a_minute(
    db: asyncpg.Connection, tenant: Tenant
) -> None:
    """Authentication does not write on every request."""
    await authenticate(db, tenant.token)
    first = await db.fetchval("SELECT last_used_at FROM scim_tokens WHERE id = $1", tenant.token_id)
    assert first is not None
    for _ in range(5):
        await authenticate(db, tenant.token)
    assert (
        await db.fetchval("SELECT last_used_at FROM scim_tokens WHERE id = $1", tenant.token_id)
        == first
    )
    await db.execute(
        "UPDATE scim_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
        tenant.token_id,
    )
    await authenticate(db, tenant.token)
    later = await db.fetchval("SELECT last_used_at FROM scim_tokens WHERE id = $1", tenant.token_id)
    assert later > first


async def test_tokens_of_unknown_org(db: asyncpg.Connection) -> None:
    import uuid

    with pytest.raises(errors.NotFound):
        await tenants.create_token(db, uuid.uuid4())
    with pytest.raises(errors.NotFound):
        await tenants.list_tokens(db, uuid.uuid4())
    with pytest.raises(errors.NotFound):
        await tenants.revoke_token(db, uuid.uuid4())


async def test_disabled_org_is_forbidden_but_keeps_tokens(
    db: asyncpg.Connection, tenant: Tenant
) -> None:
    await tenants.set_scim_enabled(db, tenant.org_id, False)
    with pytest.raises(
        errors.Forbidden, match="SCIM provisioning is disabled for this organization"
    ):
        await authenticate(db, tenant.token)
    assert len(await tenants.list_tokens(db, tenant.org_id)) == 1
    await tenants.set_scim_enabled(db, tenant.org_id, True)
    await authenticate(db, tenant.token)


async def test_bootstrap_only_on_an_empty_database(db: asyncpg.Connection) -> None:
    first = await tenants.bootstrap_default(db)
    assert first is not None
    org, new = first
    assert org.name == "default" and org.scim_enabled
    assert (await authenticate(db, new.token)).org_id == org.id
    assert await tenants.bootstrap_default(db) is None
    assert len(await tenants.list_orgs(db)) == 1
