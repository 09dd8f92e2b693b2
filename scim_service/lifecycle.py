"""Process lifecycle state shared by the server, the health endpoints and shutdown."""

from __future__ import annotations

import asyncio


class Lifecycle:
    """`draining` turns /readyz to 503 the moment shutdown begins (before the listener closes),
    so load balancers stop routing new requests while in-flight ones finish."""

    def __init__(self) -> None:
        self.draining = False
        self.migrations_current = False
        self.stop_event = asyncio.Event()

    def begin_drain(self) -> None:
        self.draining = True
        self.stop_event.set()
