"""Server errors the fuzzers found (tests/conformance/test_fuzz_*.py), each pinned by its reproduction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conformance.fuzz_support import check_answer
from tests.conftest import Tenant

ERROR_URN = b"urn:ietf:params:scim:api:messages:2.0:Error"
_ERROR_500 = b'{"schemas":["' + ERROR_URN + b'"],"status":"500","detail":"Internal server error"}'


async def _raw(client: Any, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (HTTP clients refuse header values that are not text)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_if_match_that_is_not_utf8_is_a_412_scim_error(client: Any, tenant: Tenant) -> None:
    """An If-Match of raw non-UTF-8 bytes (echoed in the error detail) is a 412 SCIM error,
    not aiohttp's plain-text 500 without a request id (found by schemathesis)."""
    created = await client.post(
        "/scim/v2/Groups", json={"displayName": "g"}, headers=tenant.headers
    )
    group_id = (await created.json())["id"]
    status, headers, body = await _raw(
        client,
        f"DELETE /scim/v2/Groups/{group_id} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {tenant.token}\r\nConnection: close\r\n".encode()
        + b"If-Match: \xec\xc7\xd3%\r\n\r\n",
    )
    assert status == 412
    assert headers["content-type"].startswith("application/scim+json")
    assert "x-request-id" in headers
    error = json.loads(body)
    assert error["status"] == "412"
    assert "\\udcec" in error["detail"]  # the bytes, shown escaped
    still = await client.get(f"/scim/v2/Groups/{group_id}", headers=tenant.headers)
    assert still.status == 200  # nothing was deleted


# --- the fuzzers' own checks catch what they are meant to ---------------------------------------


def _offline_live() -> Any:
    from pathlib import Path

    import requests

    from tests.conformance.fuzz_support import Live

    return Live(
        "http://127.0.0.1:9", Path("/dev/null"), "t", "o", "a", [], [], [], requests.Session()
    )


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (500, "application/scim+json", _ERROR_500),
        (
            400,
            "application/scim+json",
            b'{"schemas":["' + ERROR_URN + b'"],"status":400,"detail":"x"}',
        ),
        (
            404,
            "application/json",
            b'{"schemas":["' + ERROR_URN + b'"],"status":"404","detail":"x"}',
        ),
        (400, "application/scim+json", b'{"detail": "no schemas"}'),
        (
            409,
            "application/scim+json",
            b'{"schemas":["'
            + ERROR_URN
            + b'"],"status":"409","scimType":"invalidPath","detail":"x"}',
        ),
        (200, "application/json", b'{"Resources": []}'),
        (400, "application/scim+json", b'Traceback (most recent call last):\n  File "/app/x.py"'),
        (200, "application/scim+json", b'{"detail": "asyncpg.exceptions.DataError: boom"}'),
    ],
    ids=[
        "unexplained-500",
        "status-not-a-string",
        "json-on-a-scim-path",
        "not-an-error-body",
        "scimtype-on-a-409-other-than-uniqueness",
        "scim-answer-as-plain-json",
        "traceback",
        "driver-name",
    ],
)
def test_fuzz_checks_reject_bad_answers(status: int, content_type: str, body: bytes) -> None:
    """Each way an answer can be wrong fails `check_answer` (so a passing fuzz run means
    something)."""
    with pytest.raises(AssertionError):
        check_answer(_offline_live(), "GET", "/scim/v2/Users", "", status, content_type, body, None)


def test_fuzz_checks_accept_a_scim_error() -> None:
    good = (
        b'{"schemas":["' + ERROR_URN + b'"],"status":"400","scimType":"invalidFilter","detail":"x"}'
    )
    assert (
        check_answer(
            _offline_live(), "GET", "/scim/v2/Users", "", 400, "application/scim+json", good, None
        )
        is None
    )
