"""Slow clients are cut off (issue 23): a head that never completes, a body trickled below the
minimum rate, an idle keep-alive, connections beyond the cap. Real sockets against the app as
`serve` runs it, with short bounds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import msgspec

from scim_service.config import Settings
from tests.conftest import Tenant
from tests.support import serving

SHORT = dict(
    http_head_timeout=1.0,
    http_body_grace=1.0,
    http_body_min_rate=100.0,
    http_keepalive_timeout=1.5,
    http_max_connections=6,
)


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def _collect(reader: asyncio.StreamReader, into: list[bytes]) -> None:
    """Everything the server sends until it closes the connection (or resets it)."""
    try:
        while chunk := await reader.read(4096):
            into.append(chunk)
    except ConnectionError:
        pass


async def _read_until_closed(reader: asyncio.StreamReader, bound: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    began = time.monotonic()
    got: list[bytes] = []
    await asyncio.wait_for(_collect(reader, got), bound)
    return b"".join(got), time.monotonic() - began


async def test_slow_heads_bodies_and_idle_connections_are_cut(
    settings: Settings, tenant: Tenant
) -> None:
    """With a 1 s head bound, 100 bytes/s after 1 s for bodies and a 1.5 s keep-alive: a
    connection that never sends, and one sending its head at 2 bytes/s, get 408 and are
    closed; a body at ~20 bytes/s gets a SCIM 408 and nothing is created; an idle keep-alive
    is closed; a body sent promptly in small pieces is served."""
    conf = msgspec.structs.replace(settings, **SHORT)
    async with serving(conf) as (base, _app):
        port = _port(base)
        head = (
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {tenant.token}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: {n}\r\n\r\n"
        )

        async def silent() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await _read_until_closed(reader, 10)
            finally:
                writer.close()

        async def trickled(
            first: bytes, rest: bytes, piece: int, every: float
        ) -> tuple[bytes, float]:
            """`first` at once, then `rest` `piece` bytes every `every` seconds, until the
            server answers or closes; what it sent and when."""
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            got: list[bytes] = []
            reading = asyncio.ensure_future(_collect(reader, got))
            try:
                writer.write(first)
                for i in range(0, len(rest), piece):
                    if reading.done() or got:
                        break
                    writer.write(rest[i : i + piece])
                    await writer.drain()
                    await asyncio.sleep(every)
            except ConnectionError:
                pass
            finally:
                await asyncio.wait_for(reading, 10)
                writer.close()
            return b"".join(got), time.monotonic() - began

        def trickled_head() -> Any:  # 2 bytes/s
            return trickled(b"", head.format(n=2)[:30].encode(), 1, 0.5)

        def trickled_body() -> Any:  # 4 bytes every 0.2 s: 20 bytes/s
            body = b'{"userName": "slow@example.com", "displayName": "' + b"x" * 200 + b'"}'
            return trickled(head.format(n=len(body)).encode(), body, 4, 0.2)

        async def prompt_pieces() -> bytes:
            body = b'{"userName": "quick@example.com"}'
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head.format(n=len(body)).encode())
                for i in range(0, len(body), 8):  # 8 bytes every 0.05 s: 160 bytes/s
                    writer.write(body[i : i + 8])
                    await writer.drain()
                    await asyncio.sleep(0.05)
                return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            finally:
                writer.close()

        (
            (silent_data, silent_at),
            (head_data, head_at),
            (body_data, body_at),
            quick,
        ) = await asyncio.gather(silent(), trickled_head(), trickled_body(), prompt_pieces())
        assert silent_data.startswith(b"HTTP/1.1 408"), silent_data
        assert 0.9 < silent_at < 3.0, silent_at
        assert head_data.startswith(b"HTTP/1.1 408"), head_data
        assert head_at < 3.0, head_at
        assert body_data.startswith(b"HTTP/1.1 408"), body_data
        assert b'"status":"408"' in body_data and b"bytes/s" in body_data, body_data
        assert body_at < 5.0, body_at
        assert quick.startswith(b"HTTP/1.1 201"), quick

        async with aiohttp.ClientSession(base) as http:
            async with http.get("/scim/v2/Users", headers=tenant.headers) as resp:
                names = {u["userName"] for u in (await resp.json())["Resources"]}
            assert names == {"quick@example.com"}
            async with http.get("/metrics") as resp:
                text = await resp.text()
        for reason in ("head_timeout", "body_too_slow"):
            assert f'reason="{reason}"' in text, reason

        # An idle keep-alive is closed after its bound.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            began = time.monotonic()
            await asyncio.wait_for(reader.read(), 10)  # the rest of the answer, then EOF
            idle = time.monotonic() - began
        finally:
            writer.close()
        assert 1.0 < idle < 4.0, idle


async def test_connections_beyond_the_cap_are_answered_503(settings: Settings) -> None:
    """With a cap of 6 open connections, the 7th is answered 503 with Retry-After and closed;
    once one closes, a new connection is served again."""
    conf = msgspec.structs.replace(settings, **SHORT | {"http_head_timeout": 30.0})
    async with serving(conf) as (base, _app):
        port = _port(base)
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
        try:
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert data.startswith(b"HTTP/1.1 503"), data
            assert b"Retry-After: 1" in data
        finally:
            for _, w in held:
                w.close()
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession(base) as http, http.get("/healthz") as resp:
            assert resp.status == 200
