"""Scoped admin credentials in PostgreSQL (issue 22). Functions take a connection; no HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from scim_service import errors
from scim_service.store.db import QUERIES as Q

Scope = Literal["operator", "org:admin", "events:read"]
SCOPES: tuple[Scope, ...] = ("operator", "org:admin", "events:read")


class CredentialInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What lists show of a credential: never the secret, only its public prefix."""

    id: uuid.UUID
    display_prefix: str
    scope: Scope
    org_ids: list[uuid.UUID]
    event_types: list[str] | None
    """`events:read` only: the event types it may read (None: every type)."""
    description: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class CredentialRow(msgspec.Struct, frozen=True, kw_only=True):
    """The authentication lookup result for one digest."""

    id: uuid.UUID
    display_prefix: str
    scope: Scope
    org_ids: list[uuid.UUID]
    event_types: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    stale_use: bool
    db_now: datetime


def _info(record: asyncpg.Record) -> CredentialInfo:
    return CredentialInfo(**dict(record))


async def insert(
    conn: asyncpg.Connection,
    *,
    digest: bytes,
    display_prefix: str,
    scope: Scope,
    org_ids: list[uuid.UUID],
    event_types: list[str] | None,
    description: str,
    expires_at: datetime | None,
) -> CredentialInfo:
    row = await conn.fetchrow(
        Q["credential_insert"],
        digest,
        display_prefix,
        scope,
        org_ids,
        event_types,
        description,
        expires_at,
    )
    assert row is not None
    return _info(row)


async def list_all(conn: asyncpg.Connection) -> list[CredentialInfo]:
    return [_info(r) for r in await conn.fetch(Q["credential_list"])]


async def revoke(conn: asyncpg.Connection, credential_id: uuid.UUID) -> CredentialInfo:
    row = await conn.fetchrow(Q["credential_revoke"], credential_id)
    if row is None:
        raise errors.NotFound(f"Credential {credential_id} not found")
    return _info(row)


async def lookup(conn: asyncpg.Connection, digest: bytes) -> CredentialRow | None:
    row = await conn.fetchrow(Q["credential_lookup"], digest)
    return None if row is None else CredentialRow(**dict(row))


async def touch(conn: asyncpg.Connection, credential_id: uuid.UUID) -> None:
    await conn.execute(Q["credential_touch"], credential_id)


async def existing_orgs(conn: asyncpg.Connection, org_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {r["id"] for r in await conn.fetch(Q["orgs_exist"], org_ids)}
