"""`config check`: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse

from scim_service.cli.args import JSON, Commands
from scim_service.cli.output import print_json
from scim_service.config import Settings


async def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    from scim_service.config import effective

    values = effective(settings)
    if args.json:
        print_json(values)
    else:
        width = max(len(k) for k in values)
        for key, value in values.items():
            print(f"{key.ljust(width)}  {value if value is not None else '-'}")
        print("\nconfiguration is valid")
    return 0


def register(sub: Commands) -> None:
    cfg = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_cmd", required=True
    )
    cfg.add_parser(
        "check",
        parents=JSON,
        help="validate and print the effective configuration (secrets masked)",
    ).set_defaults(func=cmd_config_check)
