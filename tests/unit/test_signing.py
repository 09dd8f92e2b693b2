"""Standard Webhooks signing: v1 checked by the reference `standardwebhooks` package, v1a by
`cryptography`, and key handling that never echoes key material."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from scim_service.signing import (
    Signer,
    generate_secret,
    generate_signing_key,
    split_secrets,
    verify_v1a,
)

BODY = (
    b'{"specversion":"1.0","id":"7c1f0c57-1d7e-4d0e-9d7e-3f0e1b7a9c11","type":"user.provisioned"}'
)
MSG_ID = "7c1f0c57-1d7e-4d0e-9d7e-3f0e1b7a9c11"


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _whsk(key: Ed25519PrivateKey) -> str:
    return "whsk_" + base64.b64encode(key.private_bytes_raw()).decode()


def test_v1_signature_verifies_with_the_reference_library() -> None:
    """A v1 signature made with a whsec_ secret verifies with standardwebhooks' Webhook."""
    secret = generate_secret()
    headers = Signer([secret]).headers(MSG_ID, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == {
        "specversion": "1.0",
        "id": MSG_ID,
        "type": "user.provisioned",
    }


def test_v1_signature_matches_the_reference_signer_exactly() -> None:
    """For a fixed id and timestamp our v1 signature is byte-identical to the library's."""
    from datetime import UTC, datetime

    secret = generate_secret()
    ours = Signer([secret]).headers(MSG_ID, BODY, timestamp=1674087231)["webhook-signature"]
    theirs = Webhook(secret).sign(MSG_ID, datetime.fromtimestamp(1674087231, UTC), BODY.decode())
    assert ours == theirs


def test_two_secrets_sign_twice_and_either_verifies() -> None:
    """During rotation every secret signs; a receiver holding either one accepts the message."""
    old, new = generate_secret(), generate_secret()
    headers = Signer([old, new]).headers(MSG_ID, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_secrets_string_splits_on_spaces_and_commas() -> None:
    """SCIM_WEBHOOK_SECRET may list several secrets separated by spaces and/or commas."""
    a, b, c = generate_secret(), generate_secret(), generate_secret()
    assert split_secrets(f" {a}, {b}\n{c},") == [a, b, c]
    assert split_secrets("") == []
    assert split_secrets(None) == []
    headers = Signer(f"{a},{b} {c}").headers(MSG_ID, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 3
    for secret in (a, b, c):
        Webhook(secret).verify(BODY, headers)


def test_duplicate_secret_signs_once() -> None:
    """The same secret listed twice produces one signature, not two identical ones."""
    secret = generate_secret()
    assert len(Signer([secret, secret]).headers(MSG_ID, BODY)["webhook-signature"].split()) == 1


def test_v1a_verifies_with_cryptography_from_the_public_key() -> None:
    """v1a is an Ed25519 signature over id.timestamp.body, checkable from the whpk_ key alone."""
    whsk, whpk = generate_signing_key()
    signer = Signer([], whsk)
    assert signer.public_key() == whpk
    headers = signer.headers(MSG_ID, BODY, timestamp=1700000000)
    (entry,) = headers["webhook-signature"].split(" ")
    version, signature = entry.split(",")
    assert version == "v1a"
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))
    public.verify(base64.b64decode(signature), f"{MSG_ID}.1700000000.".encode() + BODY)
    assert verify_v1a(whpk, MSG_ID, 1700000000, BODY, headers["webhook-signature"])


def test_v1a_fails_for_tampered_body_timestamp_or_id() -> None:
    """Changing any signed part (body, timestamp, id) or using another key breaks v1a."""
    whsk, whpk = generate_signing_key()
    sig = Signer([], whsk).headers(MSG_ID, BODY, timestamp=1700000000)["webhook-signature"]
    assert verify_v1a(whpk, MSG_ID, "1700000000", BODY, sig)
    assert not verify_v1a(whpk, MSG_ID, 1700000000, BODY + b" ", sig)
    assert not verify_v1a(whpk, MSG_ID, 1700000001, BODY, sig)
    assert not verify_v1a(whpk, MSG_ID.replace("7", "8"), 1700000000, BODY, sig)
    assert not verify_v1a(generate_signing_key()[1], MSG_ID, 1700000000, BODY, sig)
    assert not verify_v1a(whpk, MSG_ID, 1700000000, BODY, "v1a,not-base64!!")
    assert not verify_v1a(whpk, MSG_ID, 1700000000, BODY, "v1," + sig.split(",")[1])


def test_v1_and_v1a_together() -> None:
    """With secrets and a signing key the header carries both kinds, each verifiable."""
    secret = generate_secret()
    whsk, whpk = generate_signing_key()
    headers = Signer([secret], whsk).headers(MSG_ID, BODY)
    versions = [entry.split(",")[0] for entry in headers["webhook-signature"].split(" ")]
    assert versions == ["v1", "v1a"]
    Webhook(secret).verify(BODY, headers)
    assert verify_v1a(
        whpk, MSG_ID, headers["webhook-timestamp"], BODY, headers["webhook-signature"]
    )


def test_pem_and_whsk_give_the_same_public_key() -> None:
    """A PKCS#8 PEM (also with literal \\n escapes, as env vars carry it) equals its whsk_ seed."""
    key = Ed25519PrivateKey.generate()
    pem = _pem(key)
    from_seed = Signer([], _whsk(key))
    from_pem = Signer([], pem)
    from_escaped = Signer([], pem.strip().replace("\n", "\\n"))
    expected = "whpk_" + base64.b64encode(key.public_key().public_bytes_raw()).decode()
    assert from_seed.public_key() == from_pem.public_key() == from_escaped.public_key() == expected
    sig_seed = from_seed.headers(MSG_ID, BODY, timestamp=1)["webhook-signature"]
    sig_pem = from_pem.headers(MSG_ID, BODY, timestamp=1)["webhook-signature"]
    assert sig_seed == sig_pem  # Ed25519 signatures are deterministic


def test_whsk_accepts_the_64_byte_seed_and_public_form() -> None:
    """libsodium-style 64-byte secret keys (seed || public) are accepted when consistent."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    signer = Signer([], "whsk_" + base64.b64encode(raw).decode())
    assert signer.public_key() == Signer([], _whsk(key)).public_key()
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(ValueError, match="does not match"):
        Signer([], "whsk_" + base64.b64encode(key.private_bytes_raw() + other).decode())


def test_generated_material_has_the_documented_shapes() -> None:
    """whsec_ carries 24+ random bytes; whsk_/whpk_ carry 32 bytes each."""
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) >= 24
    assert generate_secret() != secret
    whsk, whpk = generate_signing_key()
    assert len(base64.b64decode(whsk.removeprefix("whsk_"))) == 32
    assert len(base64.b64decode(whpk.removeprefix("whpk_"))) == 32
    assert Signer([secret]).public_key() is None
    with pytest.raises(ValueError):
        generate_secret(16)


SECRET_BODY = base64.b64encode(b"S3CR3T-material-0123456789abcdef").decode()


@pytest.mark.parametrize(
    ("secrets", "signing_key", "message"),
    [
        ([], None, "at least one"),
        ([SECRET_BODY], None, "whsec_"),
        (["whsec_" + SECRET_BODY[:-4] + "!!!!"], None, "base64"),
        (["whsec_" + base64.b64encode(b"short-S3CR3T").decode()], None, "24 to 64"),
        (["whsec_" + base64.b64encode(b"S3CR3T" * 20).decode()], None, "24 to 64"),
        ([], "S3CR3T" + SECRET_BODY, "whsk_"),
        ([], "whsk_" + SECRET_BODY[:-4] + "!!!!", "base64"),
        ([], "whsk_" + base64.b64encode(b"S3CR3T" * 3).decode(), "32 bytes"),
        ([], "-----BEGIN PRIVATE KEY-----\nS3CR3Tgarbage\n-----END PRIVATE KEY-----", "PEM"),
    ],
)
def test_bad_inputs_raise_without_echoing_the_key(
    secrets: list[str], signing_key: str | None, message: str
) -> None:
    """Config validation gets a clear ValueError that names the problem, never the value."""
    with pytest.raises(ValueError, match=message) as caught:
        Signer(secrets, signing_key)
    text = str(caught.value)
    assert "S3CR3T" not in text
    assert SECRET_BODY not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_bad_secret_names_its_position() -> None:
    """With several secrets the error says which one is wrong."""
    with pytest.raises(ValueError, match="#2"):
        Signer([generate_secret(), "whsec_S3CR3T"])


def test_rsa_pem_is_rejected() -> None:
    """A PEM key of another algorithm is refused: v1a is Ed25519 only."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        Signer([], pem)


def test_repr_hides_key_material() -> None:
    """repr/str show counts only, never a secret or a key."""
    secret = generate_secret()
    whsk, _whpk = generate_signing_key()
    signer = Signer([secret], whsk)
    for text in (repr(signer), str(signer), f"{signer}", repr([signer])):
        assert secret[6:] not in text
        assert whsk[5:] not in text
        assert "whsec" not in text
    assert repr(signer) == "Signer(v1_secrets=1, v1a=yes)"
    assert not hasattr(signer, "__dict__")


def test_message_id_with_a_dot_is_refused() -> None:
    """Spec: the id is a delimiter-free part of the signed content."""
    with pytest.raises(ValueError, match="webhook-id"):
        Signer([generate_secret()]).headers("msg.1", BODY)


def test_verify_v1a_rejects_a_malformed_public_key() -> None:
    """A public key that is not whpk_ + 32 bytes is a caller error, not a failed check."""
    with pytest.raises(ValueError, match="whpk_"):
        verify_v1a("pk_abc", MSG_ID, 1, BODY, "v1a,AAAA")
    with pytest.raises(ValueError, match="32"):
        verify_v1a("whpk_" + base64.b64encode(b"x" * 8).decode(), MSG_ID, 1, BODY, "")
