"""Standard Webhooks signatures (spec 1.0, https://www.standardwebhooks.com).

Signed content is `{msg_id}.{timestamp}.{body}` (spec "Signature scheme"):

- `v1`: HMAC-SHA256, keyed with the base64-decoded part of a `whsec_...` secret (24 to 64
  bytes, spec table "Signing secret"). Several secrets may be active at once for zero-downtime
  rotation; every one of them signs.
- `v1a`: Ed25519. The secret key is `whsk_` + base64 of the 32-byte seed (a PKCS#8 PEM is
  accepted too); receivers verify with `whpk_` + base64 of the 32 raw public-key bytes.

`webhook-signature` carries every signature, space-separated (spec "Webhook headers").

Key material never leaves this module in readable form: `Signer` has no public attribute
holding a key, its repr shows counts only, and every `ValueError` names which input was wrong
and why, never its value.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "PUBLIC_KEY_PREFIX",
    "SECRET_PREFIX",
    "SIGNING_KEY_PREFIX",
    "Signer",
    "generate_secret",
    "generate_signing_key",
    "split_secrets",
    "verify_v1a",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

# Spec table "Signing secret": random, at least 24 bytes (192 bits), 512 bits maximum.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_SEED_BYTES = 32

_SEPARATORS = re.compile(r"[\s,]+")


def split_secrets(value: str | None) -> list[str]:
    """Split a `SCIM_WEBHOOK_SECRET`-style value listing secrets by spaces and/or commas."""
    if not value:
        return []
    return [part for part in _SEPARATORS.split(value.strip()) if part]


def _b64decode(text: str) -> bytes:
    """Strict standard base64; tolerates missing padding (some tools strip it)."""
    text = text.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _parse_secret(secret: str, position: int) -> bytes:
    label = f"webhook secret #{position}"
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"{label} must be of the form 'whsec_<base64>'")
    try:
        key = _b64decode(secret[len(SECRET_PREFIX) :])
    except (binascii.Error, ValueError):
        raise ValueError(f"{label} is not valid base64 after 'whsec_'") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"{label} decodes to {len(key)} bytes; Standard Webhooks secrets are "
            f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
        )
    return key


def _parse_signing_key(value: str) -> Ed25519PrivateKey:
    """A `whsk_` seed (32 bytes, or libsodium's 64-byte seed+public form) or a PKCS#8 PEM."""
    label = "webhook signing key"
    text = value.strip()
    if text.startswith("-----BEGIN"):
        # An environment variable often carries a PEM with literal "\n" sequences.
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except TypeError:
            raise ValueError(f"{label}: encrypted PEM keys are not supported") from None
        except (ValueError, UnicodeError, UnsupportedAlgorithm):
            raise ValueError(f"{label}: the PEM is not a readable PKCS#8 private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{label}: the PEM holds a key of another type; v1a needs Ed25519")
        return key
    if not text.startswith(SIGNING_KEY_PREFIX):
        raise ValueError(
            f"{label} must be 'whsk_<base64 of the 32-byte Ed25519 seed>' "
            "or a PKCS#8 PEM Ed25519 private key"
        )
    try:
        raw = _b64decode(text[len(SIGNING_KEY_PREFIX) :])
    except (binascii.Error, ValueError):
        raise ValueError(f"{label} is not valid base64 after 'whsk_'") from None
    if len(raw) not in (_SEED_BYTES, 2 * _SEED_BYTES):
        raise ValueError(f"{label} decodes to {len(raw)} bytes; an Ed25519 seed is 32 bytes")
    key = Ed25519PrivateKey.from_private_bytes(raw[:_SEED_BYTES])
    if len(raw) == 2 * _SEED_BYTES and not hmac.compare_digest(
        raw[_SEED_BYTES:], key.public_key().public_bytes_raw()
    ):
        raise ValueError(f"{label}: its public half does not match its seed")
    return key


def _parse_public_key(value: str) -> Ed25519PublicKey:
    if not value.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError("public key must be of the form 'whpk_<base64>'")
    try:
        raw = _b64decode(value[len(PUBLIC_KEY_PREFIX) :])
    except (binascii.Error, ValueError):
        raise ValueError("public key is not valid base64 after 'whpk_'") from None
    if len(raw) != _SEED_BYTES:
        raise ValueError(f"public key decodes to {len(raw)} bytes; Ed25519 keys are 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def _check_msg_id(msg_id: str) -> None:
    # Spec "Signature scheme": the id must not contain "." (it delimits the signed content).
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        raise ValueError("webhook-id must be non-empty, without '.' or whitespace")


def _signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    return b"%s.%s.%s" % (msg_id.encode(), str(timestamp).encode("ascii"), body)


class Signer:
    """Signs webhook deliveries with every configured `whsec_` secret and the `whsk_` key.

    `Signer(secrets, signing_key)` validates everything up front and raises `ValueError` with a
    message naming the faulty input (never its value); configuration validation relies on that.
    `secrets` may also be one string listing several secrets (spaces and/or commas).
    """

    __slots__ = ("_hmac_keys", "_private_key", "_public_key")

    def __init__(self, secrets: Iterable[str] | str = (), signing_key: str | None = None) -> None:
        values = [secrets] if isinstance(secrets, str) else list(secrets)
        parts = [part for value in values for part in split_secrets(value)]
        keys: list[bytes] = []
        for position, part in enumerate(parts, start=1):
            key = _parse_secret(part, position)
            if key not in keys:  # the same secret listed twice signs once
                keys.append(key)
        self._hmac_keys: tuple[bytes, ...] = tuple(keys)
        self._private_key: Ed25519PrivateKey | None = None
        self._public_key: str | None = None
        if signing_key is not None and signing_key.strip():
            self._private_key = _parse_signing_key(signing_key)
            raw_public = self._private_key.public_key().public_bytes_raw()
            self._public_key = PUBLIC_KEY_PREFIX + _b64encode(raw_public)
        if not self._hmac_keys and self._private_key is None:
            raise ValueError("webhook signing needs at least one whsec_ secret or a signing key")

    def __repr__(self) -> str:
        v1a = "yes" if self._private_key is not None else "no"
        return f"Signer(v1_secrets={len(self._hmac_keys)}, v1a={v1a})"

    __str__ = __repr__

    def public_key(self) -> str | None:
        """`whpk_...` for receivers of v1a signatures, or None without a signing key."""
        return self._public_key

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The `webhook-signature` value: every signature, space-separated."""
        _check_msg_id(msg_id)
        content = _signed_content(msg_id, timestamp, body)
        parts = ["v1," + _b64encode(hmac.digest(key, content, "sha256")) for key in self._hmac_keys]
        if self._private_key is not None:
            parts.append("v1a," + _b64encode(self._private_key.sign(content)))
        return " ".join(parts)

    def headers(self, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """`webhook-id`, `webhook-timestamp` (now, unless given) and `webhook-signature`.

        Raises ValueError for an id containing "." or whitespace (event ids are UUIDs).
        """
        ts = int(time.time()) if timestamp is None else int(timestamp)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": self.signature(msg_id, ts, body),
        }


def generate_secret(nbytes: int = 32) -> str:
    """A new `whsec_` secret of `nbytes` random bytes (24 to 64)."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"secret size must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + _b64encode(_secrets.token_bytes(nbytes))


def generate_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair as (`whsk_` secret key, `whpk_` public key)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes_raw()
    return SIGNING_KEY_PREFIX + _b64encode(seed), PUBLIC_KEY_PREFIX + _b64encode(public)


def verify_v1a(
    public_key: str, msg_id: str, timestamp: int | str, body: bytes, signature_header: str
) -> bool:
    """True when any `v1a` signature in `signature_header` verifies with `public_key`.

    A receiver's reference check (tests, docs). It does not check the timestamp's age, which a
    receiver must (the spec suggests a tolerance of about 5 minutes). Raises ValueError for a
    malformed `whpk_` key; a malformed or wrong signature just gives False.
    """
    key = _parse_public_key(public_key)
    content = _signed_content(msg_id, timestamp, body)
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(_b64decode(encoded), content)
        except (binascii.Error, ValueError, InvalidSignature):
            continue
        return True
    return False
