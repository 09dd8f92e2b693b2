"""GET /metrics: Prometheus text format, optionally behind SCIM_METRICS_TOKEN."""

from __future__ import annotations

from aiohttp import web

from scim_service import errors
from scim_service.keys import GATE, MAIN_APP, METRICS, METRICS_DIGEST, POOL, SETTINGS
from scim_service.metrics import CONTENT_TYPE
from scim_service.tokens import matches_digest


async def metrics(request: web.Request) -> web.Response:
    app = request.app.get(MAIN_APP) or request.app
    digest = app.get(METRICS_DIGEST)
    if digest is not None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not matches_digest(token.strip(), digest):
            raise errors.Unauthorized(
                "Send 'Authorization: Bearer <SCIM_METRICS_TOKEN>'", reason="metrics"
            )
    gate = app.get(GATE)
    body = await app[METRICS].render(
        app.get(POOL), app[SETTINGS].sinks, gate.connection if gate is not None else None
    )
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
