"""A client that hangs up mid-body is its own outcome, not a database outage (issue 23)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp

from scim_service.config import Settings
from tests.conftest import ADMIN_TOKEN, Tenant
from tests.support import serving, until


def _half_a_body(port: int, token: str, path: str) -> None:
    """Send a request head announcing 400 bytes, 40 of them, and close the socket."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/scim+json\r\nContent-Length: 400\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + b'{"userName": "half@example.com", "displ')
        time.sleep(0.3)  # the server has read the head and waits for the rest


async def test_hang_up_mid_body_is_client_closed_not_503(
    settings: Settings, tenant: Tenant
) -> None:
    """Creates whose client closes the socket halfway through the body: no 5xx and no
    database signal in the metrics, a `client_closed` outcome there and 499 in the activity
    log, nothing created; the organization's next request is served as usual."""
    async with serving(settings) as (base, _app), aiohttp.ClientSession(base) as http:
        port = int(base.rsplit(":", 1)[1])
        for path in ("/scim/v2/Users", "/scim/v2/Groups"):
            await asyncio.to_thread(_half_a_body, port, tenant.token, path)

        async def metrics() -> str:
            async with http.get("/metrics") as resp:
                return await resp.text()

        async def both_counted() -> bool:
            return (await metrics()).count('outcome="client_closed"') >= 2

        await until(both_counted, 10, "both hang-ups in the metrics")
        text = await metrics()
        for resource in ("User", "Group"):
            assert (
                f'scim_operations_total{{operation="create",outcome="client_closed",'
                f'resource="{resource}"}} 1.0'
            ) in text
        assert 'route="/scim/v2/Users",status="499"} 1.0' in text
        # Every series exists from the start, zero-valued: what matters is that none counted.
        counted = [
            line
            for line in text.splitlines()
            if not line.startswith("#")
            and ('status="503"' in line or 'outcome="server_error"' in line)
            and "_created" not in line
            and float(line.rsplit(" ", 1)[1]) != 0
        ]
        assert counted == [], counted

        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        found: list[dict[str, Any]] = []

        async def logged() -> bool:
            nonlocal found
            async with http.get(f"/admin/v1/orgs/{tenant.org_id}/activity", headers=admin) as r:
                found = (await r.json())["entries"]
            return len(found) >= 2

        await until(logged, 10, "both hang-ups in the activity log")
        assert sorted(e["status"] for e in found) == [499, 499]
        assert all("closed the connection" in (e["detail"] or "") for e in found)
        # Logged, but not in the organization's error rate: nobody refused anything.
        async with http.get(f"/admin/v1/orgs/{tenant.org_id}/status", headers=admin) as r:
            assert (await r.json())["last_hour"] == {"requests": 2, "errors": 0, "rate": 0.0}

        async with http.get("/scim/v2/Users", headers=tenant.headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["totalResults"] == 0
