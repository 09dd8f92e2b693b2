"""`credential create | list | revoke` (scoped admin credentials) and `audit`."""

from __future__ import annotations

import argparse

from scim_service.cli.args import JSON, Commands, event_types_option, orgs_option, uuid_arg
from scim_service.cli.db import created, database
from scim_service.cli.output import print_json, print_shown_once, print_table
from scim_service.config import Settings
from scim_service.store.credentials import SCOPES


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
            created(new.info.id)
            if args.json:
                print_json({"token": new.token, "info": new.info})
            else:
                orgs = " ".join(map(str, new.info.org_ids))
                print_shown_once(
                    [
                        ("Credential", new.token),
                        ("Credential id", new.info.id),
                        ("Scope", f"{new.info.scope} {orgs}"),
                    ],
                    new.info.expires_at,
                    "The credential is shown only this once; store it in the caller now.",
                )
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


def register(sub: Commands) -> None:
    cred = sub.add_parser(
        "credential", help="scoped admin API credentials (operator, org:admin, events:read)"
    ).add_subparsers(dest="credential_cmd", required=True)
    p = cred.add_parser("create", parents=JSON, help="create a credential (printed once)")
    p.add_argument("--scope", required=True, choices=SCOPES)
    orgs_option(p, "an organization it may act on (org:admin: one; events:read: one or more)")
    event_types_option(
        p, "events:read only: an event type it may read (repeatable; default every type)"
    )
    p.add_argument("--description", default="", help="who holds it (e.g. 'billing-sync')")
    p.add_argument("--ttl-days", type=int, default=None, help="expire after N days")
    p.set_defaults(func=cmd_credential, audit="credential.create")
    p = cred.add_parser("list", parents=JSON, help="list credentials (prefixes only)")
    p.set_defaults(func=cmd_credential)
    p = cred.add_parser("revoke", parents=JSON, help="revoke a credential (at once)")
    p.add_argument("credential_id", type=uuid_arg)
    p.set_defaults(func=cmd_credential, audit="credential.revoke")

    p = sub.add_parser("audit", parents=JSON, help="the admin audit trail (who changed what, when)")
    p.add_argument("--org", type=uuid_arg, default=None, help="only this organization's entries")
    p.add_argument("--limit", type=int, default=100, help="the newest N entries (at most 1000)")
    p.set_defaults(func=cmd_audit)
