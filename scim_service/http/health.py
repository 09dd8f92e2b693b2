"""Liveness and readiness: unauthenticated, outside /scim, cheap."""

from __future__ import annotations

import asyncio

from aiohttp import web

from scim_service.keys import LIFECYCLE, METRICS, POOL, PUBLISHER, SETTINGS
from scim_service.logs import get_logger
from scim_service.provisioning import readiness

READY_TIMEOUT = 2.0

log = get_logger("scim_service.health")


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers; and, when this process runs the event
    publisher, its claim loops go round (a publisher silent for SCIM_PUBLISHER_STALL_SECONDS
    is hung: 503 `publisher_stalled`, so a liveness probe restarts the process)."""
    if PUBLISHER in request.app:
        silent = request.app[METRICS].publisher_silence()
        if silent > request.app[SETTINGS].publisher_stall_seconds:
            return web.json_response(
                {"status": "publisher_stalled", "silent_seconds": round(silent, 1)}, status=503
            )
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: not draining, database reachable, migrations current."""
    lifecycle = request.app[LIFECYCLE]
    if lifecycle.draining:
        return web.json_response({"status": "draining"}, status=503)
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with request.app[POOL].acquire() as conn:
                missing = await readiness.pending_migrations(conn, lifecycle)
                can_write = await readiness.writable(conn)
    except Exception as exc:  # any failure of the probe means "not ready", never a 500
        log.warning("readiness_check_failed", error=type(exc).__name__)
        return web.json_response({"status": "database_unavailable"}, status=503)
    if not can_write:  # a standby or default_transaction_read_only: writes would be 503s
        return web.json_response({"status": "read_only"}, status=503)
    if missing:
        return web.json_response({"status": "migrations_pending", "pending": missing}, status=503)
    return web.json_response({"status": "ready"})
