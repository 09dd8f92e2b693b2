"""`activity ORG_ID [--errors] [--follow]`: the SCIM activity log."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import msgspec

from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import database
from scim_service.cli.output import fmt, print_json
from scim_service.config import Settings


async def cmd_activity(args: argparse.Namespace, settings: Settings) -> int:
    """The organization's SCIM activity log; `--follow` polls for new entries each second."""
    from scim_service import activity
    from scim_service.provisioning import status

    def show(found: Sequence[activity.Entry]) -> None:
        for e in found:
            if args.json:
                sys.stdout.write(msgspec.json.encode(e).decode() + "\n")
            else:
                print(f"{fmt(e.at)}  {activity.describe(e)}  [{e.request_id}]")
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


def register(sub: Commands) -> None:
    p = sub.add_parser("activity", parents=JSON, help="an organization's SCIM activity log")
    p.add_argument("org_id", type=uuid_arg)
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
