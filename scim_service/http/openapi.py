"""GET /openapi.json: the committed OpenAPI 3.1 document (built by `scim_service.openapi`)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
_body: bytes | None = None


async def document(request: web.Request) -> web.Response:
    """Unauthenticated, like /healthz: API consumers and gateways fetch it before any token."""
    global _body
    if _body is None:
        _body = DOCUMENT.read_bytes()  # once per process: 100 KB, the same for every caller
    return web.Response(body=_body, content_type="application/json")
