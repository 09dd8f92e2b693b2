"""Query parameters of the admin API, read one way: a bad value is a 400 that names it."""

from __future__ import annotations

import uuid

from aiohttp import web

from scim_service import errors

MOST = 2**62


def number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise errors.InvalidValue(f"'{name}' must be a number from {low:g} to {high:g}")
    return value


def whole(request: web.Request, name: str, default: int, low: int = 0, high: int = MOST) -> int:
    """A whole number from `low` to `high` (absent or empty: `default`)."""
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        shown = f"from {low} to {high}" if high < MOST else f"of at least {low}"
        raise errors.InvalidValue(f"'{name}' must be a whole number {shown}")
    return int(raw)


def uuid_of(request: web.Request, name: str) -> uuid.UUID | None:
    """A UUID (absent or empty: None)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.InvalidValue(f"'{name}' must be a UUID") from None


def optional_whole(request: web.Request, name: str) -> int | None:
    """A whole number of at least 0, or None when absent."""
    return whole(request, name, 0) if request.query.get(name, "") != "" else None
