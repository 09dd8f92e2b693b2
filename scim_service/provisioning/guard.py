"""The mass-deprovisioning guard (issue 14, part 3; issue 21).

A misconfigured IdP that removes most of an organization locks people out of their secrets.
The guard watches every *access-reducing* change, one definition used everywhere
(`reductions`): a user deprovisioned (deleted, or set inactive by PATCH, PUT or any other
path) and a membership removed (group PATCH or PUT, a deleted user leaving its groups, a
deleted group: each member). It counts the distinct users who lost access within a window; when
they reach a threshold (at least `min_users`, and at least `percent` % of the users active at
the start of the window: active now plus those deprovisioned within it) the guard *trips*:

- the SCIM writes still commit and answer as usual (the IdP stays the source of truth and must
  not be pushed into retries);
- every access-reducing change of that organization from then on — the tripping one included —
  is *held*: per resource, from its first held version on (`guard_holds`), nothing reaches a
  sink, the pull feed or a snapshot (which shows the resource as it was before: its image), and
  the resource's later changes, of any kind, wait behind the held ones (order per resource
  holds). Other resources' changes (creates, profile updates, additions) keep flowing;
- a `directory.guard_tripped` event (subject: the organization) is queued, not held.

With a staging delay (`SCIM_DEPROVISION_GUARD_STAGING_SECONDS` > 0) every access-reducing
change is held that long even when the guard has not tripped, then released by the publisher
(`release_due`), so the guard sees a burst before any of it leaves; a trip turns the staged holds
into held ones.

An administrator then decides, and the decision sticks:
- **release** delivers everything held, in order (the events get a new place in the pull order,
  after every cursor already handed out);
- **reject** restores each held resource in the store to its image (a deleted user or group is
  inserted again with its id, its memberships come back) and deletes its held events, so no
  consumer ever sees them, replay cannot find them, and the resource's next change takes the
  first held version again: an in-order consumer sees no hole. The IdP's next sync redoes what
  it really meant. A rejection that cannot restore (a name taken meanwhile) is refused with 409.
Either re-arms the guard, counting reductions from that moment, and is an event
(`directory.guard_released` / `directory.guard_rejected`) and a row of `guard_decisions`.

Concurrency and lock order: sql/queries/guard.sql.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from scim_service import errors
from scim_service.config import Settings
from scim_service.events import envelope as ev
from scim_service.events.emitter import Emitter
from scim_service.logs import get_logger
from scim_service.store import guard as store
from scim_service.store.groups import StoredGroup
from scim_service.store.outbox import EventRows, insert_events
from scim_service.store.users import StoredUser

log = get_logger("scim_service.guard")


class GuardPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The process defaults (SCIM_DEPROVISION_GUARD_*); organizations may override the first
    four."""

    enabled: bool = True
    percent: float = 25.0
    min_users: int = 20
    window_minutes: float = 15.0
    staging_seconds: float = 0.0


def policy_of(settings: Settings) -> GuardPolicy:
    return GuardPolicy(
        enabled=settings.deprovision_guard,
        percent=settings.deprovision_guard_percent,
        min_users=settings.deprovision_guard_min_users,
        window_minutes=settings.deprovision_guard_window_minutes,
        staging_seconds=settings.deprovision_guard_staging_seconds,
    )


# --- what a change does to access -------------------------------------------------------------


class Before(msgspec.Struct, frozen=True, kw_only=True):
    """A resource as it was before an access-reducing write (kept as the hold's image), and
    for a group the members the write added and removed (all of them, for a delete)."""

    resource_type: Literal["User", "Group"]
    id: uuid.UUID
    attrs: dict[str, Any]
    version: int
    created_at: datetime | None = None
    setup_state: str | None = None
    setup_completed_at: datetime | None = None
    added: tuple[uuid.UUID, ...] = ()
    removed: tuple[uuid.UUID, ...] = ()

    @classmethod
    def user(cls, u: StoredUser) -> Before:
        return cls(
            resource_type="User",
            id=u.id,
            attrs=u.attrs,
            version=u.version,
            created_at=u.created_at,
            setup_state=u.setup_state,
            setup_completed_at=u.setup_completed_at,
        )

    @classmethod
    def group(
        cls,
        g: StoredGroup,
        added: Sequence[uuid.UUID] = (),
        removed: Sequence[uuid.UUID] = (),
    ) -> Before:
        return cls(
            resource_type="Group",
            id=g.id,
            attrs=g.attrs,
            version=g.version,
            created_at=g.created_at,
            added=tuple(added),
            removed=tuple(removed),
        )

    def image(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attrs": self.attrs, "version": self.version}
        if self.created_at is not None:
            out["created_at"] = self.created_at.isoformat()
        if self.resource_type == "User":
            out["setup_state"] = self.setup_state or "pending"
            out["setup_completed_at"] = (
                self.setup_completed_at.isoformat() if self.setup_completed_at else None
            )
        return out


def reductions(
    events: Sequence[ev.NewEvent], before: Sequence[Before] = ()
) -> list[tuple[uuid.UUID, bool]]:
    """The one definition of "access-reducing": (user who lost access, deprovisioned?) for
    each user these events take access from. Empty: the change reduces nobody's access."""
    lost: dict[uuid.UUID, bool] = {}
    deleted_groups = {b.id: b for b in before if b.resource_type == "Group"}
    for e in events:
        if e.type == ev.USER_DEPROVISIONED:
            lost[e.subject] = True
        elif e.reduces:  # a lowered role (user.updated, changed ["role"])
            lost.setdefault(e.subject, False)
        elif e.type == ev.GROUP_CHANGED and isinstance(e.data, ev.GroupChanged):
            for r in e.data.removed:
                lost.setdefault(uuid.UUID(r), False)
            if "deleted" in e.data.changes and e.subject in deleted_groups:
                for r2 in deleted_groups[e.subject].removed:
                    lost.setdefault(r2, False)
    return list(lost.items())


def trips(
    policy: GuardPolicy, affected: int, active_now: int, deprovisioned: int | None = None
) -> bool:
    """The threshold: at least `min_users` users lost access, and at least `percent` % of the
    users that were active when the window began (active now plus those deprovisioned within
    it; `deprovisioned` defaults to `affected`)."""
    gone = affected if deprovisioned is None else deprovisioned
    base = active_now + gone
    return affected >= policy.min_users and affected * 100 >= policy.percent * base


def _effective(row: asyncpg.Record, defaults: GuardPolicy) -> GuardPolicy:
    def pick(column: str, default: Any) -> Any:
        return default if row[column] is None else row[column]

    return GuardPolicy(
        enabled=pick("guard_enabled", defaults.enabled),
        percent=float(pick("guard_percent", defaults.percent)),
        min_users=int(pick("guard_min_users", defaults.min_users)),
        window_minutes=float(pick("guard_window_minutes", defaults.window_minutes)),
        staging_seconds=defaults.staging_seconds,
    )


class Gate(msgspec.Struct, frozen=True, kw_only=True):
    """What an access-reducing transaction found under the organization's row lock."""

    policy: GuardPolicy
    tripped_at: datetime | None
    reset_at: datetime | None


async def enter(conn: asyncpg.Connection, org_id: uuid.UUID, defaults: GuardPolicy) -> Gate:
    """Before an access-reducing change writes its events: the organization's row lock (after
    the resources' own) and its guard state."""
    row = await store.lock_org(conn, org_id)
    if row is None:
        raise errors.NotFound(f"Organization {org_id} not found")
    return Gate(
        policy=_effective(row, defaults),
        tripped_at=row["guard_tripped_at"],
        reset_at=row["guard_reset_at"],
    )


async def after(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    emitter: Emitter,
    gate: Gate,
    rows: EventRows,
    before: Sequence[Before],
    lost: Sequence[tuple[uuid.UUID, bool]],
) -> None:
    """In the access-reducing transaction, after its events are written: count the reductions,
    trip the guard if they reach the threshold, and hold this change when the guard is
    tripped (or stages every reduction)."""
    policy = gate.policy
    await store.record_reductions(conn, org_id, lost)
    tripped = gate.tripped_at is not None
    if not tripped and policy.enabled:
        tripped = await _maybe_trip(conn, org_id, emitter, policy, gate.reset_at)
    if tripped:
        await _hold(conn, org_id, rows, before, release_at=None)
    elif policy.enabled and policy.staging_seconds > 0:
        release_at = datetime.now(UTC) + timedelta(seconds=policy.staging_seconds)
        await _hold(conn, org_id, rows, before, release_at=release_at)


async def _maybe_trip(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    emitter: Emitter,
    policy: GuardPolicy,
    reset_at: datetime | None,
) -> bool:
    since = datetime.now(UTC) - timedelta(minutes=policy.window_minutes)
    if reset_at is not None:
        since = max(since, reset_at)
    affected, deprovisioned = await store.count_reductions(conn, org_id, since)
    if affected < policy.min_users:
        return False  # the cheap test first: counting active users scans the organization
    active = await store.count_active(conn, org_id)
    if not trips(policy, affected, active, deprovisioned):
        return False
    base = active + deprovisioned
    trip = await store.trip(conn, org_id, affected, base)
    data = ev.GuardTripped(
        org_id=str(org_id),
        tripped_at=trip["guard_tripped_at"],
        deprovisioned=deprovisioned,
        affected_users=affected,
        active_users=base,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
    )
    event = ev.guard_tripped(org_id, data)
    await insert_events(conn, emitter.rows(org_id, [event], [trip["event_seq"]]))
    log.warning(
        "deprovision_guard_tripped",
        org_id=str(org_id),
        affected_users=affected,
        deprovisioned=deprovisioned,
        active_users=base,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
    )
    return True


async def _hold(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    rows: EventRows,
    before: Sequence[Before],
    *,
    release_at: datetime | None,
) -> None:
    """Hold every resource this transaction wrote, from its first version written here."""
    first: dict[uuid.UUID, tuple[str, int]] = {}
    for subject, rtype, version in zip(
        rows.subjects, rows.resource_types, rows.versions, strict=True
    ):
        if rtype in ("User", "Group") and (subject not in first or version < first[subject][1]):
            first[subject] = (rtype, version)
    images = {b.id: b for b in before}
    missing = [s for s in first if s not in images]
    if missing:  # a writer that reduces access passes every resource it wrote
        raise errors.InternalError("guard: an access-reducing write without its prior state")
    holds = [(s, t, v, images[s].image()) for s, (t, v) in first.items()]
    new = await store.hold(conn, org_id, holds, release_at)
    for s in new:
        b = images[s]
        if b.resource_type == "Group":
            await store.hold_members(conn, s, b.added, b.removed)
    await store.hold_outbox(conn, rows.ids)


# --- operating the guard (admin API and CLI) ------------------------------------------------


class HeldEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    resource_type: str
    subject: uuid.UUID
    resource_version: int
    time: datetime
    staged_until: datetime | None
    """A staged hold: released then unless the guard trips first."""
    user_id: uuid.UUID | None
    """The user, for a user's event (the subject)."""
    user_name: str | None
    display_name: str | None
    """The group, for a group.changed event."""
    reason: str | None
    removed: int
    """Members this event removes (group.changed)."""


class GuardDecision(msgspec.Struct, frozen=True, kw_only=True):
    action: str  # released | rejected
    at: datetime
    resources: int
    events: int


class GuardState(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    enabled: bool
    percent: float
    min_users: int
    window_minutes: float
    staging_seconds: float
    overrides: dict[str, Any]
    """The organization's own settings (the others come from the process settings)."""
    tripped: bool
    tripped_at: datetime | None
    trip_deprovisioned: int | None
    """Distinct users who lost access within the window when it tripped."""
    trip_active_users: int | None
    counting_since: datetime | None
    """Reductions before this (the last decision) do not count."""
    held: int
    """Held events (every type: deprovisions, membership removals, what waits behind them)."""
    held_resources: int
    held_events: list[HeldEvent]
    last_decision: GuardDecision | None


class GuardOutcome(msgspec.Struct, frozen=True, kw_only=True):
    org_id: uuid.UUID
    action: str  # released | rejected
    resources: int
    """Held users and groups decided."""
    events: int
    """Held events delivered (release) or deleted for good (rejection)."""
    deliveries: int
    """Outbox deliveries handed back to the publisher (release)."""


def _held_event(r: asyncpg.Record) -> HeldEvent:
    data = msgspec.json.decode(r["payload"]).get("data", {})
    user = r["resource_type"] == "User"
    return HeldEvent(
        id=r["id"],
        type=r["type"],
        resource_type=r["resource_type"],
        subject=r["subject"],
        resource_version=r["resource_version"],
        time=r["time"],
        staged_until=r["release_at"],
        user_id=r["subject"] if user else None,
        user_name=data.get("user_name") if user else None,
        display_name=None if user else data.get("display_name"),
        reason=data.get("reason"),
        removed=len(data.get("removed") or []),
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
    held = [_held_event(r) for r in await store.held(conn, org_id, limit)] if limit else []
    events, resources = await store.held_count(conn, org_id)
    last = (
        GuardDecision(
            action=row["last_action"],
            at=row["last_at"],
            resources=row["last_resources"],
            events=row["last_events"],
        )
        if row["last_action"] is not None
        else None
    )
    return GuardState(
        org_id=org_id,
        enabled=policy.enabled,
        percent=policy.percent,
        min_users=policy.min_users,
        window_minutes=policy.window_minutes,
        staging_seconds=policy.staging_seconds,
        overrides=overrides,
        tripped=row["guard_tripped_at"] is not None,
        tripped_at=row["guard_tripped_at"],
        trip_deprovisioned=row["guard_trip_count"],
        trip_active_users=row["guard_trip_base"],
        counting_since=row["guard_reset_at"],
        held=events,
        held_resources=resources,
        held_events=held,
        last_decision=last,
    )


async def _decide(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    emitter: Emitter,
    action: Literal["released", "rejected"],
) -> GuardOutcome:
    for _ in range(DECIDE_ATTEMPTS):
        async with conn.transaction():
            # Lock order (sql/queries/guard.sql): the held resources, the organization, the
            # holds. A hold added between the first look and the organization's lock has a
            # resource this transaction does not hold: start again.
            locked = await store.lock_held_resources(conn, org_id)
            row = await store.lock_org(conn, org_id)
            if row is None:
                raise errors.NotFound(f"Organization {org_id} not found")
            holds = await store.lock_holds(conn, org_id)
            if {h.subject for h in holds} <= locked:
                return await _apply(conn, org_id, emitter, action, row, holds)
    raise errors.Unavailable(
        "The IdP keeps adding held changes; retry the decision", retry_after=1.0
    )


DECIDE_ATTEMPTS = 5


async def _apply(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    emitter: Emitter,
    action: Literal["released", "rejected"],
    row: asyncpg.Record,
    holds: Sequence[store.Hold],
) -> GuardOutcome:
    deliveries = 0
    if action == "rejected":
        conflicts = await store.name_conflicts(conn, org_id, holds)
        if conflicts:
            names = ", ".join(f"{c['resource_type']} {c['name']!r}" for c in conflicts[:10])
            raise errors.Conflict(
                "Cannot reject: these held resources cannot be restored, their names are "
                f"now taken by others: {names}. Release instead, or remove those first."
            )
        events = await store.restore(conn, org_id, holds)
    else:
        events = sum(h.held_events for h in holds)
        deliveries = await store.release(conn, holds)
    await store.reset(conn, org_id)
    decision = await store.decided(
        conn, org_id, action, row["guard_tripped_at"], len(holds), events
    )
    data = ev.GuardDecided(
        org_id=str(org_id),
        decided_at=decision["at"],
        tripped_at=row["guard_tripped_at"],
        users=sum(1 for h in holds if h.resource_type == "User"),
        groups=sum(1 for h in holds if h.resource_type == "Group"),
        events=events,
    )
    event = ev.guard_decided(org_id, action, data)
    await insert_events(conn, emitter.rows(org_id, [event], [decision["event_seq"]]))
    return GuardOutcome(
        org_id=org_id, action=action, resources=len(holds), events=events, deliveries=deliveries
    )


async def release(conn: asyncpg.Connection, org_id: uuid.UUID, emitter: Emitter) -> GuardOutcome:
    """Deliver everything held, in order, and re-arm."""
    out = await _decide(conn, org_id, emitter, "released")
    log.info(
        "deprovision_guard_released", org_id=str(org_id), resources=out.resources, events=out.events
    )
    return out


async def reject(conn: asyncpg.Connection, org_id: uuid.UUID, emitter: Emitter) -> GuardOutcome:
    """Restore the held resources to their state before their first held change, delete the
    held events for good, and re-arm. An explicit choice: it is logged."""
    out = await _decide(conn, org_id, emitter, "rejected")
    log.warning(
        "deprovision_guard_rejected", org_id=str(org_id), resources=out.resources, events=out.events
    )
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
