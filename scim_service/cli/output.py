"""How the CLI prints: tables for a person, JSON (`--json`) for a script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from scim_service.provisioning.tenants import Org, TokenInfo


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if value.utcoffset() is not None else str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def print_orgs(orgs: Sequence[Org]) -> None:
    print_table(
        [[o.id, o.name, o.scim_enabled, o.active_tokens, o.created_at] for o in orgs],
        ["id", "name", "scim", "active tokens", "created"],
    )


def answer(args: argparse.Namespace, value: Any, table: Callable[[Any], None]) -> int:
    """The command's result: JSON with --json, else `table(value)`; exit status 0."""
    print_json(value) if args.json else table(value)
    return 0


def print_shown_once(
    fields: Sequence[tuple[str, Any]], expires_at: datetime | None, note: str
) -> None:
    """A new secret and what identifies it, printed the only time it is shown."""
    if expires_at:
        fields = [*fields, ("Expires", fmt(expires_at))]
    width = max(len(name) for name, _ in fields) + 1
    for name, value in fields:
        print(f"{(name + ':').ljust(width)} {value}")
    print(note)


def print_tokens(tokens: Sequence[TokenInfo]) -> None:
    print_table(
        [
            [
                t.id,
                t.display_prefix + "…",
                t.state,
                t.description,
                t.created_at,
                t.expires_at,
                t.last_used_at,
            ]
            for t in tokens
        ],
        ["id", "prefix", "state", "description", "created", "expires", "last used"],
    )
