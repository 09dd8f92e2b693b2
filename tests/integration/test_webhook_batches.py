"""Webhook batch mode (SCIM_WEBHOOK_BATCH_MAX, issue 23): consecutive versions of one resource
go out together, one CloudEvents batch request, in version order, signed over the batch; a
failing receiver's retries send the same events in the same order; the guard's held events stop
a batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from scim_service.config import Settings
from scim_service.events.publisher import Publisher
from scim_service.events.sinks.factory import build_sinks
from tests.conftest import Tenant
from tests.support import (
    Receiver,
    pending,
    publisher_settings,
    until,
    verified,
    write_event,
)
from tests.support import fixture_receiver as fixture_receiver

BATCH = 8
VERSIONS = 30


async def _backlog(db: asyncpg.Connection, org_id: uuid.UUID, subjects: list[uuid.UUID]) -> None:
    for version in range(1, VERSIONS + 1):
        for subject in subjects:
            await write_event(db, org_id, subject, version, sinks=("webhook",))


@pytest.fixture(name="publish")
async def fixture_publish(settings: Settings, receiver: Receiver) -> AsyncIterator[Any]:
    """Starts a batch-mode publisher delivering to `receiver`; stopped after the test."""
    started: list[Publisher] = []

    def publish() -> Publisher:
        conf = publisher_settings(settings, receiver, webhook_batch_max=BATCH)
        publisher = Publisher(conf, build_sinks(conf))
        publisher.start()
        started.append(publisher)
        return publisher

    yield publish
    for publisher in started:
        await publisher.stop(deadline=5)


def _runs(entries: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    """(subject, versions) of each request, in arrival order."""
    out = []
    for e in entries:
        batch = e["event"]
        assert isinstance(batch, list) and batch
        subjects = {ev["subject"] for ev in batch}
        assert len(subjects) == 1, "a batch holds one resource"
        out.append((batch[0]["subject"], [ev["resourceversion"] for ev in batch]))
    return out


def _per_subject(runs: list[tuple[str, list[int]]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for subject, versions in runs:
        out.setdefault(subject, []).extend(versions)
    return out


async def test_batches_arrive_in_version_order_signed(
    db: asyncpg.Connection, tenant: Tenant, receiver: Receiver, publish: Any
) -> None:
    """30 versions on each of two users: the receiver gets CloudEvents batches (a JSON array,
    `application/cloudevents-batch+json`) of up to 8 consecutive versions of one user, each
    user's versions exactly once and in order, every request signed (v1 and v1a) over its
    body; the same events give the same webhook-id."""
    subjects = [uuid.uuid4(), uuid.uuid4()]
    await _backlog(db, tenant.org_id, subjects)
    publish()
    await until(lambda: _done(db), what="the backlog delivered")
    runs = _runs(receiver.accepted)
    assert _per_subject(runs) == {str(s): list(range(1, VERSIONS + 1)) for s in subjects}
    assert max(len(v) for _, v in runs) == BATCH
    assert len(receiver.received) < VERSIONS  # far fewer requests than events
    stored = {str(r["id"]) for r in await db.fetch("SELECT id FROM events")}
    for entry in receiver.accepted:
        headers, body = entry["headers"], entry["body"]
        assert headers["Content-Type"] == "application/cloudevents-batch+json"
        assert {ev["id"] for ev in entry["event"]} <= stored
        assert verified(body, headers) == entry["event"]
    assert len({e["headers"]["webhook-id"] for e in receiver.accepted}) == len(runs)


async def _done(db: asyncpg.Connection) -> bool:
    return await pending(db) == 0


async def test_failing_receiver_retries_keep_order_and_lose_nothing(
    db: asyncpg.Connection, tenant: Tenant, receiver: Receiver, publish: Any
) -> None:
    """A receiver that refuses every other request: a refused batch comes again with the same
    events in the same order (and the same webhook-id) before anything after it; in the end
    each user's versions were accepted exactly once, in order."""
    subjects = [uuid.uuid4(), uuid.uuid4()]
    await _backlog(db, tenant.org_id, subjects)
    answered = 0

    async def flaky(entry: dict[str, Any]) -> int:
        nonlocal answered
        answered += 1
        return 503 if answered % 2 else 200

    receiver.respond = flaky
    publish()
    await until(lambda: _done(db), timeout=30, what="the backlog delivered")
    accepted = _runs(receiver.accepted)
    assert _per_subject(accepted) == {str(s): list(range(1, VERSIONS + 1)) for s in subjects}
    refused = [e for e in receiver.received if not any(e is a for a in receiver.accepted)]
    assert refused
    for subject in map(str, subjects):
        mine = [e for e in receiver.received if e["event"][0]["subject"] == subject]
        for i, entry in enumerate(mine[:-1]):
            if any(entry is r for r in refused):
                again = mine[i + 1]
                assert again["body"] == entry["body"]
                assert again["headers"]["webhook-id"] == entry["headers"]["webhook-id"]


async def test_held_events_stop_a_batch(
    db: asyncpg.Connection, tenant: Tenant, receiver: Receiver, publish: Any
) -> None:
    """With version 4 of a user held by the mass-deprovisioning guard, batches carry versions
    1 to 3 and nothing past the hold; once it is released, 4 onwards follow, in order."""
    subject = uuid.uuid4()
    for version in range(1, 11):
        await write_event(db, tenant.org_id, subject, version, sinks=("webhook",))
    await db.execute(  # what the guard's hold does to the rows (guard.sql)
        "UPDATE outbox SET held = true, next_attempt_at = 'infinity'"
        " WHERE subject = $1 AND resource_version >= 4",
        subject,
    )
    publish()
    await until(lambda: _left(db, 7), what="versions 1 to 3 delivered")
    assert _per_subject(_runs(receiver.accepted)) == {str(subject): [1, 2, 3]}
    await db.execute(
        "UPDATE outbox SET held = false, next_attempt_at = now() WHERE subject = $1", subject
    )
    await until(lambda: _done(db), what="the released events delivered")
    got = _per_subject(_runs(receiver.accepted))
    assert got == {str(subject): list(range(1, 11))}
    assert all(json.loads(e["body"]) for e in receiver.accepted)


async def _left(db: asyncpg.Connection, count: int) -> bool:
    return await pending(db) == count
