"""Masking credentials: URLs keep where they point, never who they are or what they carry."""

from __future__ import annotations

import string
import traceback
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_service import errors
from scim_service.activity import mask_body
from scim_service.redact import is_secret_name, mask_text, mask_url, redact_processor
from scim_service.signing import Signer, generate_secret
from scim_service.tokens import generate_token


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


# --- secrets in bodies, by construction (issue 22) ---------------------------------------------

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CUSTOM = "urn:example:params:scim:schemas:extension:acme:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Every spelling of a secret an IdP, a platform or a person is known to send.
KNOWN_SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "newPassword",
    "oldPassword",
    "userPassword",
    "token",
    "access_token",
    "accessToken",
    "refresh_token",
    "id_token",
    "bearerToken",
    "secret",
    "client_secret",
    "clientSecret",
    "webhook_secret",
    "api_key",
    "apiKey",
    "x-api-key",
    "private_key",
    "privateKey",
    "signing_key",
    "authorization",
    "credentials",
)


def _op(path: str | None, value: Any, *, path_key: str = "path", value_key: str = "value") -> Any:
    op: dict[str, Any] = {"op": "Replace", value_key: value}
    if path is not None:
        op[path_key] = path
    return {"schemas": [PATCH], "Operations": [{"op": "add", "path": "title", "value": "x"}, op]}


# Each form: (key as the IdP spells it, the secret) → a request body holding the secret.
FORMS: dict[str, Callable[[str, str], Any]] = {
    "plain": lambda k, s: {"userName": "ann", k: s},
    "urn": lambda k, s: {"userName": "ann", f"{CORE}:{k}": s},
    "enterprise object": lambda k, s: {ENTERPRISE: {"department": "x", k: s}},
    "custom extension nested": lambda k, s: {CUSTOM: {"device": {k: s}}},
    "urn key in extension object": lambda k, s: {CUSTOM: {f"{CUSTOM}:{k}": s}},
    "value list": lambda k, s: {k: [s, {"value": s}]},
    "inside a multi-valued attribute": lambda k, s: {"emails": [{"value": "a@b.c", k: s}]},
    "patch path": lambda k, s: _op(k, s),
    "patch path upper keys": lambda k, s: _op(k, s, path_key="PATH", value_key="Value"),
    "patch urn path": lambda k, s: _op(f"{CORE}:{k}", s),
    "patch value filter": lambda k, s: _op(f'{k}[type eq "work"]', s),
    "patch value filter sub-attribute": lambda k, s: _op(f'{k}[type eq "work"].value', s),
    "patch urn value filter": lambda k, s: _op(f'{CORE}:{k}[type eq "a:b"].value', s),
    "patch sub-attribute": lambda k, s: _op(f"name.{k}", s),
    "patch extension sub-attribute": lambda k, s: _op(f"{ENTERPRISE}:{k}", s),
    "patch value list": lambda k, s: _op(k, [s, {"value": s}]),
    "patch object value": lambda k, s: _op(k, {"value": s}),
    "path-less patch": lambda k, s: _op(None, {k: s, "active": "maybe"}),
    "path-less patch urn (Entra)": lambda k, s: _op(None, {f"{CORE}:{k}": s}),
    "path-less patch extension": lambda k, s: _op(None, {ENTERPRISE: {k: s}}),
    "path-less patch list": lambda k, s: _op(None, [{k: s}]),
    "patch extension path": lambda k, s: _op(ENTERPRISE, {k: s}),
    "bulk": lambda k, s: {"Operations": [{"method": "POST", "data": {f"{CORE}:{k}": s}}]},
}


def _any_case(text: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if flips[i % len(flips)] else c for i, c in enumerate(text))


_secrets = st.text(alphabet=string.ascii_letters + string.digits + "!@#%^&*()", min_size=6).map(
    lambda s: "Sx9" + s
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(KNOWN_SECRET_KEYS),
    form=st.sampled_from(sorted(FORMS)),
    flips=st.lists(st.booleans(), min_size=1, max_size=12),
    secret=_secrets,
)
def test_no_secret_form_leaks(key: str, form: str, flips: list[bool], secret: str) -> None:
    """Every known secret key by every form a body can hold it in, keys and paths in any case
    (URNs included): the secret reaches neither the activity log's stored body, nor a log line,
    nor the masked value an error's detail is taken from."""
    body = FORMS[form](_any_case(key, flips), secret)
    raw = msgspec.json.encode(body)
    stored, value = mask_body(raw)
    assert stored is not None and secret not in stored, (form, stored)
    assert secret not in msgspec.json.encode(value).decode()
    line = redact_processor(None, "info", {"event": "x", "body": body, "raw": raw.decode()})
    assert secret not in repr(line), (form, line)
    # A body that does not parse is never kept.
    cut, _ = mask_body(raw[:-1])
    assert cut is not None and secret not in cut


@settings(max_examples=100, deadline=None)
@given(
    key=st.sampled_from(KNOWN_SECRET_KEYS),
    secret=_secrets,
    flips=st.lists(st.booleans(), min_size=1),
)
def test_no_secret_in_free_text(key: str, secret: str, flips: list[bool]) -> None:
    """`key=value`, `"key": "value"` and `key: value` in a message or an error's detail."""
    k = _any_case(key, flips)
    for text in (f"failed {k}={secret} x", f'{{"{k}": "{secret}"}}', f"{k}: {secret}"):
        assert secret not in mask_text(text)
        assert secret not in str(errors.InvalidValue(text).to_body())
        assert secret not in repr(redact_processor(None, "info", {"event": text}))


def test_fields_named_like_secrets_are_masked_in_log_lines() -> None:
    line = redact_processor(None, "info", {"event": "x", "client_secret": "abc", "token_id": "1"})
    assert line == {"event": "x", "client_secret": "***", "token_id": "1"}


def test_what_is_not_a_secret_stays() -> None:
    body = {
        "userName": "ann",
        "name": {"givenName": "Ann"},
        f"{ENTERPRISE}": {"manager": {"value": "m1"}},
        "Operations": [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@b"}],
    }
    stored, _ = mask_body(msgspec.json.encode(body))
    assert stored == msgspec.json.encode(body).decode()
    assert not is_secret_name("token_prefix") and not is_secret_name("tokens")
    assert is_secret_name(f"{CORE.upper()}:PASSWORD") and is_secret_name("Password[x eq 1]")


def test_tracebacks_keep_their_file_names() -> None:
    """A real traceback through the package's own code: every `scim_service/...` frame keeps
    its file name, a minted token in the message is masked (issue 22)."""
    token = generate_token()
    secret = generate_secret()
    try:
        try:
            Signer([token], None)
        except ValueError as exc:
            raise RuntimeError(f"could not sign with {token} or {secret}") from exc
    except RuntimeError:
        text = traceback.format_exc()
    assert "scim_service/signing.py" in text and token in text
    masked = mask_text(text)
    assert token not in masked and secret not in masked
    assert masked.count("scim_service/signing.py") == text.count("scim_service/signing.py")
    assert "scim_***.py" not in masked and "scim_***" in masked and "whsec_***" in masked
    line = redact_processor(None, "error", {"event": "boom", "exception": text})
    assert line["exception"] == masked
    for name in ("scim_service.http.admin", "scim_http_requests_total", "scim_tokens_expiring"):
        assert mask_text(name) == name
