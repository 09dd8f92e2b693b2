"""`token create | list | revoke`: SCIM bearer tokens."""

from __future__ import annotations

import argparse

from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import created, database
from scim_service.cli.output import answer, print_json, print_shown_once, print_tokens
from scim_service.config import Settings
from scim_service.provisioning import tenants


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        new = await tenants.create_token(
            conn, args.org_id, description=args.description, ttl_days=args.ttl_days
        )
        created(new.info.id)
    if args.json:
        print_json({"token": new.token, "scim_base_url": settings.scim_base_url, "info": new.info})
    else:
        print_shown_once(
            [
                ("SCIM Base URL", settings.scim_base_url),
                ("Token", new.token),
                ("Token id", new.info.id),
            ],
            new.info.expires_at,
            "The token is shown only this once; store it in your identity provider now.",
        )
    return 0


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        tokens = await tenants.list_tokens(conn, args.org_id)
    return answer(args, tokens, print_tokens)


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as conn:
        info = await tenants.revoke_token(conn, args.token_id)
    return answer(args, info, lambda i: print_tokens([i]))


def register(sub: Commands) -> None:
    tok = sub.add_parser("token", help="SCIM bearer tokens").add_subparsers(
        dest="token_cmd", required=True
    )
    p = tok.add_parser("create", parents=JSON, help="create a token (printed once)")
    p.add_argument("org_id", type=uuid_arg)
    p.add_argument("--description", default="", help="what the token is for (e.g. 'JumpCloud')")
    p.add_argument("--ttl-days", type=int, default=None, help="expire after N days")
    p.set_defaults(func=cmd_token_create, audit="token.create")
    p = tok.add_parser("list", parents=JSON, help="list an organization's tokens")
    p.add_argument("org_id", type=uuid_arg)
    p.set_defaults(func=cmd_token_list)
    p = tok.add_parser("revoke", parents=JSON, help="revoke a token")
    p.add_argument("token_id", type=uuid_arg)
    p.set_defaults(func=cmd_token_revoke, audit="token.revoke")
