"""Webhook receiver for the commit-to-receipt scenario: timestamps each delivery on arrival
(wall clock, the same clock PostgreSQL and the client use on this machine) and answers 204.
Parsing waits until /dump, so receipt stays cheap.

    python bench/receiver.py PORT
GET /count -> number of deliveries; GET /dump -> [[received, subject, event time, id], ...]
"""

from __future__ import annotations

import json
import sys
import time

from aiohttp import web

records: list[tuple[float, bytes]] = []


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    records.append((time.time(), body))
    return web.Response(status=204)


async def count(request: web.Request) -> web.Response:
    return web.json_response({"count": len(records)})


async def dump(request: web.Request) -> web.Response:
    out = []
    for received, body in records:
        event = json.loads(body)
        out.append([received, event.get("subject"), event.get("time"), event.get("id")])
    return web.json_response(out)


def main() -> None:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    app.router.add_get("/dump", dump)
    loop = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        pass
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop
    )


if __name__ == "__main__":
    main()
