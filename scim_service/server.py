"""`scim-service serve`: run the app until SIGINT/SIGTERM, then stop in order.

Order on a signal: /readyz answers 503 at once (the lifecycle is draining), the listener
closes, in-flight requests get `shutdown_grace` seconds to finish, the app's cleanup contexts
run (background tasks, then the pool), and last the embedded PostgreSQL stops, if we started
one. Exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable

import asyncpg
import msgspec
from aiohttp import web

from scim_service.app import create_app, create_metrics_app, create_publisher_app
from scim_service.config import Settings, StartupError
from scim_service.http.connections import Watchdog, WatchedSite
from scim_service.keys import LIFECYCLE, METRICS, POOL, PUBLISHER
from scim_service.lifecycle import Lifecycle
from scim_service.logs import get_logger
from scim_service.provisioning import tenants

log = get_logger("scim_service.server")


def _announce_first_run(settings: Settings, org_name: str, org_id: str, token: str) -> None:
    # Printed plainly (not logged) on purpose: this is the one moment a person needs the token,
    # and it must never reach a log pipeline.
    print(
        "\n"
        "  scim-service is ready. Paste these into your identity provider (JumpCloud:\n"
        "  API Type 'SCIM API', SCIM Version 'SCIM 2.0'):\n\n"
        f"    SCIM Base URL:  {settings.scim_base_url}\n"
        f"    Token:          {token}\n"
        "    Header:         Authorization: Bearer <token>\n\n"
        f"  Organization '{org_name}' ({org_id}). The token is shown only this once;\n"
        "  create more with: scim-service token create <ORG_ID>\n",
        flush=True,
    )


def listen_socket(host: str, port: int, what: str, *, reuse_port: bool = False) -> socket.socket:
    """Bind the listening socket first, before any database or background task: a port in
    use is reported as what it is, and nothing has started that would need stopping.
    `reuse_port`: one of several sockets on the port (SO_REUSEPORT, supervisor.py)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server(
            (host, port), family=family, backlog=1024, reuse_port=reuse_port
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StartupError(f"cannot listen on {host}:{port} ({what}): {reason}") from exc


class Inherited(msgspec.Struct, frozen=True):
    """What a worker process of a multi-worker `serve` gets from its supervisor
    (scim_service/supervisor.py): the listening sockets (None: that role listens on none) and
    how to report that it is serving."""

    sock: socket.socket | None
    metrics_sock: socket.socket | None
    ready: Callable[[], None]


async def serve(
    settings: Settings, *, role: str = "serve", inherited: Inherited | None = None
) -> int:
    """Run `serve` (SCIM + admin APIs + publisher) or `publisher` (publisher + health only), in
    this one process; or, with `inherited`, one worker process of a supervised `serve`, on the
    sockets its supervisor bound (the supervisor migrated and started any embedded database)."""
    started, stopping, stopped = (
        ("server_started", "server_stopping", "server_stopped")
        if inherited is None
        else ("worker_started", "worker_stopping", "worker_stopped")
    )
    async with contextlib.AsyncExitStack() as stack:
        embedded = inherited is None and settings.database_url is None
        sock, metrics_sock = _sockets(settings, stack, inherited)
        if embedded:
            settings = await start_embedded(settings, stack)

        app = create_app(settings) if role == "serve" else create_publisher_app(settings)
        runner = make_runner(app, settings)
        await runner.setup()  # opens the pool, migrates, starts background tasks
        stack.push_async_callback(runner.cleanup)

        if embedded and role == "serve":
            async with app[POOL].acquire() as conn:
                await announce_first_run(settings, conn)

        if sock is not None:
            await api_site(runner, sock, settings).start()
        if metrics_sock is not None:
            await _start_metrics_site(app, metrics_sock, stack)
        log.info(
            started,
            role=role,
            url=settings.public_url,
            scim_base_url=settings.scim_base_url,
            sinks=list(settings.sinks) if role == "publisher" or settings.publisher_enabled else [],
            metrics_port=settings.metrics_port,
        )
        await _until_stopped(app[LIFECYCLE], inherited)
        # /readyz already answers 503 (draining); give load balancers a moment to notice before
        # the listener closes. Then in-flight requests get the grace period (runner.cleanup).
        log.info(
            stopping,
            drain_delay_seconds=settings.shutdown_drain_delay,
            grace_seconds=settings.shutdown_grace,
        )
        if settings.shutdown_drain_delay > 0:
            await asyncio.sleep(settings.shutdown_drain_delay)
        # The publisher winds down while in-flight requests finish (runner.cleanup, on leaving
        # this block, then awaits it), so a shutdown takes at most drain delay + grace.
        publisher = app.get(PUBLISHER)
        if publisher is not None:
            publisher.begin_stop(settings.shutdown_grace)
    log.info(stopped)
    return 0


def _sockets(
    settings: Settings, stack: contextlib.AsyncExitStack, inherited: Inherited | None
) -> tuple[socket.socket | None, socket.socket | None]:
    """The API and metrics listeners: a worker's from its supervisor, else bound here (and
    closed on leaving `stack`)."""
    if inherited is not None:
        return inherited.sock, inherited.metrics_sock
    sock = listen_socket(settings.host, settings.port, "SCIM_HOST/SCIM_PORT")
    stack.callback(sock.close)
    metrics_sock = bind_metrics_socket(settings)
    if metrics_sock is not None:
        stack.callback(metrics_sock.close)
    return sock, metrics_sock


async def _start_metrics_site(
    app: web.Application, sock: socket.socket, stack: contextlib.AsyncExitStack
) -> None:
    runner = web.AppRunner(create_metrics_app(app), handle_signals=False, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.SockSite(runner, sock).start()


async def _until_stopped(lifecycle: Lifecycle, inherited: Inherited | None) -> None:
    """Wait for SIGINT/SIGTERM (which begin the drain) and the lifecycle's stop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lifecycle.begin_drain)
    if inherited is not None:
        # After the handlers: a worker the supervisor counts as ready drains on SIGTERM;
        # one killed by it before this line had served nothing (supervisor._on_exit).
        inherited.ready()
    try:
        await lifecycle.stop_event.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            if inherited is not None:
                # A worker gets Ctrl-C from the terminal and SIGTERM from its supervisor:
                # the second must not cut its drain short (the supervisor escalates).
                signal.signal(sig, signal.SIG_IGN)


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner of the API listener, as `serve` runs it (tests start the same one): no
    signal handling of aiohttp's, no access log (the middleware logs), and a handler left to
    finish when its client hangs up (aiohttp's default; its test server cancels it instead)."""
    return web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_grace
    )


def api_site(runner: web.AppRunner, sock: socket.socket, settings: Settings) -> web.SockSite:
    """The API listener's site: its connections watched for slow clients (http/connections.py)."""
    return WatchedSite(runner, sock, Watchdog(settings, runner.app[METRICS]))


def bind_metrics_socket(settings: Settings) -> socket.socket | None:
    """The listener of SCIM_METRICS_PORT, when /metrics has a port of its own."""
    if not settings.metrics_enabled or settings.metrics_port is None:
        return None
    return listen_socket(
        settings.metrics_host or settings.host,
        settings.metrics_port,
        "SCIM_METRICS_HOST/SCIM_METRICS_PORT",
    )


async def start_embedded(settings: Settings, stack: contextlib.AsyncExitStack) -> Settings:
    """Start the embedded PostgreSQL (stopped when `stack` closes); the settings that use it."""
    from scim_service.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(settings.data_dir)
    dsn = await asyncio.to_thread(pg.start)
    stack.callback(pg.stop)
    return msgspec.structs.replace(settings, database_url=dsn)


async def announce_first_run(settings: Settings, conn: asyncpg.Connection) -> None:
    """Embedded database: create the first organization and token once, and print them."""
    first = await tenants.bootstrap_default(conn)
    if first is not None:
        org, new = first
        _announce_first_run(settings, org.name, str(org.id), new.token)
    else:
        print(f"\n  SCIM Base URL: {settings.scim_base_url}\n", flush=True)
