"""Masking credentials: URLs keep where they point, never who they are or what they carry."""

from __future__ import annotations

import pytest

from scim_service.redact import mask_text, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.example.com/scim", "https://hooks.example.com/scim"),
        ("https://u:p@hooks.example.com/scim", "https://***@hooks.example.com/scim"),
        ("https://tok@hooks.example.com/x?a=1&b", "https://***@hooks.example.com/x?a=***&***"),
        ("nats://a:1,nats://u:p@b:2,tls://t@c:3", "nats://a:1,nats://***@b:2,tls://***@c:3"),
        ("postgresql:///db?host=/tmp&password=pw", "postgresql:///db?host=***&password=***"),
        ("https://u:p:q@h@x.example.com/", "https://***@x.example.com/"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_dsn_keeps_its_account_name() -> None:
    assert mask_url("postgresql://scim:pw@db:5432/scim", keep_user=True) == (
        "postgresql://scim:***@db:5432/scim"
    )


def test_mask_text_finds_credentials_anywhere() -> None:
    token = "scim_" + "x" * 43
    text = f"connect nats://u:pw@h:4222/?t=q failed; token {token}; key whsk_abcdefghijklmnop"
    out = mask_text(text)
    assert "pw" not in out and "t=q" not in out and token not in out and "abcdefgh" not in out
    assert "h:4222" in out
