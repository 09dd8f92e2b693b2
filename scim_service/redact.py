"""Masking secrets in anything printed: `config check`, configuration errors and log lines.

A URL keeps its scheme, host, port and path; its userinfo and query become `***` (both can hold
credentials: `nats://user:pass@host`, `nats://token@host`, `https://hooks/x?token=...`). Tokens
and keys the service issues (`scim_...`, `whsec_...`, `whsk_...`) are masked wherever they
appear in a log line.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

_URL_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]+@")
_URL_QUERY_RE = re.compile(r"(://[^\s?#\"']*\?)[^\s#\"']+")
_TOKEN_RE = re.compile(r"\b(scim|whsec|whsk)_[A-Za-z0-9_+/=-]{8,}")


def mask_url(url: str, *, keep_user: bool = False) -> str:
    """One URL (or a comma-separated list of them, as SCIM_NATS_URL takes) without its
    credentials: userinfo → `***` (`user:***` with keep_user, for a DSN's account name), and
    every query value → `***`."""
    if "," in url:
        return ",".join(mask_url(part, keep_user=keep_user) for part in url.split(","))
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        masked = f"{user}:{MASK}" if keep_user and sep else MASK
        if keep_user and not sep:
            masked = user
        netloc = f"{masked}@{hostport}"
    query = parts.query
    if query:
        query = "&".join(
            f"{item.partition('=')[0]}={MASK}" if "=" in item else MASK for item in query.split("&")
        )
    out = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    return f"{out}?{query}" if query else out


def mask_text(text: str) -> str:
    """Credentials in free text (an exception message, a traceback) masked."""
    if "://" in text:
        text = _URL_USERINFO_RE.sub(rf"\1{MASK}@", text)
        text = _URL_QUERY_RE.sub(rf"\1{MASK}", text)
    if "_" in text:
        text = _TOKEN_RE.sub(rf"\1_{MASK}", text)
    return text


def redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask credentials in every string value of a log line."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, (list, tuple)):
            event[key] = [mask_text(v) if isinstance(v, str) else v for v in value]
    return event
