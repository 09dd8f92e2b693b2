"""Conditional requests (RFC 7644 §3.14, RFC 7232) against a resource's version."""

from __future__ import annotations

from scim_service.errors import PreconditionFailed
from scim_service.scim.mapping import etag


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag[:2].upper() == "W/":
        tag = tag[2:]
    return tag.strip()


def matches_any(header: str, version: int) -> bool:
    """Weak comparison of the current version against an If-Match/If-None-Match list."""
    if header.strip() == "*":
        return True
    current = _opaque(etag(version))
    return any(_opaque(t) == current for t in header.split(",") if t.strip())


def check_if_match(header: str | None, version: int) -> None:
    if header is not None and not matches_any(header, version):
        raise PreconditionFailed(
            f"The resource has changed: If-Match {header.strip()} does not match the current "
            f"version {etag(version)}"
        )
