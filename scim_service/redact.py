"""Masking secrets in anything kept or printed: the activity log, log lines, error bodies,
`config check` and configuration errors. One function, `mask`, for structured values; it is
what the activity log (`mask_json`), the log processor and error details use.

A URL keeps its scheme, host, port and path; its userinfo and query become `***` (both can hold
credentials: `nats://user:pass@host`, `nats://token@host`, `https://hooks/x?token=...`). Tokens
and keys the service issues (`scim_` + 43 characters, `whsec_...`, `whsk_...`) are masked
wherever they appear in text.

Secret names, by construction rather than by list of spellings: a key or a PATCH `path` is
reduced to its attribute name (lower case; a value filter `[...]` dropped; the last `:` segment
of a URN such as `urn:ietf:params:scim:schemas:core:2.0:User:password`; every `.` part of a
sub-attribute path) and is secret when a part, without `_` and `-`, ends with one of
SECRET_SUFFIXES or is one of SECRET_NAMES (`password`, `newPassword`, `client_secret`,
`x-api-key`, `Authorization`...). The value of a secret key is masked whole, whatever its type
(a string, a list of values, an object); so is the `value` of a PATCH operation whose `path`
names a secret. RFC 7643 §2.1: attribute names are case-insensitive, and so is this.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec

MASK = "***"

SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey")
SECRET_NAMES = frozenset(("authorization", "credential", "credentials", "pwd", "signingkey"))

_URL_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]+@")
_URL_QUERY_RE = re.compile(r"(://[^\s?#\"']*\?)[^\s#\"']+")
# What the service mints: a SCIM token is `scim_` + 43 urlsafe-base64 characters, an admin
# credential `scimadm_` + 43 (tokens.py;
# 40 to 46 here, for one mistyped or cut short), so a `scim_` word of another shape (a file path
# `scim_service/http/admin.py` in a traceback, a module or metric name) stays readable. Webhook
# secrets and signing keys (signing.py) are `whsec_`/`whsk_` + base64; nothing else starts so.
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(scim|scimadm)_[A-Za-z0-9_-]{40,46}(?![A-Za-z0-9_-])"
    r"|\b(whsec|whsk)_[A-Za-z0-9+/=_-]{8,}"
)
# `password=x`, `"client_secret": "x"`, `Authorization: Bearer x` in free text.
_KV_RE = re.compile(
    r"((?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|signing[_-]?key"
    r"|authorization|credentials?|\bpwd)[\"']?\s*[:=]\s*(?:bearer\s+)?)"
    r"(?!<)(?!bearer\s)"  # a placeholder (`Bearer <token>` in a usage hint) is no secret
    r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,;&}\])\"']+)",
    re.IGNORECASE,
)
JSON_TEXT_MAX = 65536  # a JSON text longer than this in a message is not parsed, nor kept
_KV_WORDS = ("pass", "pwd", "secret", "token", "key", "authorization", "credential")


def _token_mask(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2)}_{MASK}"


def _part_is_secret(part: str) -> bool:
    bare = part.replace("_", "").replace("-", "")
    return bare in SECRET_NAMES or bare.endswith(SECRET_SUFFIXES)


def is_secret_name(name: str) -> bool:
    """Whether a key, a setting or a PATCH path names a secret (see the module docstring)."""
    n = name.lower()
    start = n.find("[")
    if start >= 0:  # a value filter: `password[type eq "x"]`, `x[...].value`
        end = n.find("]", start)
        n = n[:start] + (n[end + 1 :] if end >= 0 else "")
    leaf = n.rsplit(":", 1)[-1]  # `urn:...:User:password` → `password`
    return any(_part_is_secret(part) for part in leaf.split(".") if part)


def _secret_path(op: dict[Any, Any]) -> bool:
    """A PATCH operation whose `path` (any case) names a secret."""
    for k, v in op.items():
        if isinstance(k, str) and k.lower() == "path" and isinstance(v, str):
            return is_secret_name(v)
    return False


def mask(value: Any) -> Any:
    """A decoded JSON value (or log field) with every secret masked, at any depth: the values of
    secret keys, the `value` of a PATCH operation on a secret path, issued tokens and
    credentials in every string."""
    if isinstance(value, dict):
        secret_op = _secret_path(value)
        return {
            k: MASK
            if isinstance(k, str) and (is_secret_name(k) or (secret_op and k.lower() == "value"))
            else mask(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_json(raw: bytes, limit: int) -> tuple[str | None, Any]:
    """A JSON body as it may be kept: `mask`ed and re-encoded, cut to `limit` characters (marked
    `…`); and the masked value. A body that does not parse is never kept (only its size): it
    cannot be masked reliably."""
    try:
        value = mask(msgspec.json.decode(raw))
    except (msgspec.DecodeError, UnicodeDecodeError):
        return f"<{len(raw)} bytes, not JSON, not kept>", None
    text = msgspec.json.encode(value).decode()
    return (text if len(text) <= limit else text[:limit] + "…"), value


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
    """Credentials in free text (an exception message, a traceback, a string value) masked:
    URL userinfo and queries, issued tokens and keys, `secret=value` pairs. A text that is a
    JSON object or array (a body in a message) is `mask`ed as JSON; one that starts like JSON,
    does not parse and names a secret is not kept (its masking could not be trusted)."""
    if text[:1] in _JSON_START or text.lstrip()[:1] in _JSON_START:
        masked = _mask_json_text(text)
        if masked is not None:
            return masked
    if "://" in text:
        text = _URL_USERINFO_RE.sub(rf"\1{MASK}@", text)
        text = _URL_QUERY_RE.sub(rf"\1{MASK}", text)
    if "_" in text:
        text = _TOKEN_RE.sub(_token_mask, text)
    if ("=" in text or ":" in text) and any(w in text.lower() for w in _KV_WORDS):
        text = _KV_RE.sub(rf"\1{MASK}", text)
    return text


_JSON_START = ("{", "[")
_NOT_JSON = object()


def _mask_json_text(text: str) -> str | None:
    if len(text) > JSON_TEXT_MAX:
        return f"<{len(text)} characters, not kept>"
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        low = text.lower()
        if any(w in low for w in _KV_WORDS):
            return f"<{len(text)} characters, not JSON, not kept>"
        return None
    return msgspec.json.encode(mask(value)).decode()


def redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: `mask` every field of a log line (a field named like a secret is
    masked whole)."""
    for key, value in event.items():
        if is_secret_name(key):
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, (dict, list, tuple)):
            event[key] = mask(value)
    return event
