"""Logs: one structured line per request, with request id and org, and never a token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from scim_service.logs import configure_logging
from tests.conftest import ADMIN_TOKEN, Tenant

SPC = "/scim/v2/ServiceProviderConfig"


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


async def test_request_log_line_and_no_secrets(
    client: Any, tenant: Tenant, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "debug", cache=False)
    capsys.readouterr()
    await client.get(SPC, headers={**tenant.headers, "X-Request-ID": "rid-1"})
    await client.get(SPC, headers={"Authorization": f"Bearer {tenant.token[:-1]}X"})
    resp = await client.post(
        f"/admin/v1/orgs/{tenant.org_id}/tokens", json={"description": "x"}, headers=admin_headers
    )
    new_token = (await resp.json())["token"]
    out = capsys.readouterr()
    text = out.out + out.err

    for secret in (tenant.token, tenant.token[:-1] + "X", ADMIN_TOKEN, new_token, new_token[11:]):
        assert secret not in text, "a token reached the logs"

    requests = [line for line in log_lines(out.out) if line["event"] == "http_request"]
    assert len(requests) == 3
    ok = requests[0]
    assert ok["request_id"] == "rid-1"
    assert ok["method"] == "GET" and ok["route"] == SPC and ok["status"] == 200
    assert ok["org_id"] == str(tenant.org_id)
    assert isinstance(ok["duration_ms"], float)
    assert requests[1]["status"] == 401 and requests[1]["org_id"] is None
    assert requests[2]["route"] == "/admin/v1/orgs/{org_id}/tokens", (
        "route templates, not raw paths"
    )
