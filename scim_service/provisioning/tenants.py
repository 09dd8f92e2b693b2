"""Organizations and their SCIM tokens, for the admin API and the CLI.

Who a token belongs to at request time is auth.py's job (the one authentication, cached).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import msgspec

from scim_service import errors
from scim_service.store import tenants as store
from scim_service.store.tenants import Org as Org
from scim_service.store.tenants import TokenInfo as TokenInfo
from scim_service.tokens import display_prefix, generate_token, token_digest

MAX_TTL_DAYS = 3650


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly created token: the only time the secret exists outside the caller's IdP."""

    token: str
    info: TokenInfo


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise errors.InvalidValue("Organization name must not be empty")
    if len(name) > 200:
        raise errors.InvalidValue("Organization name is longer than 200 characters")
    return name


async def create_org(
    conn: asyncpg.Connection,
    name: str,
    *,
    org_id: uuid.UUID | None = None,
    scim_enabled: bool = True,
) -> Org:
    return await store.insert_org(conn, _clean_name(name), org_id=org_id, scim_enabled=scim_enabled)


async def list_orgs(conn: asyncpg.Connection) -> list[Org]:
    return await store.list_orgs(conn)


async def get_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> Org:
    return await store.get_org(conn, org_id)


async def set_scim_enabled(conn: asyncpg.Connection, org_id: uuid.UUID, enabled: bool) -> Org:
    await store.set_scim_enabled(conn, org_id, enabled)
    return await store.get_org(conn, org_id)


async def create_token(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    description: str = "",
    ttl_days: int | None = None,
) -> NewToken:
    if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise errors.InvalidValue(f"ttl_days must be between 1 and {MAX_TTL_DAYS}")
    if len(description) > 500:
        raise errors.InvalidValue("Token description is longer than 500 characters")
    token = generate_token()
    expires_at = None
    if ttl_days is not None:
        expires_at = await store.db_now(conn) + timedelta(days=ttl_days)
    info = await store.insert_token(
        conn,
        org_id,
        digest=token_digest(token),
        display_prefix=display_prefix(token),
        description=description.strip(),
        expires_at=expires_at,
    )
    return NewToken(token=token, info=info)


async def list_tokens(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[TokenInfo]:
    await store.get_org(conn, org_id)  # 404 for an unknown organization, not an empty list
    return await store.list_tokens(conn, org_id)


async def revoke_token(
    conn: asyncpg.Connection,
    token_id: uuid.UUID,
    *,
    visible: frozenset[uuid.UUID] | None = None,
) -> TokenInfo:
    """Revoke a token; with `visible` (an org admin's organizations) only one of theirs (any
    other is 404, as an unknown one is)."""
    if visible is not None and await store.token_org(conn, token_id) not in visible:
        raise errors.NotFound(f"Token {token_id} not found")
    return await store.revoke_token(conn, token_id)


async def bootstrap_default(conn: asyncpg.Connection) -> tuple[Org, NewToken] | None:
    """First run only: when no organization exists, create `default` and a token for it."""
    async with conn.transaction():
        await store.lock_bootstrap(conn)
        if await store.count_orgs(conn) > 0:
            return None
        org = await store.insert_org(conn, "default")
        new = await create_token(conn, org.id, description="created on first run")
        return org, new
