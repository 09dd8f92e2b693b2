"""The claim finds each resource's queue head without reading what waits behind it (issue 23):
only heads are claimed, from the caller's start subject on and then from the first, so every
resource's turn comes."""

from __future__ import annotations

import uuid

import asyncpg

from scim_service.store import outbox
from tests.conftest import Tenant

SUBJECTS = [uuid.UUID(int=n << 64) for n in (1, 2, 3)]


async def _backlog(db: asyncpg.Connection, org_id: uuid.UUID, versions: int) -> None:
    """`versions` pending events of each of the three subjects, for the log sink."""
    await db.execute(
        "INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time,"
        " payload) SELECT gen_random_uuid(), $1, s, 'Group', v, 'group.changed', now(),"
        " convert_to('{}', 'UTF8') FROM unnest($2::uuid[]) AS s, generate_series(1, $3) AS v"
        " ORDER BY v, s",
        org_id,
        SUBJECTS,
        versions,
    )
    await db.execute(
        "INSERT INTO outbox (sink, event_seq, subject, resource_version)"
        " SELECT 'log', seq, subject, resource_version FROM events ORDER BY seq"
    )


async def _claim(db: asyncpg.Connection, limit: int, start: uuid.UUID) -> list[outbox.Claimed]:
    return await outbox.claim(
        db, "log", limit, owner="t", lease_seconds=30, max_attempts=5, start=start
    )


async def test_claims_take_heads_only_and_rotate(db: asyncpg.Connection, tenant: Tenant) -> None:
    """With 200 versions pending on each of three groups: a claim of 64 gets the three heads
    (version 1 of each), nothing behind them; a claim of one from the second subject takes
    that one, the next claim starts after it and wraps round to the first; once the heads are
    delivered, the second versions are the heads."""
    await _backlog(db, tenant.org_id, 200)
    heads = await _claim(db, 64, outbox.FIRST_SUBJECT)
    taken = [(c.event.subject, c.event.seq) for c in heads]
    assert sorted(s for s, _ in taken) == sorted(str(s) for s in SUBJECTS)
    versions = await db.fetch(
        "SELECT resource_version FROM outbox WHERE event_seq = ANY($1::bigint[])",
        [seq for _, seq in taken],
    )
    assert {r["resource_version"] for r in versions} == {1}

    await db.execute("UPDATE outbox SET lease_until = NULL, lease_owner = NULL")  # hand back
    [second] = await _claim(db, 1, SUBJECTS[1])
    assert second.event.subject == str(SUBJECTS[1])
    start = outbox.next_start([second])
    assert SUBJECTS[1] < start < SUBJECTS[2]
    [third] = await _claim(db, 1, start)
    assert third.event.subject == str(SUBJECTS[2])
    [first] = await _claim(db, 1, outbox.next_start([third]))  # wraps round
    assert first.event.subject == str(SUBJECTS[0])
    assert await _claim(db, 5, outbox.FIRST_SUBJECT) == []  # every head is leased

    await db.execute("DELETE FROM outbox WHERE resource_version = 1")
    nxt = await _claim(db, 64, outbox.FIRST_SUBJECT)
    rows = await db.fetch(
        "SELECT resource_version FROM outbox WHERE event_seq = ANY($1::bigint[])",
        [c.event.seq for c in nxt],
    )
    assert len(nxt) == 3 and {r["resource_version"] for r in rows} == {2}
