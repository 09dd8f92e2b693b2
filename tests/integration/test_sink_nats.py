"""The NATS JetStream sink against a real nats-server with JetStream.

The server is the one on 127.0.0.1:4222 (or SCIM_TEST_NATS_URL); CI starts it. Tests that need
it skip only when nothing answers there. Each test uses its own stream name and subject prefix
and deletes its stream afterwards, so tests (and parallel runs) never collide. The disconnect
test starts a private nats-server of its own on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from scim_service.events.sinks.base import Outbound, Outcome
from scim_service.events.sinks.nats import DUPLICATE_WINDOW, NatsSink, subject_covers
from tests.support import free_port

NATS_URL = os.environ.get("SCIM_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2):
            return True
    except OSError:
        return False


@dataclass
class Names:
    prefix: str
    stream: str


@pytest.fixture(name="names")
def fixture_names() -> Names:
    """A subject prefix and stream name no other test uses."""
    tag = uuid.uuid4().hex[:12]
    return Names(prefix=f"scimtest{tag}", stream=f"SCIMTEST_{tag.upper()}")


@pytest.fixture(name="admin")
async def fixture_admin(nats_url: str, names: Names) -> AsyncIterator[JetStreamContext]:
    """A plain JetStream client to inspect the stream; deletes the test's stream at the end."""
    nc: Client = await nats.connect(nats_url, connect_timeout=5)
    js = nc.jetstream()
    try:
        yield js
    finally:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(names.stream)
        await nc.close()


@pytest.fixture(name="sink")
async def fixture_sink(
    nats_url: str, names: Names, admin: JetStreamContext
) -> AsyncIterator[NatsSink]:
    """An opened sink on the test's own stream and prefix."""
    sink = NatsSink(nats_url, subject_prefix=names.prefix, stream=names.stream)
    await sink.open()
    try:
        yield sink
    finally:
        await sink.close()


def _event(seq: int, *, org: str = "org-a", type_: str = "user.provisioned") -> Outbound:
    event_id = str(uuid.uuid4())
    payload = (
        b'{"specversion":"1.0","id":"%s","source":"/scim","type":"%s","subject":"user-%d",'
        b'"orgid":"%s","resourceversion":1,"data":{}}'
        % (event_id.encode(), type_.encode(), seq, org.encode())
    )
    return Outbound(
        seq=seq, id=event_id, type=type_, org_id=org, subject=f"user-{seq}", payload=payload
    )


async def test_open_creates_the_stream(
    sink: NatsSink, names: Names, admin: JetStreamContext
) -> None:
    """A missing stream is created: `<prefix>.>`, file storage, a 2-minute+ duplicate window."""
    info = await admin.stream_info(names.stream)
    assert info.config.subjects == [f"{names.prefix}.>"]
    assert info.config.storage == StorageType.FILE
    assert (info.config.duplicate_window or 0) >= DUPLICATE_WINDOW >= 120


async def test_events_land_on_their_subjects_with_headers_and_exact_payload(
    sink: NatsSink, names: Names, admin: JetStreamContext
) -> None:
    """Subject `<prefix>.<org>.<type>`; Nats-Msg-Id = event id; the payload byte for byte."""
    batch = [
        _event(1, org="org-a", type_="user.provisioned"),
        _event(2, org="org-b", type_="user.deprovisioned"),
        _event(3, org="org-a", type_="group.changed"),
    ]
    assert await sink.deliver(batch) == [Outcome(ok=True)] * 3

    stored = [await admin.get_msg(names.stream, seq) for seq in (1, 2, 3)]
    by_id = {(m.headers or {}).get("Nats-Msg-Id"): m for m in stored}
    assert set(by_id) == {e.id for e in batch}
    for event in batch:
        msg = by_id[event.id]
        assert msg.subject == f"{names.prefix}.{event.org_id}.{event.type}"
        assert msg.data == event.payload
        assert (msg.headers or {}).get("Content-Type") == "application/cloudevents+json"
    assert stored[0].subject is not None and stored[0].subject.count(".") == 3


async def test_a_redelivered_event_is_stored_once(
    sink: NatsSink, names: Names, admin: JetStreamContext
) -> None:
    """The same event delivered twice is acked both times and stored once (Nats-Msg-Id)."""
    event = _event(1)
    assert await sink.deliver([event]) == [Outcome(ok=True)]
    assert await sink.deliver([event]) == [Outcome(ok=True)]
    assert await sink.deliver([event, _event(2)]) == [Outcome(ok=True)] * 2
    info = await admin.stream_info(names.stream)
    assert info.state.messages == 2


async def test_an_existing_stream_is_reused_unchanged(
    nats_url: str, names: Names, admin: JetStreamContext
) -> None:
    """A stream the operator created (even with wider subjects) is used as it is."""
    await admin.add_stream(
        StreamConfig(
            name=names.stream,
            subjects=[f"{names.prefix}.>"],
            description="made by the operator",
            storage=StorageType.MEMORY,
            max_msgs=1000,
        )
    )
    # The sink's prefix is narrower than the stream's subjects: still covered.
    sink = NatsSink(nats_url, subject_prefix=f"{names.prefix}.prod", stream=names.stream)
    await sink.open()
    try:
        assert await sink.deliver([_event(1)]) == [Outcome(ok=True)]
    finally:
        await sink.close()
    info = await admin.stream_info(names.stream)
    assert info.config.description == "made by the operator"
    assert info.config.storage == StorageType.MEMORY
    assert info.config.max_msgs == 1000
    assert info.state.messages == 1
    msg = await admin.get_msg(names.stream, 1)
    assert msg.subject == f"{names.prefix}.prod.org-a.user.provisioned"


async def test_an_existing_stream_that_does_not_cover_the_prefix_is_refused(
    nats_url: str, names: Names, admin: JetStreamContext
) -> None:
    """open() fails with a clear error rather than publishing into the void."""
    await admin.add_stream(name=names.stream, subjects=[f"{names.prefix}.other.>"])
    sink = NatsSink(nats_url, subject_prefix=names.prefix, stream=names.stream)
    with pytest.raises(RuntimeError, match="do not cover"):
        await sink.open()
    await sink.close()
    assert await sink.deliver([_event(1)]) == [Outcome(ok=False, error="sink not open")]


async def test_a_second_sink_reuses_the_stream_it_created(
    nats_url: str, names: Names, admin: JetStreamContext
) -> None:
    """Two instances opening the same stream both work (the second finds it existing)."""
    first = NatsSink(nats_url, subject_prefix=names.prefix, stream=names.stream)
    second = NatsSink(nats_url, subject_prefix=names.prefix, stream=names.stream)
    await asyncio.gather(first.open(), second.open())
    try:
        outcomes = await asyncio.gather(first.deliver([_event(1)]), second.deliver([_event(2)]))
        assert list(outcomes) == [[Outcome(ok=True)], [Outcome(ok=True)]]
    finally:
        await first.close()
        await second.close()
    assert (await admin.stream_info(names.stream)).state.messages == 2


async def test_a_deleted_stream_gives_failed_outcomes(
    sink: NatsSink, names: Names, admin: JetStreamContext
) -> None:
    """No stream for the subject (no responders) is a retryable failure, not an exception."""
    await admin.delete_stream(names.stream)
    started = time.monotonic()
    outcomes = await sink.deliver([_event(1), _event(2)])
    assert time.monotonic() - started < 3
    assert [o.ok for o in outcomes] == [False, False]
    assert not any(o.permanent for o in outcomes)
    assert all(o.error for o in outcomes)


async def test_events_unusable_in_a_subject_fail_permanently_alone(sink: NatsSink) -> None:
    """An org id or type that would break the subject is dead-lettered; the rest go through."""
    bad_org = _event(1, org="org.with.dots")
    bad_type = _event(2, type_="user.*")
    outcomes = await sink.deliver([bad_org, _event(3), bad_type])
    assert outcomes[1] == Outcome(ok=True)
    for outcome in (outcomes[0], outcomes[2]):
        assert not outcome.ok and outcome.permanent


async def test_unknown_server_raises_on_open_and_deliver_fails_softly() -> None:
    """Nothing listening: open() raises a clear ConnectionError in bounded time; deliver
    without a connection fails every event without raising."""
    url = f"nats://scim:s3cret@127.0.0.1:{free_port()}"
    sink = NatsSink(url, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot connect to NATS") as caught:
        await sink.open()
    assert time.monotonic() - started < 3
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(sink)
    assert await sink.deliver([_event(1)]) == [Outcome(ok=False, error="sink not open")]
    await sink.close()


@pytest.fixture(name="private_server")
def fixture_private_server(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """The command line and URL of a nats-server of our own (started by the test)."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        pytest.skip("nats-server binary not found")
    port = free_port()
    store = tmp_path / "js"
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    yield command, f"nats://127.0.0.1:{port}"


def _start(command: list[str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _reachable(url):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("private nats-server did not start")
        time.sleep(0.05)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


async def test_disconnected_server_fails_softly_then_reconnects(
    private_server: tuple[list[str], str],
) -> None:
    """Server gone: deliver fails without raising; once it is back the client has reconnected
    in the background and delivery works again."""
    command, url = private_server
    process = _start(command, url)
    sink = NatsSink(url, subject_prefix="scim", stream="SCIM_EVENTS", publish_timeout=1.0)
    try:
        await sink.open()
        assert await sink.deliver([_event(1)]) == [Outcome(ok=True)]

        await asyncio.to_thread(_stop, process)
        started = time.monotonic()
        outcomes = await sink.deliver([_event(2), _event(3)])
        assert time.monotonic() - started < 3
        assert [o.ok for o in outcomes] == [False, False]
        assert all(o.error and not o.permanent for o in outcomes)

        process = await asyncio.to_thread(_start, command, url)
        deadline = time.monotonic() + 15
        while True:
            outcomes = await sink.deliver([_event(4)])
            if outcomes[0].ok or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert outcomes == [Outcome(ok=True)]
    finally:
        await sink.close()
        await asyncio.to_thread(_stop, process)


async def test_throughput_5000_events(
    sink: NatsSink, names: Names, admin: JetStreamContext
) -> None:
    """Publish 5,000 ~560-byte events in batches of 500 and print the rate (no assertion)."""
    events = [_event(i) for i in range(5000)]
    events = [
        Outbound(
            seq=e.seq,
            id=e.id,
            type=e.type,
            org_id=e.org_id,
            subject=e.subject,
            payload=e.payload.ljust(560),
        )
        for e in events
    ]
    started = time.perf_counter()
    for start in range(0, len(events), 500):
        outcomes = await sink.deliver(events[start : start + 500])
        assert all(o.ok for o in outcomes)
    elapsed = time.perf_counter() - started
    print(f"\nNATS sink: 5000 events in {elapsed:.3f}s = {5000 / elapsed:,.0f} events/s")
    assert (await admin.stream_info(names.stream)).state.messages == 5000


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("scim.>", "scim.>", True),
        (">", "scim.>", True),
        ("scim.>", "scim.prod.>", True),
        ("*.>", "scim.>", True),
        ("scim.*.>", "scim.>", False),
        ("scim.*", "scim.>", False),
        ("scim.other.>", "scim.>", False),
        ("other.>", "scim.>", False),
        ("scim", "scim.>", False),
        ("scim.a.b", "scim.a.b", True),
        ("scim.*.b", "scim.a.b", True),
        ("scim.a.b", "scim.*.b", False),
    ],
)
def test_subject_covers(pattern: str, subject: str, expected: bool) -> None:
    """A stream subject covers the sink's `<prefix>.>` only if it matches all it can match."""
    assert subject_covers(pattern, subject) is expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject_prefix": "scim.*"},
        {"subject_prefix": "scim..x"},
        {"subject_prefix": ""},
        {"subject_prefix": "has space"},
        {"stream": "bad.name"},
        {"stream": ""},
        {"connect_timeout": 0},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    """Prefixes and stream names that cannot work are refused at construction."""
    with pytest.raises(ValueError):
        NatsSink("nats://127.0.0.1:4222", **kwargs)  # type: ignore[arg-type]
