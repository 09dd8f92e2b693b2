"""`user setup-complete ORG_ID USER_ID`: a user finished account setup."""

from __future__ import annotations

import argparse

from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import database
from scim_service.cli.output import print_json, print_table
from scim_service.config import Settings
from scim_service.provisioning import tenants


async def cmd_user_setup_complete(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.events.emitter import Emitter
    from scim_service.provisioning import guard, users
    from scim_service.provisioning.scope import Scope

    async with database(settings) as conn:
        await tenants.get_org(conn, args.org_id)
        emitter = Emitter(settings.event_source, settings.sinks)
        # The configured guard policy, as the admin API's handler has it.
        scope = Scope(args.org_id, emitter, guard.policy_of(settings))
        user = await users.complete_setup(conn, scope, args.user_id)
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


def register(sub: Commands) -> None:
    usr = sub.add_parser("user", help="provisioned users").add_subparsers(
        dest="user_cmd", required=True
    )
    p = usr.add_parser(
        "setup-complete",
        parents=JSON,
        help="mark that a user finished account setup (created their master key)",
    )
    p.add_argument("org_id", type=uuid_arg)
    p.add_argument("user_id", type=uuid_arg)
    p.set_defaults(func=cmd_user_setup_complete, audit="user.setup_complete")
