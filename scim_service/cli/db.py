"""The database of a one-shot command, and the audit trail of the commands that change
something (issue 22): each writes one entry, as the admin API does, when its connection closes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import getpass
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from scim_service import errors
from scim_service.config import Settings
from scim_service.store import migrate as migrations
from scim_service.store.db import connect

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, migrate: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to DATABASE_URL, or to the embedded server (started if needed); migrated
    first unless `migrate` is false."""
    async with database_and_url(settings, migrate=migrate) as (conn, _dsn):
        yield conn


@contextlib.asynccontextmanager
async def database_and_url(
    settings: Settings, *, migrate: bool = True
) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """`database()`, and the DSN it connected to (for a command that holds a second,
    LISTENing connection)."""
    async with contextlib.AsyncExitStack() as stack:
        dsn = settings.database_url
        if dsn is None:
            from scim_service.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(settings.data_dir)
            dsn = await asyncio.to_thread(pg.start)
            stack.callback(pg.stop)
        conn = await connect(dsn, timeout=settings.db_connect_timeout)
        stack.push_async_callback(conn.close)
        if migrate and await migrations.pending(conn):
            await migrations.migrate(conn)
        intent = AUDIT.get()
        if intent is None:
            yield conn, dsn
            return
        try:
            yield conn, dsn
        except Exception as exc:
            detail = exc.detail if isinstance(exc, errors.ScimError) else type(exc).__name__
            with contextlib.suppress(Exception):  # the command's own error is what to report
                await _audit(conn, intent, ok=False, detail=detail)
            raise
        await _audit(conn, intent, ok=True)


class Intent:
    """What a changing command is about to do, recorded by its database connection at the end."""

    __slots__ = ("action", "org_id", "target")

    def __init__(self, action: str, org_id: uuid.UUID | None, target: str | None) -> None:
        self.action, self.org_id, self.target = action, org_id, target


AUDIT: contextvars.ContextVar[Intent | None] = contextvars.ContextVar("audit", default=None)


def intent_of(args: argparse.Namespace) -> Intent | None:
    """The audit entry a command will write: its parser's `audit` default (the admin API's
    action name, or a function of the arguments giving it), None for a command that reads."""
    audit = getattr(args, "audit", None)
    action = audit(args) if callable(audit) else audit
    if action is None:
        return None
    org = getattr(args, "org_id", None) or getattr(args, "org", None)
    if isinstance(org, list):
        org = org[0] if len(org) == 1 else None
    names = ("token_id", "credential_id", "endpoint_id", "user_id", "sink")
    target = " ".join(f"{n}={getattr(args, n)}" for n in names if getattr(args, n, None))
    return Intent(action, org, target or None)


def created(object_id: uuid.UUID, org_id: uuid.UUID | None = None) -> None:
    """A creating command names what it created, for its audit entry."""
    intent = AUDIT.get()
    if intent is not None:
        intent.target = f"id={object_id}"
        intent.org_id = intent.org_id or org_id


async def _audit(conn: asyncpg.Connection, intent: Intent, *, ok: bool, detail: str = "") -> None:
    from scim_service.provisioning import audit
    from scim_service.provisioning.credentials import CLI_PREFIX, AdminPrincipal

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment
        user = "unknown"
    who = AdminPrincipal(scope="operator", prefix=f"{CLI_PREFIX}:{user}"[:100])
    await audit.record(
        conn,
        who,
        intent.action,
        org_id=intent.org_id,
        target=intent.target,
        status=0 if ok else 1,
        ok=ok,
        detail=detail or None,
    )
