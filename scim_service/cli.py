"""The `scim-service` console script: every command (`--help` on each says more; README, "CLI").

    scim-service serve                      HTTP server (and the event publisher)
    scim-service publisher                  only the event publisher (+ /healthz, /readyz, /metrics)
    scim-service migrate [--to VERSION]     apply pending migrations (up to VERSION) and exit
    scim-service config check               the effective configuration, secrets masked
    scim-service org create NAME | list | show ORG_ID | scim enable|disable ORG_ID
    scim-service org status ORG_ID          directory status: SCIM, tokens, IdPs, errors, events
    scim-service org guard show|set|release|reject|discard ORG_ID   the deprovisioning guard
    scim-service activity ORG_ID [--errors] [--follow]   the SCIM activity log
    scim-service roles ORG_ID [--map ... | --default ROLE | --source ... | --file F | --clear]
    scim-service token create ORG_ID | list ORG_ID | revoke TOKEN_ID
    scim-service credential create --scope SCOPE | list | revoke CREDENTIAL_ID
    scim-service endpoint create --url URL | list | pause | resume | delete ENDPOINT_ID
    scim-service audit [--org ORG_ID]       the admin audit trail
    scim-service user setup-complete ORG_ID USER_ID
    scim-service events stats | dead-letters | retry | replay | tail | signing-key | keygen
    scim-service events orphans move SINK --to SINK | orphans discard SINK

Every command that prints data accepts --json. Exit codes: 0 success, 1 the operation failed
(e.g. unknown organization), 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import getpass
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from scim_service import errors
from scim_service.config import ConfigError, Settings, StartupError, load_settings
from scim_service.logs import configure_logging, get_logger
from scim_service.provisioning import tenants
from scim_service.provisioning.tenants import Org, TokenInfo
from scim_service.redact import mask_text
from scim_service.store import migrate as migrations
from scim_service.store.db import connect
from scim_service.store.outbox import CHANNEL as OUTBOX_CHANNEL

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


# --- output ---------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if value.utcoffset() is not None else str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def print_org(org: Org) -> None:
    print_table(
        [[org.id, org.name, org.scim_enabled, org.active_tokens, org.created_at]],
        ["id", "name", "scim", "active tokens", "created"],
    )


def print_tokens(tokens: Sequence[TokenInfo]) -> None:
    print_table(
        [
            [
                t.id,
                t.display_prefix + "…",
                t.state,
                t.description,
                t.created_at,
                t.expires_at,
                t.last_used_at,
            ]
            for t in tokens
        ],
        ["id", "prefix", "state", "description", "created", "expires", "last used"],
    )


# --- database access for one-shot commands ----------------------------------------------------


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
        intent = _AUDIT.get()
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


# --- the audit trail of the commands that change something (issue 22) -------------------------


class _Intent:
    """What a changing command is about to do, recorded by its database connection at the end."""

    __slots__ = ("action", "org_id", "target")

    def __init__(self, action: str, org_id: uuid.UUID | None, target: str | None) -> None:
        self.action, self.org_id, self.target = action, org_id, target


_AUDIT: contextvars.ContextVar[_Intent | None] = contextvars.ContextVar("audit", default=None)


def _audited(args: argparse.Namespace) -> _Intent | None:
    """The audit action of a command (the admin API's names), or None for one that reads."""
    func, sub = args.func, getattr(args, "action", None)
    if func is cmd_org_scim:
        action: str | None = f"org.scim_{sub}"
    elif func is cmd_roles:
        action = "roles.set" if _role_config(args) is not None else None
    elif func is cmd_org_guard:
        action = {"set": "guard.configure", "release": "guard.release"}.get(sub or "")
        action = "guard.discard" if sub == "discard" else action
    elif func is cmd_events_orphans:
        action = f"events.orphans_{args.orphans_cmd}"
    elif func is cmd_credential:
        action = {"create": "credential.create", "revoke": "credential.revoke"}.get(
            args.credential_cmd
        )
    elif func is cmd_endpoint:
        action = {
            "create": "endpoint.create",
            "pause": "endpoint.change",
            "resume": "endpoint.change",
            "delete": "endpoint.delete",
        }.get(args.endpoint_cmd)
    else:
        action = {
            cmd_org_create: "org.create",
            cmd_token_create: "token.create",
            cmd_token_revoke: "token.revoke",
            cmd_user_setup_complete: "user.setup_complete",
            cmd_events_retry: "events.retry",
            cmd_events_replay: "events.replay",
        }.get(func)
    if action is None:
        return None
    org = getattr(args, "org_id", None) or getattr(args, "org", None)
    if isinstance(org, list):
        org = org[0] if len(org) == 1 else None
    names = ("token_id", "credential_id", "endpoint_id", "user_id", "sink")
    target = " ".join(f"{n}={getattr(args, n)}" for n in names if getattr(args, n, None))
    return _Intent(action, org, target or None)


def _created(object_id: uuid.UUID, org_id: uuid.UUID | None = None) -> None:
    """A creating command names what it created, for its audit entry."""
    intent = _AUDIT.get()
    if intent is not None:
        intent.target = f"id={object_id}"
        intent.org_id = intent.org_id or org_id


async def _audit(conn: asyncpg.Connection, intent: _Intent, *, ok: bool, detail: str = "") -> None:
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


# --- commands ---------------------------------------------------------------------------------


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.server import serve
    from scim_service.supervisor import supervise

    if settings.worker_count > 1:  # a supervisor of worker processes (supervisor.py)
        return await supervise(settings)
    return await serve(settings)


async def cmd_publisher(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.server import serve

    return await serve(settings, role="publisher")


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, migrate=False) as conn:
        try:
            applied = await migrations.migrate(conn, to=args.to)
        except (ValueError, migrations.MigrationLockTimeout) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print_json({"applied": applied})
    elif applied:
        print("applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        print("database is up to date")
    return 0


async def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.create_org(
            conn, args.name, org_id=args.id, scim_enabled=not args.scim_disabled
        )
        _created(org.id, org.id)
    print_json(org) if args.json else print_org(org)
    return 0


async def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        orgs = await tenants.list_orgs(conn)
    if args.json:
        print_json(orgs)
    else:
        print_table(
            [[o.id, o.name, o.scim_enabled, o.active_tokens, o.created_at] for o in orgs],
            ["id", "name", "scim", "active tokens", "created"],
        )
    return 0


async def cmd_org_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.get_org(conn, args.org_id)
    print_json(org) if args.json else print_org(org)
    return 0


async def cmd_org_scim(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.set_scim_enabled(conn, args.org_id, args.action == "enable")
    print_json(org) if args.json else print_org(org)
    return 0


async def cmd_org_status(args: argparse.Namespace, settings: Settings) -> int:
    """The directory status: what to check when an IdP's "Test Connection" fails."""
    from scim_service.provisioning import status

    async with database(settings) as conn:
        s = await status.org_status(conn, args.org_id, settings)
    if args.json:
        print_json(s)
        return 0
    print(f"organization: {s.name} ({s.org_id})")
    print(f"SCIM:         {'on' if s.scim_enabled else 'OFF'}")
    print("tokens:")
    print_table(
        [
            (
                t.info.display_prefix,
                t.info.state,
                t.info.expires_at,
                t.expires_soon,
                t.info.last_used_at,
            )
            for t in s.tokens
        ],
        ["prefix", "state", "expires", "expires soon", "last used"],
    )
    print("last successful request per IdP:")
    print_table(
        [(x.idp, x.at, x.method, x.route, x.status) for x in s.last_success],
        ["idp", "at", "method", "route", "status"],
    )
    print(
        f"last hour:    {s.last_hour.requests} requests, {s.last_hour.errors} errors "
        f"({s.last_hour.rate:.1%})"
    )
    print("events:")
    print_table(
        [
            (x.sink, x.pending, x.held, x.dead, round(x.oldest_pending_age, 1), x.last_delivery_at)
            for x in s.sinks
        ],
        ["sink", "pending", "held", "dead", "oldest (s)", "last delivery"],
    )
    state = "TRIPPED" if s.guard.tripped else ("armed" if s.guard.enabled else "off")
    print(f"guard:        {state}, {s.guard.held} held")
    sk = s.skipped_members
    if sk is not None and sk.total:
        print(f"skipped members (last {status.SKIPPED_HOURS} h, no users here): {sk.total}")
        for uid in sk.ids:
            print(f"  {uid}")
        if sk.total > len(sk.ids):
            print(f"  ... and {sk.total - len(sk.ids)} more")
    for w in s.warnings:
        print(f"warning: {w}")
    return 0


def _role_config(args: argparse.Namespace) -> Any:
    """The RoleConfig a `roles ORG_ID` command sets, or None when it only shows."""
    from scim_service.provisioning import roles

    if args.file is not None:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        try:
            return msgspec.json.decode(raw, type=roles.RoleConfig)
        except msgspec.ValidationError as exc:
            raise errors.InvalidValue(f"--file: {exc}") from None
        except msgspec.DecodeError:
            raise errors.InvalidValue("--file: not a JSON object") from None
    if args.map is None and args.default is None and args.source is None and not args.clear:
        return None
    mappings = []
    for spec in args.map or []:
        ref, sep, rest = spec.partition("=")
        value, _, tail = rest.rpartition(":")
        role, priority = tail, "0"
        if value and ":" in value:  # VALUE:ROLE:PRIORITY
            value, _, role = value.rpartition(":")
            priority = tail
        kind = {"id": "id_", "displayname": "displayName", "externalid": "externalId"}.get(
            ref.lower()
        )
        if not sep or kind is None or not value or not priority.lstrip("-").isdigit():
            raise errors.InvalidValue(
                f"--map {spec!r}: expected displayName|externalId|id=GROUP:ROLE[:PRIORITY]"
            )
        mappings.append(
            roles.Mapping(group=roles.GroupRef(**{kind: value}), role=role, priority=int(priority))
        )
    return roles.RoleConfig(
        default_role=args.default or None, mappings=mappings, source=args.source or "groups"
    )


async def cmd_roles(args: argparse.Namespace, settings: Settings) -> int:
    """Role mappings of one organization: show them, or replace them."""
    from scim_service.events.emitter import Emitter
    from scim_service.provisioning import guard, roles
    from scim_service.provisioning.scope import Scope

    config = _role_config(args)
    async with database(settings) as conn:
        if config is None:
            result = await roles.get_roles(conn, args.org_id)
        else:
            emitter = Emitter(settings.event_source, settings.sinks)
            scope = Scope(args.org_id, emitter, guard.policy_of(settings))
            result = await roles.set_roles(conn, scope, config)
    if args.json:
        print_json(result)
        return 0
    print(f"source:       {result.source}")
    print(f"default role: {result.default_role if result.default_role is not None else '(none)'}")
    print_table(
        [
            (
                m.priority,
                next(f"{k}={v}" for k, v in msgspec.structs.asdict(m.group).items() if v),
                m.role,
                f"{m.matched.displayName} ({m.matched.member_count} members)"
                if m.matched
                else "(no such group yet)",
            )
            for m in sorted(result.mappings, key=lambda m: -m.priority)
        ],
        ["priority", "group", "role", "matches"],
    )
    return 0


async def cmd_org_guard(args: argparse.Namespace, settings: Settings) -> int:
    """The mass-deprovisioning guard of one organization: show, set, release, reject."""
    from scim_service.events.emitter import Emitter
    from scim_service.provisioning import guard

    defaults = guard.policy_of(settings)
    emitter = Emitter(settings.event_source, settings.sinks)
    async with database(settings) as conn:
        if args.action == "show":
            result: Any = await guard.state(conn, args.org_id, defaults)
        elif args.action == "set":
            enabled = {"on": True, "off": False}.get(args.enabled) if args.enabled else None
            new = guard.GuardSettings(
                enabled=enabled,
                percent=args.percent,
                min_users=args.min_users,
                window_minutes=args.window_minutes,
                reset=args.reset,
            )
            result = await guard.configure(conn, args.org_id, new, defaults)
        elif args.action == "release":
            result = await guard.release(conn, args.org_id, emitter)
        else:  # reject (or its former name, discard)
            result = await guard.reject(conn, args.org_id, emitter)
    if args.json:
        print_json(result)
    elif isinstance(result, guard.GuardOutcome):
        what = "delivered next, in order" if result.action == "released" else "dropped for good"
        print(
            f"{result.action} {result.resources} held user(s)/group(s), {result.events} event(s) "
            f"{what}; the guard is armed again"
        )
    else:
        state = "TRIPPED since " + _fmt(result.tripped_at) if result.tripped else "armed"
        if not result.enabled:
            state = "off"
        print(f"guard:     {state}")
        print(
            f"threshold: {result.min_users} users and {result.percent:g} % of active users "
            f"within {result.window_minutes:g} minutes"
        )
        print(f"held:      {result.held} event(s) of {result.held_resources} user(s)/group(s)")
        if result.last_decision is not None:
            d = result.last_decision
            print(f"last:      {d.action} {_fmt(d.at)}, {d.resources} resource(s)")
        if result.held_events:
            print_table(
                [
                    (h.time, h.type, h.subject, h.user_name or h.display_name or "", h.reason or "")
                    for h in result.held_events
                ],
                ["time", "type", "subject", "name", "reason"],
            )
    return 0


async def cmd_activity(args: argparse.Namespace, settings: Settings) -> int:
    """The organization's SCIM activity log; `--follow` polls for new entries each second."""
    from scim_service import activity
    from scim_service.provisioning import status

    def show(found: Sequence[activity.Entry]) -> None:
        for e in found:
            if args.json:
                sys.stdout.write(msgspec.json.encode(e).decode() + "\n")
            else:
                print(f"{_fmt(e.at)}  {activity.describe(e)}  [{e.request_id}]")
        sys.stdout.flush()

    async with database(settings) as conn:
        found = await status.activity(conn, args.org_id, errors_only=args.errors, limit=args.limit)
        if args.json and not args.follow:
            print_json(found)
            return 0
        show(found)
        last = found[-1].id if found else 0
        deadline = asyncio.get_running_loop().time() + args.for_seconds
        while args.follow and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1.0)
            found = await status.activity(
                conn, args.org_id, errors_only=args.errors, after=last, limit=1000
            )
            show(found)
            last = found[-1].id if found else last
    return 0


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        new = await tenants.create_token(
            conn, args.org_id, description=args.description, ttl_days=args.ttl_days
        )
        _created(new.info.id)
    if args.json:
        print_json({"token": new.token, "scim_base_url": settings.scim_base_url, "info": new.info})
    else:
        print(f"SCIM Base URL: {settings.scim_base_url}")
        print(f"Token:         {new.token}")
        print(f"Token id:      {new.info.id}")
        if new.info.expires_at:
            print(f"Expires:       {_fmt(new.info.expires_at)}")
        print("The token is shown only this once; store it in your identity provider now.")
    return 0


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        tokens = await tenants.list_tokens(conn, args.org_id)
    print_json(tokens) if args.json else print_tokens(tokens)
    return 0


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        info = await tenants.revoke_token(conn, args.token_id)
    print_json(info) if args.json else print_tokens([info])
    return 0


async def cmd_endpoint(args: argparse.Namespace, settings: Settings) -> int:
    """Webhook endpoints (issue 26): create (its secret printed once), list, pause, resume,
    delete. JSON out, as the admin API answers."""
    from scim_service.provisioning import endpoints

    async with database(settings) as conn:
        cmd = args.endpoint_cmd
        if cmd == "create":
            new = await endpoints.create(
                conn,
                settings,
                url=args.url,
                description=args.description,
                event_types=args.event_type,
                org_ids=args.org,
                start=args.start,
            )
            _created(new.endpoint.id)
            print_json(new)
            print(
                "The secret is shown only this once; give it to the receiver now.", file=sys.stderr
            )
            return 0
        if cmd == "list":
            print_json(await endpoints.list_all(conn))
            return 0
        if cmd == "delete":
            await endpoints.delete(conn, args.endpoint_id)
            print_json({"deleted": args.endpoint_id})
            return 0
        change = endpoints.ChangeEndpoint(paused=cmd == "pause")
        print_json(await endpoints.change(conn, settings, args.endpoint_id, change))
    return 0


async def cmd_credential(args: argparse.Namespace, settings: Settings) -> int:
    """Scoped admin credentials (issue 22): create (printed once), list, revoke."""
    from scim_service.provisioning import credentials

    async with database(settings) as conn:
        if args.credential_cmd == "create":
            new = await credentials.create(
                conn,
                args.scope,
                org_ids=args.org,
                event_types=args.event_type,
                description=args.description,
                ttl_days=args.ttl_days,
            )
            _created(new.info.id)
            if args.json:
                print_json({"token": new.token, "info": new.info})
            else:
                print(f"Credential:    {new.token}")
                print(f"Credential id: {new.info.id}")
                print(f"Scope:         {new.info.scope} {' '.join(map(str, new.info.org_ids))}")
                if new.info.expires_at:
                    print(f"Expires:       {_fmt(new.info.expires_at)}")
                print("The credential is shown only this once; store it in the caller now.")
            return 0
        if args.credential_cmd == "list":
            found = await credentials.list_all(conn)
        else:
            found = [await credentials.revoke(conn, args.credential_id)]
    if args.json:
        print_json(found if args.credential_cmd == "list" else found[0])
        return 0
    print_table(
        [
            [
                c.id,
                c.display_prefix + "…",
                c.scope,
                " ".join(map(str, c.org_ids)) or "-",
                ",".join(c.event_types) if c.event_types else "-",
                c.state,
                c.description,
                c.expires_at,
                c.last_used_at,
            ]
            for c in found
        ],
        ["id", "prefix", "scope", "orgs", "types", "state", "description", "expires", "last used"],
    )
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """The admin audit trail, oldest first: the newest `--limit` entries."""
    from scim_service.provisioning import audit

    async with database(settings) as conn:
        found = await audit.entries(conn, org_id=args.org, limit=args.limit)
    if args.json:
        print_json(found)
        return 0
    print_table(
        [
            [e.at, e.actor, e.action, e.org_id, e.target, e.outcome, e.status, e.request_id]
            for e in found
        ],
        ["at", "actor", "action", "org", "target", "outcome", "status", "request id"],
    )
    return 0


async def cmd_user_setup_complete(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.events.emitter import Emitter
    from scim_service.provisioning import users
    from scim_service.provisioning.scope import Scope

    async with database(settings) as conn:
        await tenants.get_org(conn, args.org_id)
        emitter = Emitter(settings.event_source, settings.sinks)
        user = await users.complete_setup(conn, Scope(args.org_id, emitter), args.user_id)
    result = {
        "id": user.id,
        "userName": user.attrs.get("userName"),
        "setupState": user.setup_state,
        "setupCompletedAt": user.setup_completed_at,
    }
    if args.json:
        print_json(result)
    else:
        print_table([list(result.values())], ["id", "user name", "setup", "completed"])
    return 0


async def cmd_events_stats(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    async with database(settings) as conn:
        stats = await outbox.stats(conn, settings)
    if args.json:
        print_json(stats)
    else:
        print_table(
            [
                [
                    s.sink,
                    s.pending,
                    s.leased,
                    f"{s.oldest_age:.1f}s",
                    s.dead,
                    "yes" if s.configured else "NO (see: events orphans)",
                ]
                for s in stats
            ],
            ["sink", "pending", "in flight", "oldest pending", "dead-lettered", "configured"],
        )
    return 0


async def cmd_events_orphans(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    async with database(settings) as conn:
        if args.orphans_cmd == "discard":
            count = await outbox.discard_orphans(conn, settings, args.sink)
            result: dict[str, Any] = {"sink": args.sink, "discarded": count}
        else:
            count = await outbox.move_orphans(conn, settings, args.sink, args.to)
            result = {"sink": args.sink, "to": args.to, "moved": count}
    if args.json:
        print_json(result)
    elif args.orphans_cmd == "discard":
        print(f"discarded {count} event(s) queued for {args.sink!r}")
    else:
        print(f"handed {count} event(s) queued for {args.sink!r} to {args.to!r}")
    return 0


async def cmd_events_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    async with database(settings) as conn:
        found = await outbox.dead_letters(conn, settings, args.sink, args.limit)
    if args.json:
        print_json(found)
    else:
        print_table(
            [
                [
                    d.id,
                    d.sink,
                    d.type,
                    d.subject,
                    d.resource_version,
                    d.attempts,
                    d.last_error,
                    d.dead_at,
                ]
                for d in found
            ],
            [
                "event id",
                "sink",
                "type",
                "subject",
                "version",
                "attempts",
                "last error",
                "dead since",
            ],
        )
    return 0


async def cmd_events_retry(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    async with database(settings) as conn:
        ids = await outbox.retry(conn, settings, args.sink, args.event_ids or None)
    if args.json:
        print_json({"retried": ids})
    else:
        print(f"{len(ids)} dead-lettered event(s) queued for delivery again")
    return 0


async def cmd_events_replay(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    async with database(settings) as conn:
        queued = await outbox.replay(
            conn,
            settings,
            since=args.since,
            from_event=args.from_event,
            sinks=args.sink or None,
            org_id=args.org,
        )
    if args.json:
        print_json({"queued": queued})
    else:
        print(f"{queued} delivery(ies) queued (events keep their original ids)")
    return 0


async def cmd_events_tail(args: argparse.Namespace, settings: Settings) -> int:
    """Follow the pull API's order live, one CloudEvent JSON per line (woken by the outbox
    NOTIFY, polling every 2 s as a fallback); `--no-follow` stops once caught up."""
    import time

    from scim_service.events import pull as events_pull
    from scim_service.store.listen import listen

    after = events_pull.decode_cursor(args.after) if args.after else None
    from scim_service.events.envelope import EVENT_TYPES

    types = [t for v in args.types or [] for t in v.split(",") if t] or None
    unknown = sorted(set(types or ()) - set(EVENT_TYPES))
    if unknown:
        raise ConfigError(
            [f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"]
        )
    woken = asyncio.Event()
    # --no-follow: events already committed but held back by an older open transaction are
    # waited for, at most this long.
    settle = time.monotonic() + 5.0
    async with database_and_url(settings) as (conn, dsn):
        # The shared LISTEN helper: it reconnects by itself, and every (re)connection wakes the
        # loop too (a NOTIFY sent while nobody listened is not lost: the read catches up).
        listener = asyncio.create_task(
            listen(
                dsn,
                OUTBOX_CHANNEL,
                woken.set,
                lambda up: woken.set() if up else None,
                connect_timeout=settings.db_connect_timeout,
            ),
            name="tail:listen",
        )
        try:
            while True:  # until interrupted (or caught up with --no-follow)
                woken.clear()
                page = await events_pull.read(conn, after, 500, org_id=args.org, types=types)
                for payload in page.payloads:
                    sys.stdout.write(payload.decode() + "\n")
                sys.stdout.flush()
                after = page.next
                if page.full:
                    continue
                if not args.follow and not (page.held_back and time.monotonic() < settle):
                    print(f"next cursor: {events_pull.encode_cursor(after)}", file=sys.stderr)
                    return 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), timeout=0.05 if page.held_back else 2.0)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def cmd_events_signing_key(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.provisioning import outbox

    key = outbox.public_key(settings)
    if args.json:
        print_json({"algorithm": "ed25519", "public_key": key})
    else:
        print(key)
    return 0


async def cmd_events_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.signing import generate_secret, generate_signing_key

    secret = generate_secret()
    private, public = generate_signing_key()
    result = {"webhook_secret": secret, "signing_key": private, "public_key": public}
    if args.json:
        print_json(result)
    else:
        print(f"SCIM_WEBHOOK_SECRET={secret}")
        print(f"SCIM_WEBHOOK_SIGNING_KEY={private}")
        print(f"# public key for receivers (v1a signatures): {public}")
    return 0


async def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.config import effective

    values = effective(settings)
    if args.json:
        print_json(values)
    else:
        width = max(len(k) for k in values)
        for key, value in values.items():
            print(f"{key.ljust(width)}  {value if value is not None else '-'}")
        print("\nconfiguration is valid")
    return 0


# --- parser -----------------------------------------------------------------------------------


def _uuid_arg(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def _time_arg(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone (e.g. a trailing Z)")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(
        prog="scim-service",
        description="SCIM 2.0 provisioning service (configuration: environment)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("serve", help="run the HTTP server (and the event publisher)").set_defaults(
        func=cmd_serve
    )
    sub.add_parser(
        "publisher", help="run only the event publisher (with /healthz and /readyz)"
    ).set_defaults(func=cmd_publisher)
    p = sub.add_parser("migrate", parents=[json_flag], help="apply pending migrations and exit")
    p.add_argument(
        "--to",
        type=int,
        metavar="VERSION",
        help="apply pending migrations up to this version only (a staged roll-out)",
    )
    p.set_defaults(func=cmd_migrate)

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_cmd", required=True)
    p = org.add_parser("create", parents=[json_flag], help="create an organization")
    p.add_argument("name")
    p.add_argument("--id", type=_uuid_arg, help="use this id (e.g. the platform's own org id)")
    p.add_argument("--scim-disabled", action="store_true", help="create with SCIM switched off")
    p.set_defaults(func=cmd_org_create)
    org.add_parser("list", parents=[json_flag], help="list organizations").set_defaults(
        func=cmd_org_list
    )
    p = org.add_parser("show", parents=[json_flag], help="show one organization")
    p.add_argument("org_id", type=_uuid_arg)
    p.set_defaults(func=cmd_org_show)
    scim = org.add_parser("scim", help="switch SCIM provisioning on or off").add_subparsers(
        dest="action", required=True
    )
    for action in ("enable", "disable"):
        p = scim.add_parser(action, parents=[json_flag], help=f"{action} SCIM for an organization")
        p.add_argument("org_id", type=_uuid_arg)
        p.set_defaults(func=cmd_org_scim)

    p = org.add_parser(
        "status", parents=[json_flag], help="directory status: tokens, IdPs, errors, events, guard"
    )
    p.add_argument("org_id", type=_uuid_arg)
    p.set_defaults(func=cmd_org_status)
    grd = org.add_parser(
        "guard", help="the mass-deprovisioning guard (held access-reducing changes)"
    ).add_subparsers(dest="action", required=True)
    for action, text in (
        ("show", "its state, threshold and held events"),
        ("set", "override the threshold for this organization"),
        ("release", "deliver the held changes (in order) and re-arm"),
        ("reject", "restore the held users and groups, drop their held events, re-arm"),
        ("discard", "the former name of reject"),
    ):
        p = grd.add_parser(action, parents=[json_flag], help=text)
        p.add_argument("org_id", type=_uuid_arg)
        p.set_defaults(func=cmd_org_guard)
        if action == "set":
            p.add_argument("--enabled", choices=("on", "off"), help="switch the guard on or off")
            p.add_argument("--percent", type=float, help="share of active users (0-100]")
            p.add_argument("--min-users", type=int, help="at least this many users")
            p.add_argument("--window-minutes", type=float, help="within this many minutes")
            p.add_argument("--reset", action="store_true", help="back to the process settings")

    p = sub.add_parser(
        "roles",
        parents=[json_flag],
        help="role mappings: IdP groups to roles (show, or replace with --file/--map/--default)",
    )
    p.add_argument("org_id", type=_uuid_arg)
    p.add_argument("--file", help="replace with this JSON configuration (- for stdin)")
    p.add_argument(
        "--map",
        action="append",
        metavar="KIND=GROUP:ROLE[:PRIORITY]",
        help="replace: map a group (displayName=, externalId= or id=) to a role; repeatable",
    )
    p.add_argument("--default", help="replace: the role of users no mapping matches")
    p.add_argument(
        "--source", choices=("groups", "scim_roles"), help="replace: where roles come from"
    )
    p.add_argument("--clear", action="store_true", help="replace with no mappings, no default")
    p.set_defaults(func=cmd_roles)

    p = sub.add_parser("activity", parents=[json_flag], help="an organization's SCIM activity log")
    p.add_argument("org_id", type=_uuid_arg)
    p.add_argument("--errors", action="store_true", help="only failed requests (status >= 400)")
    p.add_argument("--follow", action="store_true", help="keep printing new entries")
    p.add_argument(
        "--for",
        dest="for_seconds",
        type=float,
        default=86400.0,
        help="with --follow: stop after this many seconds (default one day)",
    )
    p.add_argument("--limit", type=int, default=100, help="the newest N entries (at most 1000)")
    p.set_defaults(func=cmd_activity)

    tok = sub.add_parser("token", help="SCIM bearer tokens").add_subparsers(
        dest="token_cmd", required=True
    )
    p = tok.add_parser("create", parents=[json_flag], help="create a token (printed once)")
    p.add_argument("org_id", type=_uuid_arg)
    p.add_argument("--description", default="", help="what the token is for (e.g. 'JumpCloud')")
    p.add_argument("--ttl-days", type=int, default=None, help="expire after N days")
    p.set_defaults(func=cmd_token_create)
    p = tok.add_parser("list", parents=[json_flag], help="list an organization's tokens")
    p.add_argument("org_id", type=_uuid_arg)
    p.set_defaults(func=cmd_token_list)
    p = tok.add_parser("revoke", parents=[json_flag], help="revoke a token")
    p.add_argument("token_id", type=_uuid_arg)
    p.set_defaults(func=cmd_token_revoke)

    hooks = sub.add_parser(
        "endpoint", help="webhook endpoints per consumer (each its own secret and filters)"
    ).add_subparsers(dest="endpoint_cmd", required=True)
    p = hooks.add_parser("create", help="create an endpoint (its secret printed once)")
    p.add_argument("--url", required=True)
    p.add_argument(
        "--event-type",
        action="append",
        default=None,
        metavar="TYPE",
        help="an event type or prefix such as user.* (repeatable; default all)",
    )
    p.add_argument(
        "--org",
        action="append",
        type=_uuid_arg,
        default=None,
        metavar="ORG_ID",
        help="an organization whose events it gets (repeatable; default all)",
    )
    p.add_argument("--description", default="")
    p.add_argument("--start", default="now", help='"now" (default) or a pull API cursor')
    p.set_defaults(func=cmd_endpoint)
    p = hooks.add_parser("list", help="list endpoints (never their secrets)")
    p.set_defaults(func=cmd_endpoint)
    for name, text in (
        ("pause", "pause (keeps its position)"),
        ("resume", "resume"),
        ("delete", "delete (its position and owed events go)"),
    ):
        p = hooks.add_parser(name, help=text)
        p.add_argument("endpoint_id", type=_uuid_arg)
        p.set_defaults(func=cmd_endpoint)

    cred = sub.add_parser(
        "credential", help="scoped admin API credentials (operator, org:admin, events:read)"
    ).add_subparsers(dest="credential_cmd", required=True)
    p = cred.add_parser("create", parents=[json_flag], help="create a credential (printed once)")
    p.add_argument("--scope", required=True, choices=("operator", "org:admin", "events:read"))
    p.add_argument(
        "--org",
        action="append",
        type=_uuid_arg,
        default=None,
        metavar="ORG_ID",
        help="an organization it may act on (org:admin: one; events:read: one or more)",
    )
    p.add_argument(
        "--event-type",
        action="append",
        default=None,
        metavar="TYPE",
        help="events:read only: an event type it may read (repeatable; default every type)",
    )
    p.add_argument("--description", default="", help="who holds it (e.g. 'billing-sync')")
    p.add_argument("--ttl-days", type=int, default=None, help="expire after N days")
    p.set_defaults(func=cmd_credential)
    p = cred.add_parser("list", parents=[json_flag], help="list credentials (prefixes only)")
    p.set_defaults(func=cmd_credential)
    p = cred.add_parser("revoke", parents=[json_flag], help="revoke a credential (at once)")
    p.add_argument("credential_id", type=_uuid_arg)
    p.set_defaults(func=cmd_credential)

    p = sub.add_parser(
        "audit", parents=[json_flag], help="the admin audit trail (who changed what, when)"
    )
    p.add_argument("--org", type=_uuid_arg, default=None, help="only this organization's entries")
    p.add_argument("--limit", type=int, default=100, help="the newest N entries (at most 1000)")
    p.set_defaults(func=cmd_audit)

    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_cmd", required=True
    )
    cfg.add_parser(
        "check",
        parents=[json_flag],
        help="validate and print the effective configuration (secrets masked)",
    ).set_defaults(func=cmd_config_check)

    usr = sub.add_parser("user", help="provisioned users").add_subparsers(
        dest="user_cmd", required=True
    )
    p = usr.add_parser(
        "setup-complete",
        parents=[json_flag],
        help="mark that a user finished account setup (created their master key)",
    )
    p.add_argument("org_id", type=_uuid_arg)
    p.add_argument("user_id", type=_uuid_arg)
    p.set_defaults(func=cmd_user_setup_complete)

    evs = sub.add_parser("events", help="the event outbox").add_subparsers(
        dest="events_cmd", required=True
    )
    evs.add_parser(
        "stats", parents=[json_flag], help="pending and dead-lettered events per sink"
    ).set_defaults(func=cmd_events_stats)
    p = evs.add_parser("dead-letters", parents=[json_flag], help="list dead-lettered events")
    p.add_argument("--sink", default=None)
    p.add_argument("--limit", type=int, default=500)
    p.set_defaults(func=cmd_events_dead_letters)
    p = evs.add_parser("retry", parents=[json_flag], help="deliver dead-lettered events again")
    p.add_argument("event_ids", nargs="*", type=_uuid_arg, help="only these (default: all)")
    p.add_argument("--sink", default=None)
    p.set_defaults(func=cmd_events_retry)
    p = evs.add_parser("replay", parents=[json_flag], help="re-send delivered events (same ids)")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--since", type=_time_arg, help="RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
    start.add_argument("--from-event", type=_uuid_arg, help="this event id and every later one")
    p.add_argument("--sink", action="append", help="only to this sink (repeatable)")
    p.add_argument("--org", type=_uuid_arg, default=None, help="only this organization's events")
    p.set_defaults(func=cmd_events_replay)
    p = evs.add_parser("tail", help="follow events live as JSON lines (the pull API's order)")
    p.add_argument("--org", type=_uuid_arg, default=None, help="only this organization's events")
    p.add_argument(
        "--types", nargs="+", default=None, metavar="TYPE", help="only these event types"
    )
    p.add_argument("--after", default=None, help="start after this cursor (default: the oldest)")
    p.add_argument("--no-follow", dest="follow", action="store_false", help="stop once caught up")
    p.set_defaults(func=cmd_events_tail)
    orph = evs.add_parser(
        "orphans",
        help="events queued for a sink that is no longer configured: hand on or discard",
    ).add_subparsers(dest="orphans_cmd", required=True)
    p = orph.add_parser(
        "move", parents=[json_flag], help="hand a removed sink's events to a configured sink"
    )
    p.add_argument("sink", help="the sink no longer configured (see: events stats)")
    p.add_argument("--to", required=True, help="a configured sink (webhook, nats or log)")
    p.set_defaults(func=cmd_events_orphans)
    p = orph.add_parser(
        "discard", parents=[json_flag], help="drop a removed sink's queued events (logged)"
    )
    p.add_argument("sink", help="the sink no longer configured (see: events stats)")
    p.set_defaults(func=cmd_events_orphans)
    evs.add_parser(
        "signing-key", parents=[json_flag], help="the Ed25519 public key receivers verify v1a with"
    ).set_defaults(func=cmd_events_signing_key)
    evs.add_parser(
        "keygen", parents=[json_flag], help="generate a webhook secret and an Ed25519 signing key"
    ).set_defaults(func=cmd_events_keygen)
    return parser


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coro)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"scim-service: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    # The long-running commands log to stdout and report a fatal failure as a log line (JSON
    # where logs are JSON: log pipelines parse every line); the others answer on stdout, so
    # they log to stderr and print a failure for the person at the prompt.
    long_running = args.func in (cmd_serve, cmd_publisher)
    _AUDIT.set(_audited(args))
    worker = "supervisor" if args.func is cmd_serve and settings.worker_count > 1 else None
    configure_logging(
        settings.log_format, settings.log_level, stderr=not long_running, worker=worker
    )
    return execute(args.func(args, settings), daemon=long_running and settings.log_format == "json")


def execute(command: Awaitable[int], *, daemon: bool) -> int:
    """Run a command's coroutine; its failures become an exit status and one message (a JSON
    log line for a daemon whose logs are JSON, a line on stderr otherwise)."""
    try:
        return _run(command)
    except ConfigError as exc:
        print(f"scim-service: {mask_text(str(exc))}", file=sys.stderr)
        return 2
    except StartupError as exc:
        _fatal(daemon, "startup_failed", mask_text(str(exc)))
        return 1
    except errors.ScimError as exc:
        _fatal(daemon, "command_failed", f"error: {exc.detail}")
        return 1
    except BrokenPipeError:  # `scim-service ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, asyncpg.PostgresError) as exc:
        _fatal(
            daemon, "database_error", f"database error: {type(exc).__name__}: {mask_text(str(exc))}"
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        if daemon:  # one JSON line with the traceback, not a raw dump
            get_logger("scim_service.cli").exception("fatal_error")
            return 1
        raise


def _fatal(daemon: bool, event: str, message: str) -> None:
    if daemon:
        get_logger("scim_service.cli").error(event, message=message)
    else:
        print(f"scim-service: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
