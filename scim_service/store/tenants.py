"""Organizations and SCIM tokens in PostgreSQL. Functions take a connection; no HTTP here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from scim_service import errors
from scim_service.store.db import QUERIES as Q
from scim_service.store.db import translate_errors


class Org(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    scim_enabled: bool
    created_at: datetime
    active_tokens: int = 0


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What lists show of a token: never the token, only a short non-secret prefix."""

    id: uuid.UUID
    org_id: uuid.UUID
    display_prefix: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """The authentication lookup result for one digest."""

    token_id: uuid.UUID
    org_id: uuid.UUID
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    scim_enabled: bool
    db_now: datetime


def _org(record: asyncpg.Record) -> Org:
    return Org(**dict(record))


def _token(record: asyncpg.Record) -> TokenInfo:
    return TokenInfo(**dict(record))


async def insert_org(
    conn: asyncpg.Connection,
    name: str,
    *,
    org_id: uuid.UUID | None = None,
    scim_enabled: bool = True,
) -> Org:
    with translate_errors():
        row = await conn.fetchrow(Q["insert_org"], org_id, name, scim_enabled)
    assert row is not None
    return Org(**dict(row), active_tokens=0)


async def list_orgs(conn: asyncpg.Connection) -> list[Org]:
    return [_org(r) for r in await conn.fetch(Q["list_orgs"])]


async def get_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> Org:
    row = await conn.fetchrow(Q["get_org"], org_id)
    if row is None:
        raise errors.NotFound(f"Organization {org_id} not found")
    return _org(row)


async def set_scim_enabled(conn: asyncpg.Connection, org_id: uuid.UUID, enabled: bool) -> None:
    if await conn.fetchval(Q["set_org_scim_enabled"], org_id, enabled) is None:
        raise errors.NotFound(f"Organization {org_id} not found")


async def count_orgs(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(Q["count_orgs"]))


async def lock_bootstrap(conn: asyncpg.Connection) -> None:
    await conn.execute(Q["lock_org_bootstrap"])


async def db_now(conn: asyncpg.Connection) -> datetime:
    now: datetime = await conn.fetchval(Q["db_now"])
    return now


async def insert_token(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    digest: bytes,
    display_prefix: str,
    description: str,
    expires_at: datetime | None,
) -> TokenInfo:
    try:
        row = await conn.fetchrow(
            Q["insert_token"], org_id, digest, display_prefix, description, expires_at
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise errors.NotFound(f"Organization {org_id} not found") from exc
    assert row is not None
    return _token(row)


async def list_tokens(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[TokenInfo]:
    return [_token(r) for r in await conn.fetch(Q["list_tokens"], org_id)]


async def revoke_token(conn: asyncpg.Connection, token_id: uuid.UUID) -> TokenInfo:
    row = await conn.fetchrow(Q["revoke_token"], token_id)
    if row is None:
        raise errors.NotFound(f"Token {token_id} not found")
    return _token(row)


async def token_org(conn: asyncpg.Connection, token_id: uuid.UUID) -> uuid.UUID | None:
    org_id: uuid.UUID | None = await conn.fetchval(Q["token_org"], token_id)
    return org_id


async def lookup_token(conn: asyncpg.Connection, digest: bytes) -> TokenRow | None:
    row = await conn.fetchrow(Q["authenticate_token"], digest)
    return None if row is None else TokenRow(**dict(row))


async def touch_token(conn: asyncpg.Connection, token_id: uuid.UUID) -> None:
    await conn.execute(Q["touch_token"], token_id)
