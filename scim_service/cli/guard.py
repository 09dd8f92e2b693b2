"""`org guard show | set | release | reject | discard`: the mass-deprovisioning guard."""

from __future__ import annotations

import argparse
from typing import Any

from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import database
from scim_service.cli.output import fmt, print_json, print_table
from scim_service.config import Settings


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
        state = "TRIPPED since " + fmt(result.tripped_at) if result.tripped else "armed"
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
            print(f"last:      {d.action} {fmt(d.at)}, {d.resources} resource(s)")
        if result.held_events:
            print_table(
                [
                    (h.time, h.type, h.subject, h.user_name or h.display_name or "", h.reason or "")
                    for h in result.held_events
                ],
                ["time", "type", "subject", "name", "reason"],
            )
    return 0


ACTIONS = (
    ("show", "its state, threshold and held events", None),
    ("set", "override the threshold for this organization", "guard.configure"),
    ("release", "deliver the held changes (in order) and re-arm", "guard.release"),
    ("reject", "restore the held users and groups, drop their held events, re-arm", "guard.reject"),
    ("discard", "the former name of reject", "guard.discard"),
)
"""(subcommand, help, audit action): the admin API's names (http/operations.py)."""


def register(org: Commands) -> None:
    grd = org.add_parser(
        "guard", help="the mass-deprovisioning guard (held access-reducing changes)"
    ).add_subparsers(dest="action", required=True)
    for action, text, audit in ACTIONS:
        p = grd.add_parser(action, parents=JSON, help=text)
        p.add_argument("org_id", type=uuid_arg)
        p.set_defaults(func=cmd_org_guard, audit=audit)
        if action == "set":
            p.add_argument("--enabled", choices=("on", "off"), help="switch the guard on or off")
            p.add_argument("--percent", type=float, help="share of active users (0-100]")
            p.add_argument("--min-users", type=int, help="at least this many users")
            p.add_argument("--window-minutes", type=float, help="within this many minutes")
            p.add_argument("--reset", action="store_true", help="back to the process settings")
