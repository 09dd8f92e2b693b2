"""The publisher against a real database, a real HTTP receiver and real NATS JetStream (a
publisher process killed mid-delivery: processes/test_publisher_kill.py)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.events.publisher import Publisher
from scim_service.events.sinks.factory import build_sinks
from scim_service.store.outbox import CHANNEL
from tests.conftest import Tenant
from tests.support import (
    Receiver,
    listening,
    make_user,
    pending,
    publisher_settings,
    retitle,
    until,
    verified,
)
from tests.support import fixture_receiver as fixture_receiver


async def test_webhook_deliveries_are_signed_and_complete(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    uid = await make_user(client, tenant, "signed@example.com")
    await retitle(client, tenant, uid, "Guide")
    await until(lambda: len(receiver.accepted) == 2, what="two deliveries")
    stored = {
        str(r["id"]): bytes(r["payload"]) for r in await db.fetch("SELECT id, payload FROM events")
    }
    for entry in receiver.accepted:
        headers, body = entry["headers"], entry["body"]
        assert headers["Content-Type"] == "application/cloudevents+json"
        assert headers["webhook-id"] == entry["event"]["id"]
        assert body == stored[headers["webhook-id"]], "the exact bytes written with the change"
        assert verified(body, headers) == entry["event"]
    assert [e["event"]["type"] for e in receiver.accepted] == ["user.provisioned", "user.updated"]
    await until(lambda: _empty(db), what="outbox drained")


async def _empty(db: asyncpg.Connection) -> bool:
    return await pending(db) == 0


async def test_notify_wakes_the_publisher(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    """With a 30 s polling interval, an event still arrives at once: LISTEN/NOTIFY woke it."""
    client = await aiohttp_client(
        create_app(publisher_settings(settings, receiver, publisher_poll_interval=30.0))
    )
    await listening(db, CHANNEL)  # the publisher's wake-up connection is up
    started = time.monotonic()
    await make_user(client, tenant, "quick@example.com")
    await until(lambda: receiver.accepted, timeout=5, what="a prompt delivery")
    assert time.monotonic() - started < 3


async def test_failing_receiver_gets_every_event_in_order(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    """The receiver answers 500 (and sometimes 429 with Retry-After) for a while: events are
    retried with backoff, and each resource's events are accepted in version order."""
    failures = {"left": 15}

    async def flaky(entry: dict[str, Any]) -> int:
        if failures["left"] > 0:
            failures["left"] -= 1
            return random.choice([500, 503, 429])
        return 200

    receiver.respond = flaky
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    users = [await make_user(client, tenant, f"u{i}@example.com") for i in range(3)]
    for round_ in range(4):
        for uid in users:
            await retitle(client, tenant, uid, f"t{round_}")
    await until(lambda: len(receiver.accepted) == 15, timeout=30, what="15 accepted deliveries")
    for subject, versions in receiver.versions().items():
        assert versions == [1, 2, 3, 4, 5], subject
    assert len(receiver.received) > 15, "some deliveries were retried"
    await until(lambda: _empty(db), what="outbox drained")


async def test_dead_letters_block_their_resource_until_retried(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    down = {"yes": True}

    async def outage(entry: dict[str, Any]) -> int:
        return 503 if down["yes"] else 200

    receiver.respond = outage
    client = await aiohttp_client(
        create_app(publisher_settings(settings, receiver, events_max_attempts=2))
    )
    uid = await make_user(client, tenant, "dead@example.com")
    await until(lambda: _dead(db, 1), what="the event dead-lettered")
    resp = await client.get("/admin/v1/events/dead-letters", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    [dead] = (await resp.json())["dead_letters"]
    assert (
        dead["type"] == "user.provisioned"
        and dead["attempts"] == 2
        and dead["last_error"] == "HTTP 503"
    )
    assert dead["sink"] == "webhook"
    stats = (await (await client.get("/admin/v1/events/stats", headers=admin_headers)).json())[
        "sinks"
    ]
    assert stats == [
        {
            "sink": "webhook",
            "pending": 0,
            "oldest_age": 0.0,
            "dead": 1,
            "leased": 0,
            "held": 0,
            "configured": True,
        }
    ]
    # The receiver recovers; a later event of the same user waits behind the dead letter.
    down["yes"] = False
    await retitle(client, tenant, uid, "after")
    other = await make_user(client, tenant, "other@example.com")
    await until(
        lambda: any(e["event"]["subject"] == other for e in receiver.accepted),
        what="another user's event",
    )
    assert not any(e["event"]["subject"] == uid for e in receiver.accepted), (
        "later events wait behind a dead letter"
    )
    # Retry it through the admin API: both arrive, in order.
    resp = await client.post(
        "/admin/v1/events/dead-letters/retry",
        json={"event_ids": [dead["id"]]},
        headers=admin_headers,
    )
    assert (await resp.json())["retried"] == [dead["id"]]
    await until(
        lambda: receiver.versions().get(uid) == [1, 2], what="the retried event and its successor"
    )
    await until(lambda: _empty(db), what="outbox drained")


async def _dead(db: asyncpg.Connection, n: int) -> bool:
    return int(await db.fetchval("SELECT count(*) FROM outbox WHERE dead")) == n


async def test_gone_receiver_dead_letters_at_once(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    async def gone(entry: dict[str, Any]) -> int:
        return 410

    receiver.respond = gone
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    await make_user(client, tenant, "gone@example.com")
    await until(lambda: _dead(db, 1), what="a dead letter")
    assert len(receiver.received) == 1, "410 Gone is not retried"


async def test_two_publishers_keep_per_resource_order(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    """Two publishers on one database, a receiver with random latency: every event arrives
    once, and no resource's events overtake each other."""

    async def jittery(entry: dict[str, Any]) -> int:
        await asyncio.sleep(random.uniform(0, 0.01))
        return 200

    receiver.respond = jittery
    conf = publisher_settings(settings, receiver, publisher_batch_size=7)
    # The API process writes the events (for the same sinks) but publishes nothing itself.
    writer = await aiohttp_client(
        create_app(msgspec.structs.replace(conf, publisher_enabled=False))
    )
    users = [await make_user(writer, tenant, f"p{i}@example.com") for i in range(5)]
    publishers = [Publisher(conf, build_sinks(conf)) for _ in range(2)]
    for p in publishers:
        p.start()
    try:
        await asyncio.gather(
            *(retitle(writer, tenant, uid, f"v{r}") for r in range(8) for uid in users[r % 5 :][:2])
        )
        total = int(await db.fetchval("SELECT count(*) FROM events"))
        try:
            await until(lambda: len(receiver.accepted) >= total, timeout=30, what="all events")
        except AssertionError:
            rows = await db.fetch("SELECT * FROM outbox")
            raise AssertionError(
                f"{len(receiver.accepted)}/{total} accepted; outbox: {[dict(r) for r in rows]}"
            ) from None
    finally:
        for p in publishers:
            await p.stop(deadline=5)
    ids = [e["event"]["id"] for e in receiver.accepted]
    assert len(ids) == len(set(ids)) == total, "each event delivered exactly once here"
    for subject, versions in receiver.versions().items():
        assert versions == list(range(1, len(versions) + 1)), subject


async def test_out_of_order_commits_lose_nothing(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    database_url: str,
) -> None:
    """An event whose transaction took an earlier sequence number but commits later (after the
    publisher has delivered a later one) is still delivered: there is no global cursor."""
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    slow = await asyncpg.connect(database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time, payload) "
            "VALUES ($1, $2, $3, 'User', 1, 'user.provisioned', now(), $4)",
            uuid.uuid4(),
            tenant.org_id,
            uuid.uuid4(),
            b'{"subject": "slow", "resourceversion": 1, "id": "slow"}',
        )
        seq = await slow.fetchval("SELECT max(seq) FROM events")
        await slow.execute(
            "INSERT INTO outbox (sink, event_seq, subject, resource_version) SELECT 'webhook', seq, subject, 1 FROM events WHERE seq = $1",
            seq,
        )
        fast = await make_user(client, tenant, "fast@example.com")  # a later seq, committed first
        await until(
            lambda: any(e["event"].get("subject") == fast for e in receiver.accepted),
            what="the later event",
        )
        await tx.commit()
        await until(
            lambda: any(e["event"].get("subject") == "slow" for e in receiver.accepted),
            what="the earlier event",
        )
    finally:
        await slow.close()


async def test_replay_resends_with_the_same_ids(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    before = datetime.now(UTC) - timedelta(seconds=5)
    uid = await make_user(client, tenant, "replay@example.com")
    await retitle(client, tenant, uid, "x")
    await until(lambda: len(receiver.accepted) == 2, what="first deliveries")
    await until(
        lambda: _empty(db), what="deliveries recorded"
    )  # an event in flight is not queued twice
    first_ids = [e["event"]["id"] for e in receiver.accepted]
    resp = await client.post(
        "/admin/v1/events/replay", json={"since": before.isoformat()}, headers=admin_headers
    )
    assert (await resp.json())["queued"] == 2
    await until(lambda: len(receiver.accepted) == 4, what="replayed deliveries")
    await until(lambda: _empty(db), what="replays recorded")
    assert sorted(e["event"]["id"] for e in receiver.accepted[2:]) == sorted(first_ids)
    resp = await client.post(
        "/admin/v1/events/replay", json={"from_event_id": first_ids[1]}, headers=admin_headers
    )
    assert (await resp.json())["queued"] == 1
    await until(lambda: len(receiver.accepted) == 5, what="replay from an event id")
    resp = await client.post(
        "/admin/v1/events/replay", json={"from_event_id": str(uuid.uuid4())}, headers=admin_headers
    )
    assert resp.status == 404
    resp = await client.post("/admin/v1/events/replay", json={}, headers=admin_headers)
    assert resp.status == 400


async def test_retention_purges_only_delivered_events(
    settings: Settings, tenant: Tenant, db: asyncpg.Connection, receiver: Receiver
) -> None:
    conf = publisher_settings(settings, receiver, events_retention_days=1.0)
    old, pending_old, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for event_id, age_days in ((old, 3), (pending_old, 3), (fresh, 0)):
        await db.execute(
            "INSERT INTO events (id, org_id, subject, resource_type, resource_version, type, time, payload) "
            "VALUES ($1, $2, $3, 'User', 1, 'user.updated', now() - make_interval(days => $4), '{}')",
            event_id,
            tenant.org_id,
            uuid.uuid4(),
            age_days,
        )
    await db.execute(
        "INSERT INTO outbox (sink, event_seq, subject, resource_version) SELECT 'webhook', seq, subject, 1 FROM events WHERE id = $1",
        pending_old,
    )
    publisher = Publisher(conf, {})
    assert await publisher.purge_once() == 1
    left = {r["id"] for r in await db.fetch("SELECT id FROM events")}
    assert left == {pending_old, fresh}


async def test_nats_and_webhook_keep_separate_delivery_state(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    nats_url: str,
) -> None:
    """The webhook receiver is down; NATS still gets every event (de-duplicated by id)."""
    import nats

    async def down(entry: dict[str, Any]) -> int:
        return 503

    receiver.respond = down
    suffix = uuid.uuid4().hex[:8]
    prefix, stream = f"scimtest{suffix}", f"SCIMTEST_{suffix}"
    conf = publisher_settings(
        settings, receiver, nats_url=nats_url, nats_subject_prefix=prefix, nats_stream=stream
    )
    assert conf.sinks == ("webhook", "nats")
    client = await aiohttp_client(create_app(conf))
    uid = await make_user(client, tenant, "nats@example.com")
    await retitle(client, tenant, uid, "t")
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await until(
            lambda: _stream_count(js, stream, 2), timeout=15, what="2 messages in JetStream"
        )
        sub = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream)
        msgs = await sub.fetch(2, timeout=5)
        stored = {
            str(r["id"]): bytes(r["payload"])
            for r in await db.fetch("SELECT id, payload FROM events")
        }
        assert [m.subject for m in msgs] == [
            f"{prefix}.{tenant.org_id}.user.provisioned",
            f"{prefix}.{tenant.org_id}.user.updated",
        ]
        for m in msgs:
            assert m.data == stored[m.headers["Nats-Msg-Id"]]

        async def nats_done() -> bool:
            return int(await db.fetchval("SELECT count(*) FROM outbox WHERE sink = 'nats'")) == 0

        await until(nats_done, what="NATS deliveries recorded")
        assert int(await db.fetchval("SELECT count(*) FROM outbox WHERE sink = 'webhook'")) == 2, (
            "webhook still pending"
        )
        await js.delete_stream(stream)
    finally:
        await nc.close()


async def _stream_count(js: Any, stream: str, n: int) -> bool:
    try:
        info = await js.stream_info(stream)
    except Exception:
        return False
    return bool(info.state.messages >= n)


# --- issue 11: no transaction across the network, leases, orphaned sinks --------------------------


async def _idle_timeout_1s(db: asyncpg.Connection) -> None:
    """What many managed databases set: a transaction idle for 1 s is ended by the server."""
    name = await db.fetchval("SELECT current_database()")
    await db.execute(f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = '1s'")


async def test_slow_receiver_under_an_idle_transaction_timeout_gets_the_event_once(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    """The reproduction of issue 11: idle_in_transaction_session_timeout=1s and a receiver that
    answers 200 after 1.5 s. No transaction is open while the publisher waits for the receiver,
    so the event is delivered once, recorded, and the user's next event follows."""
    await _idle_timeout_1s(db)

    async def slow(entry: dict[str, Any]) -> int:
        await asyncio.sleep(1.5)
        return 200

    receiver.respond = slow
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    uid = await make_user(client, tenant, "slow@example.com")
    await retitle(client, tenant, uid, "second")
    await until(lambda: receiver.versions().get(uid) == [1, 2], timeout=20, what="both events")
    await until(lambda: _empty(db), what="outbox drained")
    assert len(receiver.received) == 2, "each event delivered exactly once"


async def test_slow_failing_receiver_counts_attempts_and_dead_letters(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    """The same database timeout, a receiver that answers 500 after 1.5 s every time: each
    attempt is counted and the event is dead-lettered after the maximum, not retried for ever."""
    await _idle_timeout_1s(db)

    async def slow_fail(entry: dict[str, Any]) -> int:
        await asyncio.sleep(1.5)
        return 500

    receiver.respond = slow_fail
    client = await aiohttp_client(
        create_app(publisher_settings(settings, receiver, events_max_attempts=3))
    )
    await make_user(client, tenant, "doomed@example.com")
    await until(lambda: _dead(db, 1), timeout=30, what="the dead letter")
    row = await db.fetchrow("SELECT attempts, last_error, lease_owner FROM outbox")
    assert row["attempts"] == 3 and row["last_error"] == "HTTP 500"
    assert row["lease_owner"] is None
    assert len(receiver.received) == 3
    ids = {e["headers"]["webhook-id"] for e in receiver.received}
    assert len(ids) == 1, "every attempt carried the same event id"


async def test_an_event_that_kills_its_publisher_every_time_is_dead_lettered(
    settings: Settings, tenant: Tenant, db: asyncpg.Connection, aiohttp_client: Any
) -> None:
    """Attempts are counted when the lease is taken: an event whose delivery never records an
    outcome (the publisher dies each time, here: leases left to run out) is dead-lettered by the
    claim that would exceed the maximum, and later events of its resource keep waiting."""
    client = await aiohttp_client(create_app(settings))
    uid = await make_user(client, tenant, "crasher@example.com")
    await retitle(client, tenant, uid, "later")
    from scim_service.store import outbox

    for attempt in range(1, 4):
        claimed = await outbox.claim(
            db, "log", 10, owner=f"dead-{attempt}", lease_seconds=0.01, max_attempts=3
        )
        assert [(c.attempts, c.dead) for c in claimed] == [(attempt, False)], "only version 1"
        await asyncio.sleep(0.05)  # the lease runs out: the "publisher" died
    [last] = await outbox.claim(db, "log", 10, owner="dead-4", lease_seconds=5, max_attempts=3)
    assert last.dead and last.attempts == 4
    row = await db.fetchrow("SELECT dead, last_error FROM outbox WHERE resource_version = 1")
    assert row["dead"] and "no outcome recorded after 3 attempts" in row["last_error"]
    again = await outbox.claim(db, "log", 10, owner="dead-5", lease_seconds=5, max_attempts=3)
    assert again == [], "version 2 waits behind the dead letter"


async def test_a_live_lease_holds_back_the_next_version(
    settings: Settings, tenant: Tenant, db: asyncpg.Connection, aiohttp_client: Any
) -> None:
    """While one publisher holds a lease on version 1, no publisher can claim version 1 or 2;
    once it records the delivery, version 2 is claimable."""
    from scim_service.store import outbox

    client = await aiohttp_client(create_app(settings))
    uid = await make_user(client, tenant, "leased@example.com")
    await retitle(client, tenant, uid, "v2")
    [first] = await outbox.claim(db, "log", 10, owner="a", lease_seconds=30, max_attempts=5)
    assert await outbox.claim(db, "log", 10, owner="b", lease_seconds=30, max_attempts=5) == []
    await outbox.record(db, "log", "a", [first.seq], [])
    [second] = await outbox.claim(db, "log", 10, owner="b", lease_seconds=30, max_attempts=5)
    assert second.seq > first.seq and second.attempts == 1


async def test_events_of_a_removed_sink_are_reported_and_handed_on(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    receiver: Receiver,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    """Events queued while a webhook was configured stay when it is removed: `events stats`
    says the sink is no longer configured, a configured sink cannot be discarded, and the
    operator hands them to the sink now configured (delivered there, in order)."""
    writer = await aiohttp_client(create_app(settings))  # sinks: log only
    uid = await make_user(writer, tenant, "orphan@example.com")
    await retitle(writer, tenant, uid, "two")
    await db.execute("UPDATE outbox SET sink = 'nats'")  # as if NATS had been configured then
    client = await aiohttp_client(create_app(publisher_settings(settings, receiver)))
    stats = await (await client.get("/admin/v1/events/stats", headers=admin_headers)).json()
    orphan = next(s for s in stats["sinks"] if s["sink"] == "nats")
    assert orphan["pending"] == 2 and orphan["configured"] is False
    scrape = await (await client.get("/metrics")).text()
    assert 'scim_outbox_unconfigured_sink_events{sink="nats"} 2.0' in scrape
    resp = await client.post("/admin/v1/events/orphans/webhook/discard", headers=admin_headers)
    assert resp.status == 409, "a configured sink's events are not for discarding"
    resp = await client.post(
        "/admin/v1/events/orphans/nats/move", json={"to": "log"}, headers=admin_headers
    )
    assert resp.status == 400, "log is not configured here"
    resp = await client.post(
        "/admin/v1/events/orphans/nats/move", json={"to": "webhook"}, headers=admin_headers
    )
    assert resp.status == 200 and (await resp.json())["moved"] == 2
    await until(lambda: receiver.versions().get(uid) == [1, 2], what="both events, in order")
    await until(lambda: _empty(db), what="outbox drained")


async def test_discarding_a_removed_sinks_events(
    aiohttp_client: Any,
    settings: Settings,
    tenant: Tenant,
    db: asyncpg.Connection,
    admin_headers: dict[str, str],
) -> None:
    client = await aiohttp_client(create_app(settings))
    await make_user(client, tenant, "gone@example.com")
    await db.execute("UPDATE outbox SET sink = 'webhook'")
    resp = await client.post("/admin/v1/events/orphans/webhook/discard", headers=admin_headers)
    assert resp.status == 200 and (await resp.json())["discarded"] == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert await db.fetchval("SELECT count(*) FROM events") == 1, "the event log keeps it"
