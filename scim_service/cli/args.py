"""What every command group shares in its parser: argument types and the `--json` flag."""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from typing import TypeAlias

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""A parser's subcommands, where a group adds its commands."""

JSON_FLAG = argparse.ArgumentParser(add_help=False)
JSON_FLAG.add_argument("--json", action="store_true", help="print JSON instead of a table")
JSON = [JSON_FLAG]
"""`parents=JSON`: the command accepts --json."""


def uuid_arg(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def time_arg(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone (e.g. a trailing Z)")
    return parsed


def orgs_option(p: argparse.ArgumentParser, text: str) -> None:
    """`--org ORG_ID`, repeatable."""
    p.add_argument(
        "--org", action="append", type=uuid_arg, default=None, metavar="ORG_ID", help=text
    )


def event_types_option(p: argparse.ArgumentParser, text: str) -> None:
    """`--event-type TYPE`, repeatable."""
    p.add_argument("--event-type", action="append", default=None, metavar="TYPE", help=text)
