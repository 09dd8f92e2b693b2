"""`events stats | dead-letters | retry | replay | tail | signing-key | keygen | orphans`:
the event outbox."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from scim_service.cli.args import JSON, Commands, time_arg, uuid_arg
from scim_service.cli.db import database, database_and_url
from scim_service.cli.output import print_json, print_table
from scim_service.config import ConfigError, Settings
from scim_service.store.outbox import CHANNEL as OUTBOX_CHANNEL


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


def register(sub: Commands) -> None:
    evs = sub.add_parser("events", help="the event outbox").add_subparsers(
        dest="events_cmd", required=True
    )
    evs.add_parser(
        "stats", parents=JSON, help="pending and dead-lettered events per sink"
    ).set_defaults(func=cmd_events_stats)
    p = evs.add_parser("dead-letters", parents=JSON, help="list dead-lettered events")
    p.add_argument("--sink", default=None)
    p.add_argument("--limit", type=int, default=500)
    p.set_defaults(func=cmd_events_dead_letters)
    p = evs.add_parser("retry", parents=JSON, help="deliver dead-lettered events again")
    p.add_argument("event_ids", nargs="*", type=uuid_arg, help="only these (default: all)")
    p.add_argument("--sink", default=None)
    p.set_defaults(func=cmd_events_retry, audit="events.retry")
    p = evs.add_parser("replay", parents=JSON, help="re-send delivered events (same ids)")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--since", type=time_arg, help="RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
    start.add_argument("--from-event", type=uuid_arg, help="this event id and every later one")
    p.add_argument("--sink", action="append", help="only to this sink (repeatable)")
    p.add_argument("--org", type=uuid_arg, default=None, help="only this organization's events")
    p.set_defaults(func=cmd_events_replay, audit="events.replay")
    p = evs.add_parser("tail", help="follow events live as JSON lines (the pull API's order)")
    p.add_argument("--org", type=uuid_arg, default=None, help="only this organization's events")
    p.add_argument(
        "--types", nargs="+", default=None, metavar="TYPE", help="only these event types"
    )
    p.add_argument("--after", default=None, help="start after this cursor (default: the oldest)")
    p.add_argument("--no-follow", dest="follow", action="store_false", help="stop once caught up")
    p.set_defaults(func=cmd_events_tail)
    _register_orphans(evs)
    evs.add_parser(
        "signing-key", parents=JSON, help="the Ed25519 public key receivers verify v1a with"
    ).set_defaults(func=cmd_events_signing_key)
    evs.add_parser(
        "keygen", parents=JSON, help="generate a webhook secret and an Ed25519 signing key"
    ).set_defaults(func=cmd_events_keygen)


def _register_orphans(evs: Commands) -> None:
    orph = evs.add_parser(
        "orphans",
        help="events queued for a sink that is no longer configured: hand on or discard",
    ).add_subparsers(dest="orphans_cmd", required=True)
    p = orph.add_parser(
        "move", parents=JSON, help="hand a removed sink's events to a configured sink"
    )
    p.add_argument("sink", help="the sink no longer configured (see: events stats)")
    p.add_argument("--to", required=True, help="a configured sink (webhook, nats or log)")
    p.set_defaults(func=cmd_events_orphans, audit="events.orphans_move")
    p = orph.add_parser(
        "discard", parents=JSON, help="drop a removed sink's queued events (logged)"
    )
    p.add_argument("sink", help="the sink no longer configured (see: events stats)")
    p.set_defaults(func=cmd_events_orphans, audit="events.orphans_discard")
