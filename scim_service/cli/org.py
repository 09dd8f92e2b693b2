"""`org create | list | show | scim enable|disable | status` (and, from cli/guard.py,
`org guard`)."""

from __future__ import annotations

import argparse

from scim_service.cli import guard
from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import created, database
from scim_service.cli.output import answer, print_json, print_orgs, print_table
from scim_service.config import Settings
from scim_service.provisioning import tenants


async def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.create_org(
            conn, args.name, org_id=args.id, scim_enabled=not args.scim_disabled
        )
        created(org.id, org.id)
    return answer(args, org, lambda o: print_orgs([o]))


async def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        orgs = await tenants.list_orgs(conn)
    return answer(args, orgs, print_orgs)


async def cmd_org_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.get_org(conn, args.org_id)
    return answer(args, org, lambda o: print_orgs([o]))


async def cmd_org_scim(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        org = await tenants.set_scim_enabled(conn, args.org_id, args.action == "enable")
    return answer(args, org, lambda o: print_orgs([o]))


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


def register(sub: Commands) -> None:
    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_cmd", required=True)
    p = org.add_parser("create", parents=JSON, help="create an organization")
    p.add_argument("name")
    p.add_argument("--id", type=uuid_arg, help="use this id (e.g. the platform's own org id)")
    p.add_argument("--scim-disabled", action="store_true", help="create with SCIM switched off")
    p.set_defaults(func=cmd_org_create, audit="org.create")
    org.add_parser("list", parents=JSON, help="list organizations").set_defaults(func=cmd_org_list)
    p = org.add_parser("show", parents=JSON, help="show one organization")
    p.add_argument("org_id", type=uuid_arg)
    p.set_defaults(func=cmd_org_show)
    scim = org.add_parser("scim", help="switch SCIM provisioning on or off").add_subparsers(
        dest="action", required=True
    )
    for action in ("enable", "disable"):
        p = scim.add_parser(action, parents=JSON, help=f"{action} SCIM for an organization")
        p.add_argument("org_id", type=uuid_arg)
        p.set_defaults(func=cmd_org_scim, audit=f"org.scim_{action}")
    p = org.add_parser(
        "status", parents=JSON, help="directory status: tokens, IdPs, errors, events, guard"
    )
    p.add_argument("org_id", type=uuid_arg)
    p.set_defaults(func=cmd_org_status)
    guard.register(org)
