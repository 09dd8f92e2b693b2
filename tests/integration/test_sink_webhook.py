"""The webhook sink against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scim_service.events.sinks.base import Outbound, Outcome
from scim_service.events.sinks.webhook import MAX_RETRY_AFTER, WebhookSink, parse_retry_after
from scim_service.signing import Signer, generate_secret, generate_signing_key
from tests.support import free_port, verified

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class Receiver:
    """Records every request; answers with `status`/`headers` after `delay` seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.read()
            assert request.transport is not None
            peer = request.transport.get_extra_info("peername")
            self.requests.append(
                Received(request.method, request.path, dict(request.headers), body, peer[1])
            )
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.status, headers=self.headers, body=self.body)
        finally:
            self.in_flight -= 1


@pytest.fixture(name="receiver")
def fixture_receiver() -> Receiver:
    return Receiver()


@pytest.fixture(name="url")
async def fixture_url(receiver: Receiver, aiohttp_server: ServerFactory) -> str:
    """The receiver's URL, served by a real aiohttp server on 127.0.0.1."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/elsewhere", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/hook"))


def _event(seq: int, *, org: str = "org-1", type_: str = "user.provisioned") -> Outbound:
    event_id = f"0190c6a4-0000-7000-8000-{seq:012d}"
    payload = (
        b'{"specversion":"1.0","id":"%s","source":"/scim","type":"%s","subject":"user-%d",'
        b'"orgid":"%s","resourceversion":1,"data":{"userName":"u%d@example.com"}}'
        % (event_id.encode(), type_.encode(), seq, org.encode(), seq)
    )
    return Outbound(
        seq=seq, id=event_id, type=type_, org_id=org, subject=f"user-{seq}", payload=payload
    )


async def _deliver(sink: WebhookSink, batch: list[Outbound]) -> list[Outcome]:
    await sink.open()
    try:
        return await sink.deliver(batch)
    finally:
        await sink.close()


async def test_posts_exact_body_and_headers_signed_v1_and_v1a(receiver: Receiver, url: str) -> None:
    """Each event is one POST: exact payload, CloudEvents content type, both signatures valid."""
    secret = generate_secret()
    whsk, whpk = generate_signing_key()
    sink = WebhookSink(url, Signer([secret], whsk), user_agent="scim-service/test")
    batch = [_event(1), _event(2), _event(3, type_="group.changed")]

    outcomes = await _deliver(sink, batch)

    assert outcomes == [Outcome(ok=True)] * 3
    by_id = {r.headers["webhook-id"]: r for r in receiver.requests}
    assert set(by_id) == {e.id for e in batch}
    for event in batch:
        got = by_id[event.id]
        assert (got.method, got.path) == ("POST", "/hook")
        assert got.body == event.payload
        assert got.headers["Content-Type"] == "application/cloudevents+json"
        assert got.headers["User-Agent"] == "scim-service/test"
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
        assert [s.split(",")[0] for s in got.headers["webhook-signature"].split(" ")] == [
            "v1",
            "v1a",
        ]
        verified(got.body, got.headers, secret, whpk)


async def test_unsigned_sink_still_sends_id_and_timestamp(receiver: Receiver, url: str) -> None:
    """Without a signer the Standard Webhooks id and timestamp go out, with no signature."""
    assert await _deliver(WebhookSink(url, None), [_event(1)]) == [Outcome(ok=True)]
    (got,) = receiver.requests
    assert got.headers["webhook-id"] == _event(1).id
    assert got.headers["webhook-timestamp"].isdigit()
    assert "webhook-signature" not in got.headers


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
async def test_2xx_is_success(receiver: Receiver, url: str, status: int) -> None:
    """Any 2xx confirms delivery."""
    receiver.status = status
    assert await _deliver(WebhookSink(url, None), [_event(1)]) == [Outcome(ok=True)]


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (500, "7", 7.0),
        (503, None, None),
        (429, "120", 120.0),
        (404, None, None),
        (400, "garbage", None),
    ],
)
async def test_other_statuses_are_retryable_failures(
    receiver: Receiver, url: str, status: int, retry_after: str | None, expected: float | None
) -> None:
    """429/5xx/other 4xx fail without being permanent; Retry-After seconds are passed on."""
    receiver.status = status
    if retry_after is not None:
        receiver.headers["Retry-After"] = retry_after
    (outcome,) = await _deliver(WebhookSink(url, None), [_event(1)])
    assert outcome == Outcome(
        ok=False, error=f"HTTP {status}", retry_after=expected, permanent=False
    )


async def test_retry_after_http_date(receiver: Receiver, url: str) -> None:
    """A Retry-After HTTP date becomes the seconds until then."""
    receiver.status = 429
    receiver.headers["Retry-After"] = formatdate(time.time() + 30, usegmt=True)
    (outcome,) = await _deliver(WebhookSink(url, None), [_event(1)])
    assert not outcome.ok and not outcome.permanent
    assert outcome.retry_after is not None
    assert 27 <= outcome.retry_after <= 31


async def test_410_gone_is_permanent(receiver: Receiver, url: str) -> None:
    """410 Gone: the receiver wants no more webhooks, so the event is dead-lettered at once."""
    receiver.status = 410
    (outcome,) = await _deliver(WebhookSink(url, None), [_event(1)])
    assert outcome == Outcome(ok=False, error="HTTP 410", permanent=True)


async def test_redirects_are_not_followed(receiver: Receiver, url: str) -> None:
    """A 3xx is a failure: the sink does not chase the Location (spec: update the URL)."""
    receiver.status = 307
    receiver.headers["Location"] = url.replace("/hook", "/elsewhere")
    (outcome,) = await _deliver(WebhookSink(url, None), [_event(1)])
    assert outcome == Outcome(ok=False, error="HTTP 307")
    assert [r.path for r in receiver.requests] == ["/hook"]


async def test_one_connection_is_reused_across_batches(receiver: Receiver, url: str) -> None:
    """The session pools keep-alive connections: several batches ride one TCP connection."""
    sink = WebhookSink(url, Signer([generate_secret()]), concurrency=1)
    await sink.open()
    try:
        for start in range(0, 12, 3):
            outcomes = await sink.deliver([_event(start + i) for i in range(3)])
            assert all(o.ok for o in outcomes)
    finally:
        await sink.close()
    assert len(receiver.requests) == 12
    assert len({r.peer_port for r in receiver.requests}) == 1


async def test_a_large_response_body_is_not_a_failure(receiver: Receiver, url: str) -> None:
    """The receiver's body is read and discarded (big ones drop the connection instead)."""
    receiver.body = b"x" * (300 * 1024)
    sink = WebhookSink(url, None, concurrency=1)
    await sink.open()
    try:
        assert await sink.deliver([_event(1)]) == [Outcome(ok=True)]
        assert await sink.deliver([_event(2)]) == [Outcome(ok=True)]
    finally:
        await sink.close()


async def test_timeout_is_a_retryable_failure(receiver: Receiver, url: str) -> None:
    """A receiver slower than the timeout gives a failed outcome, quickly, without raising."""
    receiver.delay = 2.0
    sink = WebhookSink(url, None, timeout=0.2)
    started = time.monotonic()
    outcomes = await _deliver(sink, [_event(1), _event(2)])
    assert time.monotonic() - started < 1.5
    assert outcomes == [Outcome(ok=False, error="timeout after 0.2s")] * 2


async def test_refused_connection_is_a_retryable_failure() -> None:
    """Nothing listening: a failed outcome naming the cause, never the URL or its password."""
    url = f"http://scim:s3cret-pass@127.0.0.1:{free_port()}/hook?token=t0ken"
    sink = WebhookSink(url, Signer([generate_secret()]))
    outcomes = await _deliver(sink, [_event(1), _event(2)])
    assert outcomes == [Outcome(ok=False, error="connection refused")] * 2
    for text in (repr(sink), *(o.error or "" for o in outcomes)):
        assert "s3cret" not in text
        assert "t0ken" not in text


async def test_url_credentials_are_sent_as_basic_auth(receiver: Receiver, url: str) -> None:
    """user:password in the URL authenticate the POST (and stay out of outcomes and repr)."""
    with_auth = url.replace("http://", "http://scim:s3cret-pass@")
    sink = WebhookSink(with_auth, None)
    assert await _deliver(sink, [_event(1)]) == [Outcome(ok=True)]
    expected = "Basic " + base64.b64encode(b"scim:s3cret-pass").decode()
    assert receiver.requests[0].headers["Authorization"] == expected
    assert "s3cret" not in repr(sink)


async def test_concurrency_is_bounded(receiver: Receiver, url: str) -> None:
    """A batch is sent concurrently, but never more than `concurrency` requests at once."""
    receiver.delay = 0.05
    sink = WebhookSink(url, None, concurrency=3)
    started = time.monotonic()
    outcomes = await _deliver(sink, [_event(i) for i in range(12)])
    elapsed = time.monotonic() - started
    assert outcomes == [Outcome(ok=True)] * 12
    assert receiver.max_in_flight == 3
    assert elapsed < 12 * 0.05  # concurrent, not one after another


async def test_deliver_before_open_or_after_close_fails_softly(url: str) -> None:
    """Without a session every event fails with a clear reason; nothing raises."""
    sink = WebhookSink(url, None)
    assert await sink.deliver([_event(1)]) == [Outcome(ok=False, error="sink not open")]
    await sink.open()
    await sink.close()
    assert await sink.deliver([_event(1)]) == [Outcome(ok=False, error="sink not open")]
    assert await sink.deliver([]) == []
    await sink.close()  # twice is fine


async def test_event_id_that_cannot_be_signed_is_permanent(receiver: Receiver, url: str) -> None:
    """An id with a '.' cannot be a Standard Webhooks id; that event fails for good, alone."""
    bad = Outbound(seq=9, id="a.b", type="user.updated", org_id="o", subject="s", payload=b"{}")
    outcomes = await _deliver(WebhookSink(url, Signer([generate_secret()])), [bad, _event(1)])
    assert outcomes[0].permanent and not outcomes[0].ok
    assert outcomes[1] == Outcome(ok=True)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "bad", ["ftp://example.com/hook", "/relative/path", "http:///nohost", "not a url"]
)
def test_invalid_url_is_refused(bad: str) -> None:
    """Configuration errors surface at construction, not at delivery."""
    with pytest.raises(ValueError, match="http"):
        WebhookSink(bad, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("99999999999", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is delay-seconds or an HTTP date (RFC 9110 §10.2.3), clamped to [0, 1 day]."""
    assert parse_retry_after(value) == expected


def test_parse_retry_after_future_date() -> None:
    """A future HTTP date gives the seconds from `now` until it."""
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == 90.0
