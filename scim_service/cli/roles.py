"""`roles ORG_ID`: show or replace an organization's role mappings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from scim_service import errors
from scim_service.cli.args import JSON, Commands, uuid_arg
from scim_service.cli.db import database
from scim_service.cli.output import print_json, print_table
from scim_service.config import Settings


def role_config(args: argparse.Namespace) -> Any:
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
    if not changes(args):
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


def changes(args: argparse.Namespace) -> bool:
    """Whether the command replaces the mappings (it shows them otherwise)."""
    replace = (args.file, args.map, args.default, args.source)
    return any(v is not None for v in replace) or args.clear


def _audit(args: argparse.Namespace) -> str | None:
    return "roles.set" if changes(args) else None


async def cmd_roles(args: argparse.Namespace, settings: Settings) -> int:
    """Role mappings of one organization: show them, or replace them."""
    from scim_service.events.emitter import Emitter
    from scim_service.provisioning import guard, roles
    from scim_service.provisioning.scope import Scope

    config = role_config(args)
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


def register(sub: Commands) -> None:
    p = sub.add_parser(
        "roles",
        parents=JSON,
        help="role mappings: IdP groups to roles (show, or replace with --file/--map/--default)",
    )
    p.add_argument("org_id", type=uuid_arg)
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
    p.set_defaults(func=cmd_roles, audit=_audit)
