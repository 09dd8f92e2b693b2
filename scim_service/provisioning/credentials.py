"""Scoped admin credentials (issue 22), for the admin API and the CLI.

Beside SCIM_ADMIN_TOKEN (the bootstrap operator credential, configured rather than stored), an
operator mints credentials limited to a scope:

- `operator`: everything the admin API does;
- `org:admin`: one organization: its tokens, status, activity, guard settings and decisions,
  snapshots and events;
- `events:read`: the pull API and snapshots of one or more organizations, optionally only some
  event types.

A credential is `scimadm_` + 43 urlsafe-base64 characters (tokens.py), shown once; only its
SHA-256 digest is stored, and a presented one is looked up by digest (constant-time by
construction, as SCIM tokens are). It has an optional TTL, can be revoked (several may be active
at once: create the next one, switch, revoke the old one), and records when it was last used
(about once a minute at most). What each scope may do is `scim_service/http/authz.py`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from scim_service import errors
from scim_service.events.envelope import EVENT_TYPES
from scim_service.store import credentials as store
from scim_service.store import tenants as tenant_store
from scim_service.store.credentials import SCOPES, CredentialInfo, Scope
from scim_service.tokens import ADMIN_TOKEN_PREFIX, display_prefix, generate_token, token_digest

__all__ = ["SCOPES", "AdminPrincipal", "CredentialInfo", "NewCredential", "Scope"]

MAX_TTL_DAYS = 3650
MAX_ORGS = 100
BOOTSTRAP_PREFIX = "SCIM_ADMIN_TOKEN"  # how the audit trail names the bootstrap credential
CLI_PREFIX = "cli"  # a one-shot CLI command: whoever holds the database credentials


class AdminPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling the admin API, and what it may touch."""

    scope: Scope
    prefix: str
    """The credential's public prefix (as `credential list` shows it), or SCIM_ADMIN_TOKEN."""
    org_ids: frozenset[uuid.UUID] = frozenset()
    event_types: tuple[str, ...] | None = None
    credential_id: uuid.UUID | None = None

    def sees(self, org_id: uuid.UUID) -> bool:
        return self.scope == "operator" or org_id in self.org_ids


BOOTSTRAP = AdminPrincipal(scope="operator", prefix=BOOTSTRAP_PREFIX)
CLI = AdminPrincipal(scope="operator", prefix=CLI_PREFIX)


class NewCredential(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly created credential: the only time its secret exists here."""

    token: str
    info: CredentialInfo


async def create(
    conn: asyncpg.Connection,
    scope: str,
    *,
    org_ids: list[uuid.UUID] | None = None,
    event_types: list[str] | None = None,
    description: str = "",
    ttl_days: int | None = None,
) -> NewCredential:
    if scope not in SCOPES:
        raise errors.InvalidValue(f"Unknown scope {scope[:40]!r}; known: {', '.join(SCOPES)}")
    orgs = list(dict.fromkeys(org_ids or ()))
    if scope == "operator" and (orgs or event_types):
        raise errors.InvalidValue("An operator credential takes no organization or event type")
    if scope == "org:admin" and len(orgs) != 1:
        raise errors.InvalidValue("An org:admin credential takes exactly one organization")
    if scope == "events:read" and not 1 <= len(orgs) <= MAX_ORGS:
        raise errors.InvalidValue(f"An events:read credential takes 1 to {MAX_ORGS} organizations")
    if event_types is not None:
        if scope != "events:read":
            raise errors.InvalidValue("Only an events:read credential takes event types")
        unknown = sorted(set(event_types) - set(EVENT_TYPES))
        if unknown or not event_types:
            shown = ", ".join(t[:64] for t in unknown[:5]) or "none"
            raise errors.InvalidValue(
                f"Unknown event type(s) {shown}; known: {', '.join(EVENT_TYPES)}"
            )
        event_types = sorted(set(event_types))
    if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise errors.InvalidValue(f"ttl_days must be between 1 and {MAX_TTL_DAYS}")
    if len(description) > 500:
        raise errors.InvalidValue("Credential description is longer than 500 characters")
    missing = set(orgs) - await store.existing_orgs(conn, orgs)
    if missing:
        raise errors.NotFound(f"Organization {sorted(missing)[0]} not found")
    token = generate_token(ADMIN_TOKEN_PREFIX)
    expires_at = None
    if ttl_days is not None:
        expires_at = await tenant_store.db_now(conn) + timedelta(days=ttl_days)
    info = await store.insert(
        conn,
        digest=token_digest(token),
        display_prefix=display_prefix(token),
        scope=scope,
        org_ids=orgs,
        event_types=event_types,
        description=description.strip(),
        expires_at=expires_at,
    )
    return NewCredential(token=token, info=info)


async def list_all(conn: asyncpg.Connection) -> list[CredentialInfo]:
    return await store.list_all(conn)


async def revoke(conn: asyncpg.Connection, credential_id: uuid.UUID) -> CredentialInfo:
    return await store.revoke(conn, credential_id)


async def authenticate(conn: asyncpg.Connection, token: str) -> AdminPrincipal:
    """The principal of a presented `scimadm_` credential; 401 when unknown, revoked or
    expired (the same answer for each: nothing tells a caller which)."""
    row = await store.lookup(conn, token_digest(token))
    invalid = errors.Unauthorized("The admin credential is not valid", reason="admin")
    if row is None or row.revoked_at is not None:
        raise invalid
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        raise invalid
    if row.stale_use:
        await store.touch(conn, row.id)
    return AdminPrincipal(
        scope=row.scope,
        prefix=row.display_prefix,
        org_ids=frozenset(row.org_ids),
        event_types=tuple(row.event_types) if row.event_types is not None else None,
        credential_id=row.id,
    )
