"""Bulk loader: writes users, groups and their events exactly as the API would store them.

`attrs` is what `scim_service.scim.resource.normalize_resource` makes of the IdP's POST body
(plus `active`, as provisioning.users.create_user sets it); the generated columns (user_name,
emails, ...) are computed by PostgreSQL from it (sql/migrations/0002_users.sql). Each user gets
its `user.provisioned` event (encoded by the service's own envelope code), version 1,
event_seq 1; a group created with N members gets ceil(N/1000) `group.changed` events, as a POST
/Groups with those members would. No outbox rows: the load stands for history already
delivered. The run checks this against one user POSTed through the API (see run.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import dataset
import msgspec

from scim_service.events import envelope as ev
from scim_service.scim import schema as s
from scim_service.scim.resource import check_required, normalize_resource

CHUNK = 10_000
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def stored_user_attrs(body: dict[str, Any]) -> dict[str, Any]:
    attrs = normalize_resource(s.USER_TYPE, body)
    check_required(s.USER_TYPE, attrs)
    attrs.setdefault("active", True)
    return attrs


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _user_rows(
    org_id: uuid.UUID, start: int, end: int, source: str
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    for i in range(start, end):
        uid = dataset.user_id(i)
        attrs = stored_user_attrs(dataset.user_body(i))
        created = _EPOCH + timedelta(milliseconds=i)
        event_id = uuid.uuid5(uid, "provisioned")
        payload = ev.encode(
            ev.user_provisioned(org_id, uid, attrs),
            event_id=event_id,
            source=source,
            time=created,
            org_id=org_id,
            version=1,
        )
        user = (uid, org_id, _json(attrs), 1, 1, created, created)
        event = (event_id, org_id, uid, "User", 1, ev.USER_PROVISIONED, created, payload)
        yield user, event


USER_COLUMNS = ["id", "org_id", "attrs", "version", "event_seq", "created_at", "updated_at"]
EVENT_COLUMNS = [
    "id",
    "org_id",
    "subject",
    "resource_type",
    "resource_version",
    "type",
    "time",
    "payload",
]


async def load_users(
    conn: asyncpg.Connection, org_id: uuid.UUID, start: int, end: int, source: str
) -> None:
    for lo in range(start, end, CHUNK):
        hi = min(end, lo + CHUNK)
        users, events = zip(*_user_rows(org_id, lo, hi, source), strict=True)
        async with conn.transaction():
            await conn.copy_records_to_table("users", records=users, columns=USER_COLUMNS)
            await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)


async def create_group(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    name: str,
    members: range,
    source: str,
) -> uuid.UUID:
    """A group with `members` (user indexes), as one POST /Groups with them would store it."""
    gid = dataset.group_id(name)
    attrs = normalize_resource(s.GROUP_TYPE, dataset.group_body(name))
    member_ids = sorted(dataset.user_id(i) for i in members)
    events = ev.group_changed(
        org_id,
        gid,
        attrs,
        kinds=["created"],
        added=member_ids,
        removed=[],
        member_count=len(member_ids),
    )
    now = _EPOCH
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO groups (id, org_id, attrs, member_count, version, event_seq,"
            " created_at, updated_at) VALUES ($1, $2, $3::jsonb, $4, 1, $5, $6, $6)",
            gid,
            org_id,
            _json(attrs),
            len(member_ids),
            len(events),
            now,
        )
        await conn.copy_records_to_table(
            "group_members",
            records=((gid, m) for m in member_ids),
            columns=["group_id", "user_id"],
        )
        rows = []
        for n, e in enumerate(events, start=1):
            event_id = uuid.uuid5(gid, f"created-{n}")
            payload = ev.encode(
                e, event_id=event_id, source=source, time=now, org_id=org_id, version=n
            )
            rows.append((event_id, org_id, gid, "Group", n, e.type, now, payload))
        await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
    return gid


async def prefill_outbox(
    conn: asyncpg.Connection, org_id: uuid.UUID, sink: str, count: int, source: str
) -> list[uuid.UUID]:
    """`count` pending user.provisioned events for `sink`, each for its own new subject (a
    burst of provisioning), with the payloads the service would write."""
    now = datetime.now(UTC)
    rows = []
    base = uuid.uuid4()
    for n in range(count):
        subject = uuid.uuid5(base, str(n))
        event_id = uuid.uuid4()
        attrs = stored_user_attrs(dataset.user_body(n))
        payload = ev.encode(
            ev.user_provisioned(org_id, subject, attrs),
            event_id=event_id,
            source=source,
            time=now,
            org_id=org_id,
            version=1,
        )
        rows.append((event_id, org_id, subject, "User", 1, ev.USER_PROVISIONED, now, payload))
    async with conn.transaction():
        await conn.execute("CREATE TEMP TABLE bench_new (id uuid) ON COMMIT DROP")
        await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
        await conn.copy_records_to_table(
            "bench_new", records=((r[0],) for r in rows), columns=["id"]
        )
        await conn.execute(
            "INSERT INTO outbox (sink, event_seq, subject, resource_version)"
            " SELECT $1, e.seq, e.subject, e.resource_version"
            " FROM events e JOIN bench_new n ON n.id = e.id ORDER BY e.seq",
            sink,
        )
    await conn.execute("VACUUM ANALYZE events")
    await conn.execute("VACUUM ANALYZE outbox")
    return [r[0] for r in rows]
