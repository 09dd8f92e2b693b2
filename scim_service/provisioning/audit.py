"""The admin audit trail (issue 22): every admin action that changes something, through the
admin API (recorded by the middleware once the handler answered) or the CLI (recorded by the
command's database connection), with the acting credential by its public prefix, the action,
the target organization and object, the outcome and the request id. Never a secret: no body is
kept, and a failure's detail is masked. Append-only (a trigger refuses updates); the activity
log's writer removes entries older than SCIM_ACTIVITY_RETENTION_DAYS.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from scim_service.provisioning.credentials import AdminPrincipal
from scim_service.redact import mask_text
from scim_service.store import audit as store


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor: str
    """The acting credential's public prefix (as `credential list` shows it), SCIM_ADMIN_TOKEN,
    or cli:USER for a one-shot command."""
    credential_id: uuid.UUID | None
    action: str
    org_id: uuid.UUID | None
    target: str | None
    outcome: str
    status: int
    """The HTTP status of the answer; for the CLI its exit status."""
    detail: str | None
    request_id: str | None


async def record(
    conn: asyncpg.Connection,
    who: AdminPrincipal,
    action: str,
    *,
    org_id: uuid.UUID | None,
    target: str | None,
    status: int,
    ok: bool,
    detail: str | None = None,
    request_id: str | None = None,
) -> None:
    await store.insert(
        conn,
        actor=who.prefix,
        credential_id=who.credential_id,
        action=action,
        org_id=org_id,
        target=target[:300] if target else None,
        outcome="ok" if ok else "failed",
        status=status,
        detail=mask_text(detail)[:500] if detail else None,
        request_id=request_id,
    )


async def entries(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest `limit` entries (at most 1,000) after entry `after`, oldest first; of one
    organization with `org_id`."""
    rows = await store.page(conn, org_id, after, max(1, min(limit, 1000)))
    return [AuditEntry(**dict(r)) for r in rows]
