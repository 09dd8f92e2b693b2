"""The mass-deprovisioning guard (issue 14, part 3).

A misconfigured IdP that deprovisions most of an organization locks people out of their
secrets. So when the distinct users an organization deprovisions within a window reach a
threshold (at least `min_users`, and at least `percent` % of its active users at the start of
the window: active now plus those deprovisioned), the guard *trips*:

- the SCIM writes still commit and answer as usual (the IdP stays the source of truth and must
  not be pushed into retries);
- that organization's `user.deprovisioned` deliveries still queued, and every later one, are
  *held*: their outbox rows stay (so the later events of the same user keep waiting behind
  them: the claim's per-resource rule, store/outbox.py) but are never claimed;
- a `directory.guard_tripped` event (subject: the organization) is queued, not held, and a log
  line `deprovision_guard_tripped` is written.

An administrator then releases the held events (delivered in order) or discards them (an
explicit, logged choice); either re-arms the guard, counting deprovisions from that moment.

Concurrency: every deprovisioning transaction takes the organization's row lock (NO KEY UPDATE)
after the user's, so the count is exact and the guard trips exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from scim_service import errors
from scim_service.config import Settings
from scim_service.events import envelope as ev
from scim_service.events.emitter import Emitter
from scim_service.logs import get_logger
from scim_service.store import guard as store
from scim_service.store.outbox import insert_events

log = get_logger("scim_service.guard")


class GuardPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The process defaults (SCIM_DEPROVISION_GUARD_*); organizations may override each."""

    enabled: bool = True
    percent: float = 25.0
    min_users: int = 20
    window_minutes: float = 15.0


def policy_of(settings: Settings) -> GuardPolicy:
    return GuardPolicy(
        enabled=settings.deprovision_guard,
        percent=settings.deprovision_guard_percent,
        min_users=settings.deprovision_guard_min_users,
        window_minutes=settings.deprovision_guard_window_minutes,
    )


class HeldEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    reason: str
    resource_version: int
    time: datetime
    sinks: list[str]


class GuardState(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    enabled: bool
    percent: float
    min_users: int
    window_minutes: float
    overrides: dict[str, Any]
    """The organization's own settings (the others come from the process settings)."""
    tripped: bool
    tripped_at: datetime | None
    trip_deprovisioned: int | None
    trip_active_users: int | None
    counting_since: datetime | None
    """Deprovisions before this (the last release or discard) do not count."""
    held: int
    held_events: list[HeldEvent]


class GuardOutcome(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    action: str  # released | discarded
    events: int
    deliveries: int


def _effective(row: asyncpg.Record, defaults: GuardPolicy) -> GuardPolicy:
    def pick(column: str, default: Any) -> Any:
        return default if row[column] is None else row[column]

    return GuardPolicy(
        enabled=pick("guard_enabled", defaults.enabled),
        percent=float(pick("guard_percent", defaults.percent)),
        min_users=int(pick("guard_min_users", defaults.min_users)),
        window_minutes=float(pick("guard_window_minutes", defaults.window_minutes)),
    )


def trips(policy: GuardPolicy, deprovisioned: int, active_now: int) -> bool:
    """The threshold: at least `min_users`, and at least `percent` % of the users that were
    active when the window began (active now plus those deprovisioned within it)."""
    base = active_now + deprovisioned
    return deprovisioned >= policy.min_users and deprovisioned * 100 >= policy.percent * base


async def after_deprovision(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    emitter: Emitter,
    defaults: GuardPolicy,
    deprovisioned: Sequence[tuple[uuid.UUID, int]],
) -> None:
    """In the deprovisioning transaction, after its events are written: hold them if the guard
    is tripped, or trip it if they reach the threshold. `deprovisioned`: (user id, version) of
    this transaction's user.deprovisioned events."""
    row = await store.lock_org(conn, org_id)
    if row is None:
        return
    policy = _effective(row, defaults)
    if row["guard_tripped_at"] is not None:
        users = [u for u, _ in deprovisioned]
        versions = [v for _, v in deprovisioned]
        await store.hold_events(conn, org_id, users, versions)
        return
    if not policy.enabled:
        return
    since = datetime.now(UTC) - timedelta(minutes=policy.window_minutes)
    if row["guard_reset_at"] is not None:
        since = max(since, row["guard_reset_at"])
    count = await store.count_deprovisioned(conn, org_id, since)
    if count < policy.min_users:
        return  # the cheap test first: counting active users scans the organization
    active = await store.count_active(conn, org_id)
    if not trips(policy, count, active):
        return
    trip = await store.trip(conn, org_id, count, active + count)
    await store.hold_events(conn, org_id, None, None)
    data = ev.GuardTripped(
        org_id=str(org_id),
        tripped_at=trip["guard_tripped_at"],
        deprovisioned=count,
        active_users=active + count,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
    )
    event = ev.guard_tripped(org_id, data)
    await insert_events(conn, emitter.rows(org_id, [event], [trip["event_seq"]]))
    log.warning(
        "deprovision_guard_tripped",
        org_id=str(org_id),
        deprovisioned=count,
        active_users=active + count,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
    )


# --- operating the guard (admin API and CLI) ------------------------------------------------


def _held_event(r: asyncpg.Record) -> HeldEvent:
    data = msgspec.json.decode(r["payload"]).get("data", {})
    return HeldEvent(
        id=r["id"],
        user_id=r["subject"],
        user_name=str(data.get("user_name", "")),
        reason=str(data.get("reason", "")),
        resource_version=r["resource_version"],
        time=r["time"],
        sinks=list(r["sinks"]),
    )


async def state(
    conn: asyncpg.Connection, org_id: uuid.UUID, defaults: GuardPolicy, *, limit: int = 1000
) -> GuardState:
    row = await store.state(conn, org_id)
    if row is None:
        raise errors.NotFound(f"Organization {org_id} not found")
    policy = _effective(row, defaults)
    overrides = {
        name: row[column]
        for name, column in (
            ("enabled", "guard_enabled"),
            ("percent", "guard_percent"),
            ("min_users", "guard_min_users"),
            ("window_minutes", "guard_window_minutes"),
        )
        if row[column] is not None
    }
    held = [_held_event(r) for r in await store.held(conn, org_id, limit)]
    return GuardState(
        org_id=org_id,
        enabled=policy.enabled,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
        overrides=overrides,
        tripped=row["guard_tripped_at"] is not None,
        tripped_at=row["guard_tripped_at"],
        trip_deprovisioned=row["guard_trip_count"],
        trip_active_users=row["guard_trip_base"],
        counting_since=row["guard_reset_at"],
        held=await store.held_count(conn, org_id),
        held_events=held,
    )


async def _finish(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    action: str,
    act: Callable[[asyncpg.Connection, uuid.UUID], Awaitable[list[int]]],
) -> GuardOutcome:
    async with conn.transaction():
        # The reset first: it takes the organization's row lock, so no deprovision can hold a
        # new row between the two statements.
        if not await store.reset(conn, org_id):
            raise errors.NotFound(f"Organization {org_id} not found")
        seqs = await act(conn, org_id)
    return GuardOutcome(org_id=org_id, action=action, events=len(set(seqs)), deliveries=len(seqs))


async def release(conn: asyncpg.Connection, org_id: uuid.UUID) -> GuardOutcome:
    """Deliver the held events (in order, by the claim's per-resource rule) and re-arm."""
    out = await _finish(conn, org_id, "released", store.release)
    log.info("deprovision_guard_released", org_id=str(org_id), events=out.events)
    return out


async def discard(conn: asyncpg.Connection, org_id: uuid.UUID) -> GuardOutcome:
    """Drop the held deliveries for good (the events stay in the history, for replay) and
    re-arm. An explicit choice: it is logged."""
    out = await _finish(conn, org_id, "discarded", store.discard)
    log.warning("deprovision_guard_discarded", org_id=str(org_id), events=out.events)
    return out


class GuardSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A per-organization override; absent fields keep their value, `reset` clears them all."""

    enabled: bool | None = None
    percent: float | None = None
    min_users: int | None = None
    window_minutes: float | None = None
    reset: bool = False


async def configure(
    conn: asyncpg.Connection, org_id: uuid.UUID, new: GuardSettings, defaults: GuardPolicy
) -> GuardState:
    if new.percent is not None and not 0 < new.percent <= 100:
        raise errors.InvalidValue("percent must be more than 0 and at most 100")
    if new.min_users is not None and not 1 <= new.min_users <= 10_000_000:
        raise errors.InvalidValue("min_users must be between 1 and 10000000")
    if new.window_minutes is not None and not 0 < new.window_minutes <= 7 * 24 * 60:
        raise errors.InvalidValue("window_minutes must be more than 0 and at most 10080 (7 days)")
    found = await store.configure(
        conn,
        org_id,
        enabled=new.enabled,
        percent=new.percent,
        min_users=new.min_users,
        window_minutes=new.window_minutes,
        reset=new.reset,
    )
    if not found:
        raise errors.NotFound(f"Organization {org_id} not found")
    log.info("deprovision_guard_configured", org_id=str(org_id), **msgspec.structs.asdict(new))
    return await state(conn, org_id, defaults, limit=0)


async def tripped_orgs(conn: asyncpg.Connection) -> int:
    return await store.tripped_orgs(conn)
