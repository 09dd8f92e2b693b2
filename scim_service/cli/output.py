"""How the CLI prints: tables for a person, JSON (`--json`) for a script."""

from __future__ import annotations

import sys
from collections.abc import Sequence
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


def print_org(org: Org) -> None:
    print_table(
        [[org.id, org.name, org.scim_enabled, org.active_tokens, org.created_at]],
        ["id", "name", "scim", "active tokens", "created"],
    )


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
