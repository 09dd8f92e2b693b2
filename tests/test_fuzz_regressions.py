"""Server errors the fuzzers found (tests/test_fuzz_*.py), each pinned by its reproduction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.conftest import Tenant


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
