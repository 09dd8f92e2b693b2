"""The directory status of one organization (issue 14, part 2): the checklist an administrator
walks through when an IdP's "Test Connection" fails, and its SCIM activity log. For the admin
API (`GET /admin/v1/orgs/{org_id}/status`, `.../activity`) and the CLI
(`scim-service org status ORG_ID`, `scim-service activity ORG_ID`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from scim_service.activity import Entry
from scim_service.config import Settings
from scim_service.provisioning import guard, tenants
from scim_service.store import activity as activity_store
from scim_service.store import status as store
from scim_service.store.tenants import TokenInfo

EXPIRY_WARNING_DAYS = 7
SKIPPED_HOURS = 24  # group writes that skipped unknown member ids, this far back
SKIPPED_SHOWN = 100  # distinct skipped ids listed, at most


class TokenStatus(msgspec.Struct, frozen=True, kw_only=True):
    info: TokenInfo
    expires_soon: bool
    """Active and expiring within EXPIRY_WARNING_DAYS: create the next one and update the IdP."""


class IdpSuccess(msgspec.Struct, frozen=True, kw_only=True):
    idp: str
    at: datetime
    method: str
    route: str
    status: int


class ErrorRate(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    errors: int
    rate: float


class SinkStatus(msgspec.Struct, frozen=True, kw_only=True):
    sink: str
    pending: int
    held: int
    dead: int
    oldest_pending_age: float
    last_delivery_at: datetime | None


class GuardSummary(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool
    tripped: bool
    tripped_at: datetime | None
    held: int
    """Held events (access-reducing changes and what waits behind them)."""
    held_resources: int = 0
    last_decision: guard.GuardDecision | None = None


class SkippedMembers(msgspec.Struct, frozen=True, kw_only=True):
    """Member ids that group writes of the last SKIPPED_HOURS named and skipped: no user of this
    organization has them (deleted here, never provisioned). The IdP still thinks they are
    members; provisioning those users (or removing them from the group in the IdP) ends it."""

    requests: int
    total: int
    ids: list[uuid.UUID]
    """Up to SKIPPED_SHOWN of them, those of the most recent requests first."""


class OrgStatus(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    name: str
    scim_enabled: bool
    tokens: list[TokenStatus]
    last_success: list[IdpSuccess]
    """The last successful request per IdP (from the activity log)."""
    last_hour: ErrorRate
    sinks: list[SinkStatus]
    guard: GuardSummary
    warnings: list[str]
    skipped_members: SkippedMembers | None = None


async def org_status(conn: asyncpg.Connection, org_id: uuid.UUID, settings: Settings) -> OrgStatus:
    org = await tenants.get_org(conn, org_id)  # 404 for an unknown organization
    now = datetime.now(UTC)
    soon = now + timedelta(days=EXPIRY_WARNING_DAYS)
    tokens = [
        TokenStatus(
            info=t,
            expires_soon=t.state == "active" and t.expires_at is not None and t.expires_at <= soon,
        )
        for t in await tenants.list_tokens(conn, org_id)
    ]
    successes = [IdpSuccess(**dict(r)) for r in await activity_store.last_success(conn, org_id)]
    requests, errors = await activity_store.error_rate(conn, org_id, now - timedelta(hours=1))
    backlog = {r["sink"]: r for r in await store.backlog(conn, org_id)}
    delivered = await store.last_deliveries(conn, org_id)
    sinks = []
    for sink in sorted(set(settings.sinks) | set(backlog)):
        b = backlog.get(sink)
        sinks.append(
            SinkStatus(
                sink=sink,
                pending=b["pending"] if b else 0,
                held=b["held"] if b else 0,
                dead=b["dead"] if b else 0,
                oldest_pending_age=float(b["oldest_age"]) if b else 0.0,
                last_delivery_at=delivered.get(sink),
            )
        )
    g = await guard.state(conn, org_id, guard.policy_of(settings), limit=0)
    sk_requests, sk_total, sk_ids = await activity_store.skipped_members(
        conn, org_id, now - timedelta(hours=SKIPPED_HOURS), SKIPPED_SHOWN
    )
    status = OrgStatus(
        org_id=org.id,
        name=org.name,
        scim_enabled=org.scim_enabled,
        tokens=tokens,
        last_success=successes,
        last_hour=ErrorRate(
            requests=requests, errors=errors, rate=round(errors / requests, 4) if requests else 0.0
        ),
        sinks=sinks,
        guard=GuardSummary(
            enabled=g.enabled,
            tripped=g.tripped,
            tripped_at=g.tripped_at,
            held=g.held,
            held_resources=g.held_resources,
            last_decision=g.last_decision,
        ),
        warnings=[],
        skipped_members=SkippedMembers(requests=sk_requests, total=sk_total, ids=sk_ids),
    )
    status.warnings.extend(_warnings(status))
    return status


def _warnings(s: OrgStatus) -> list[str]:
    out = []
    if not s.scim_enabled:
        out.append("SCIM is switched off for this organization: every request answers 403")
    active = [t for t in s.tokens if t.info.state == "active"]
    if not active:
        out.append("No active token: the IdP cannot authenticate (create one with token create)")
    for t in active:
        if t.expires_soon:
            out.append(
                f"Token {t.info.display_prefix}… expires at {t.info.expires_at:%Y-%m-%d %H:%MZ}: "
                "create the next one and update the IdP"
            )
    if s.last_hour.errors:
        out.append(
            f"{s.last_hour.errors} of {s.last_hour.requests} requests failed in the last hour "
            "(scim-service activity ORG_ID --errors)"
        )
    for sink in s.sinks:
        if sink.dead:
            out.append(f"{sink.dead} event(s) dead-lettered for sink {sink.sink}")
    sk = s.skipped_members
    if sk is not None and sk.total:
        shown = ", ".join(str(u) for u in sk.ids[:5]) + (" ..." if sk.total > 5 else "")
        out.append(
            f"{sk.requests} group write(s) in the last {SKIPPED_HOURS} h skipped {sk.total} member "
            f"id(s) that are no users of this organization ({shown}; "
            "scim-service activity ORG_ID shows each)"
        )
    if s.guard.tripped:
        out.append(
            f"The mass-deprovisioning guard tripped: {s.guard.held} event(s) of "
            f"{s.guard.held_resources} user(s) and group(s) held (scim-service org guard show "
            "ORG_ID, then release or reject)"
        )
    return out


async def tokens_expiring(conn: asyncpg.Connection) -> int:
    return await store.tokens_expiring(conn, EXPIRY_WARNING_DAYS)


async def activity(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    errors_only: bool = False,
    after: int | None = None,
    limit: int = 100,
) -> list[Entry]:
    """The organization's activity log, oldest first (404 for an unknown organization): its
    newest `limit` entries (at most 1,000), or those after entry `after` (to follow)."""
    await tenants.get_org(conn, org_id)
    limit = max(1, min(limit, 1000))
    if after is None:
        rows = await activity_store.latest(conn, org_id, limit, errors_only)
    else:
        rows = await activity_store.after(conn, org_id, after, limit, errors_only)
    return [Entry(**dict(r)) for r in rows]
