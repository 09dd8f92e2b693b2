"""The application factory: `create_app(settings)` builds and owns everything a server needs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from scim_service.activity import ActivityLog
from scim_service.auth import Authenticator
from scim_service.config import ConfigError, Settings, StartupError, describe_dsn
from scim_service.events.emitter import Emitter
from scim_service.events.publisher import Publisher
from scim_service.events.pull import Feed
from scim_service.events.sinks.factory import build_sinks
from scim_service.fairness import Gate
from scim_service.http.metrics import metrics as metrics_handler
from scim_service.http.middleware import request_middleware
from scim_service.keys import (
    ACTIVITY,
    ADMIN_DIGEST,
    AUTH,
    BASE_URL,
    EMITTER,
    FEED,
    GATE,
    GUARD,
    LIFECYCLE,
    LOOP_LAG,
    MAIN_APP,
    METRICS,
    METRICS_DIGEST,
    POOL,
    PUBLISHER,
    SETTINGS,
)
from scim_service.lifecycle import Lifecycle
from scim_service.logs import get_logger
from scim_service.metrics import LoopLagMonitor, Metrics
from scim_service.provisioning import guard
from scim_service.routes import setup_health_routes, setup_routes
from scim_service.store import migrate
from scim_service.store.db import create_pool, session_settings
from scim_service.tokens import token_digest

log = get_logger("scim_service.app")


async def open_pool(settings: Settings) -> asyncpg.Pool:
    """Connect, retrying with backoff for at most `db_connect_timeout` seconds (databases
    often start after their sidecars); then fail with the driver's error."""
    assert settings.database_url is not None
    deadline = time.monotonic() + settings.db_connect_timeout
    delay = 0.2
    while True:
        try:
            return await create_pool(
                settings.database_url,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                timeout=max(1.0, min(10.0, settings.db_connect_timeout)),
                extra=session_settings(settings, settings.db_request_lock_timeout),
            )
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            log.warning("database_unreachable_retrying", error=type(exc).__name__, retry_in=delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


async def connect_or_fail(settings: Settings) -> asyncpg.Pool:
    """open_pool, or a StartupError naming where the database was looked for."""
    assert settings.database_url is not None
    try:
        return await open_pool(settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        where = describe_dsn(settings.database_url)
        raise StartupError(
            f"cannot reach the database at {where} within {settings.db_connect_timeout:g}s "
            f"(SCIM_DB_CONNECT_TIMEOUT): {type(exc).__name__}: {exc}"
        ) from exc


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await connect_or_fail(settings)
    try:
        if settings.migrate_on_start:
            async with pool.acquire() as conn:
                await migrate.migrate(conn)
            app[LIFECYCLE].migrations_current = True
        app[POOL] = pool
        app[GATE] = Gate(pool, settings, app[METRICS])
        app[METRICS].watch_pool(pool)
        yield
    finally:
        app[METRICS].watch_pool(None)
        await pool.close()


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    """The event-loop lag sampler (`scim_event_loop_lag_seconds`), owned by the app.

    Also `gc.freeze()`: everything alive at start (modules, code, the app) moves to the
    permanent generation, so the full collections a big request triggers (allocation in any
    thread runs them, holding the GIL) traverse only what was made since; measured, they
    took 50-90 ms each during a 50,000-member GET before, and held up every request."""
    gc.freeze()
    monitor = LoopLagMonitor(app[METRICS])
    app[LOOP_LAG] = monitor
    monitor.start()
    try:
        yield
    finally:
        await monitor.stop()


async def _authenticator(app: web.Application) -> AsyncIterator[None]:
    """SCIM token lookups (cached, with a LISTEN connection for invalidations): only where the
    SCIM API is served. Without it, `/scim` paths answer 404 (the publisher's listener)."""
    settings = app[SETTINGS]
    assert settings.database_url is not None
    auth = Authenticator(
        app[POOL], settings.database_url, settings.auth_cache_seconds, acquire=app[GATE].connection
    )
    app[AUTH] = auth
    auth.start()
    try:
        yield
    finally:
        await auth.stop()


async def _activity(app: web.Application) -> AsyncIterator[None]:
    """The activity log's writer task (activity.py), owned by the app: it drains the queue the
    request path fills; at shutdown it writes what is left (bounded by the shutdown grace)."""
    settings = app[SETTINGS]
    activity = ActivityLog(settings)
    app[ACTIVITY] = activity
    pool = app[POOL]

    def acquire() -> Any:
        return pool.acquire(timeout=settings.db_acquire_timeout)

    task = asyncio.create_task(activity.run(acquire), name="activity-writer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await asyncio.wait_for(activity.flush(acquire), timeout=settings.shutdown_grace)
        except TimeoutError:
            log.warning("activity_flush_timeout")


async def _feed(app: web.Application) -> AsyncIterator[None]:
    """The LISTEN connection that wakes long-polling pull requests (`GET /admin/v1/events
    ?wait=`); stopping it answers every waiting request at once."""
    settings = app[SETTINGS]
    assert settings.database_url is not None
    feed = Feed(
        settings.database_url, connect_timeout=max(1.0, min(10.0, settings.db_connect_timeout))
    )
    app[FEED] = feed
    feed.start()
    try:
        yield
    finally:
        await feed.stop()


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    """The event publisher, owned by the app: started after the pool (and migrations), stopped
    before it, finishing or abandoning its batch within the shutdown grace."""
    settings = app[SETTINGS]
    publisher = Publisher(settings, build_sinks(settings), metrics=app[METRICS])
    app[PUBLISHER] = publisher
    publisher.start()
    try:
        yield
    finally:
        await publisher.stop(deadline=settings.shutdown_grace)


def _base_app(settings: Settings) -> web.Application:
    if settings.database_url is None:
        raise ConfigError(["create_app needs a database_url (the CLI starts the embedded one)"])
    app = web.Application(
        middlewares=[request_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[BASE_URL] = settings.scim_base_url
    app[LIFECYCLE] = Lifecycle()
    app[EMITTER] = Emitter(settings.event_source, settings.sinks)
    app[GUARD] = guard.policy_of(settings)
    app[METRICS] = Metrics(settings.sinks)
    if settings.metrics_token:
        app[METRICS_DIGEST] = token_digest(settings.metrics_token)
    app.cleanup_ctx.append(_loop_lag)
    app.cleanup_ctx.append(_database)
    return app


def create_app(settings: Settings) -> web.Application:
    """`scim-service serve`: the SCIM and admin APIs, health, and (unless switched off) the
    event publisher."""
    app = _base_app(settings)
    if settings.admin_token:
        app[ADMIN_DIGEST] = token_digest(settings.admin_token)
    app.cleanup_ctx.append(_authenticator)
    if settings.activity_log != "off":
        app.cleanup_ctx.append(_activity)
    app.cleanup_ctx.append(_feed)
    if settings.publisher_enabled:
        app.cleanup_ctx.append(_publisher)
    setup_routes(app, metrics=settings.metrics_enabled and settings.metrics_port is None)
    return app


def create_publisher_app(settings: Settings) -> web.Application:
    """`scim-service publisher`: only the publisher, plus health endpoints for probes."""
    app = _base_app(settings)
    app.cleanup_ctx.append(_publisher)
    setup_health_routes(app, metrics=settings.metrics_enabled and settings.metrics_port is None)
    return app


def create_metrics_app(main: web.Application) -> web.Application:
    """A listener of its own for `/metrics` (SCIM_METRICS_PORT), reporting on `main`."""
    app = web.Application(middlewares=[request_middleware])
    app[SETTINGS] = main[SETTINGS]
    app[MAIN_APP] = main
    app.router.add_get("/metrics", metrics_handler)
    return app
