"""SCIM bearer tokens: generation and digests (no I/O).

A token is `scim_` followed by 43 urlsafe-base64 characters: 32 bytes (256 bits) from the
operating system's CSPRNG. Only its SHA-256 digest is stored; a request's token is looked up
by digest, so no stored secret is ever compared byte by byte with an attacker's input (the
comparison is constant-time by construction). Lists show `display_prefix`: the fixed prefix
plus the first 6 random characters (36 of 256 bits), enough to tell tokens apart and useless
for guessing.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from cryptography.hazmat.primitives import hashes

TOKEN_PREFIX = "scim_"  # noqa: S105 - a public prefix, not a secret
# Scoped admin credentials (issue 22): the same shape, digest and lookup, another prefix.
ADMIN_TOKEN_PREFIX = "scimadm_"  # noqa: S105 - a public prefix, not a secret
_RANDOM_BYTES = 32
_DISPLAY_CHARS = 6
_TOKEN_LEN = len(TOKEN_PREFIX) + 43


def generate_token(prefix: str = TOKEN_PREFIX) -> str:
    raw = secrets.token_bytes(_RANDOM_BYTES)
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def token_digest(token: str) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(token.encode("utf-8"))
    return h.finalize()


def display_prefix(token: str) -> str:
    prefix = ADMIN_TOKEN_PREFIX if token.startswith(ADMIN_TOKEN_PREFIX) else TOKEN_PREFIX
    return token[: len(prefix) + _DISPLAY_CHARS]


def looks_like_token(token: str, prefix: str = TOKEN_PREFIX) -> bool:
    """Cheap shape check before any database work (an obviously wrong header costs nothing)."""
    return len(token) == len(prefix) + _TOKEN_LEN - len(TOKEN_PREFIX) and token.startswith(prefix)


def matches_digest(presented: str, expected_digest: bytes) -> bool:
    """Constant-time check of a presented secret against a digest held in memory.

    Used for the admin token, which is configured rather than looked up: comparing digests
    (fixed length) also hides the configured token's length.
    """
    return hmac.compare_digest(token_digest(presented), expected_digest)
