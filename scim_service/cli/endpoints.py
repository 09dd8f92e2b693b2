"""`endpoint create | list | pause | resume | delete`: webhook endpoints per consumer."""

from __future__ import annotations

import argparse
import sys

from scim_service.cli.args import Commands, event_types_option, orgs_option, uuid_arg
from scim_service.cli.db import created, database
from scim_service.cli.output import print_json
from scim_service.config import Settings


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
            created(new.endpoint.id)
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


def register(sub: Commands) -> None:
    hooks = sub.add_parser(
        "endpoint", help="webhook endpoints per consumer (each its own secret and filters)"
    ).add_subparsers(dest="endpoint_cmd", required=True)
    p = hooks.add_parser("create", help="create an endpoint (its secret printed once)")
    p.add_argument("--url", required=True)
    event_types_option(p, "an event type or prefix such as user.* (repeatable; default all)")
    orgs_option(p, "an organization whose events it gets (repeatable; default all)")
    p.add_argument("--description", default="")
    p.add_argument("--start", default="now", help='"now" (default) or a pull API cursor')
    p.set_defaults(func=cmd_endpoint, audit="endpoint.create")
    p = hooks.add_parser("list", help="list endpoints (never their secrets)")
    p.set_defaults(func=cmd_endpoint)
    for name, text, audit in (
        ("pause", "pause (keeps its position)", "endpoint.change"),
        ("resume", "resume", "endpoint.change"),
        ("delete", "delete (its position and owed events go)", "endpoint.delete"),
    ):
        p = hooks.add_parser(name, help=text)
        p.add_argument("endpoint_id", type=uuid_arg)
        p.set_defaults(func=cmd_endpoint, audit=audit)
