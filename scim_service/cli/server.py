"""The long-running commands (`serve`, `publisher`) and `migrate`."""

from __future__ import annotations

import argparse
import sys

from scim_service.cli.args import JSON, Commands
from scim_service.cli.db import database
from scim_service.cli.output import print_json
from scim_service.config import Settings
from scim_service.store import migrate as migrations


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


def register(sub: Commands) -> None:
    sub.add_parser("serve", help="run the HTTP server (and the event publisher)").set_defaults(
        func=cmd_serve
    )
    sub.add_parser(
        "publisher", help="run only the event publisher (with /healthz and /readyz)"
    ).set_defaults(func=cmd_publisher)
    p = sub.add_parser("migrate", parents=JSON, help="apply pending migrations and exit")
    p.add_argument(
        "--to",
        type=int,
        metavar="VERSION",
        help="apply pending migrations up to this version only (a staged roll-out)",
    )
    p.set_defaults(func=cmd_migrate)
