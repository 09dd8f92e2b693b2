"""The log sink: each CloudEvent as one JSON line on stdout."""

from __future__ import annotations

import io
import json

import pytest

from scim_service.events.sinks.base import Outbound, Outcome
from scim_service.events.sinks.log import LogSink


def _event(seq: int, payload: bytes) -> Outbound:
    return Outbound(
        seq=seq,
        id=f"00000000-0000-4000-8000-{seq:012d}",
        type="user.provisioned",
        org_id="org-1",
        subject=f"user-{seq}",
        payload=payload,
    )


async def test_writes_each_payload_as_one_line_to_the_current_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Payloads go to sys.stdout as found at write time (so capture works), unwrapped."""
    sink = LogSink()
    await sink.open()
    batch = [_event(1, b'{"id":"a","type":"user.provisioned"}'), _event(2, b'{"id":"b"}')]
    assert await sink.deliver(batch) == [Outcome(ok=True), Outcome(ok=True)]
    await sink.close()
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": "a", "type": "user.provisioned"},
        {"id": "b"},
    ]


async def test_explicit_stream_and_pretty_json_stays_one_line() -> None:
    """A given stream is used; insignificant newlines in a payload do not split its line."""
    out = io.StringIO()
    sink = LogSink(out)
    outcomes = await sink.deliver([_event(1, b'{\n  "id": "a\\nb"\n}')])
    assert outcomes == [Outcome(ok=True)]
    (line,) = out.getvalue().splitlines()
    assert json.loads(line) == {"id": "a\nb"}
    assert await sink.deliver([]) == []


async def test_a_closed_stream_fails_without_raising() -> None:
    """deliver never raises: a write error becomes a failed outcome per event."""
    out = io.StringIO()
    out.close()
    outcomes = await LogSink(out).deliver([_event(1, b"{}"), _event(2, b"{}")])
    assert [o.ok for o in outcomes] == [False, False]
    assert outcomes[0].error == "write failed: ValueError"
