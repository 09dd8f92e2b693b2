"""No secret is ever printed: `config check` (text and --json), configuration errors and log
lines mask the userinfo and query of every URL, and every token, secret and key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from scim_service.config import ConfigError, effective, load_settings
from scim_service.logs import configure_logging, get_logger
from scim_service.signing import generate_secret, generate_signing_key
from tests.support import clean_env

REPO = Path(__file__).resolve().parents[2]

SECRET_WORDS = (
    "pg-pass-0001",
    "pg-query-0002",
    "hook-user-0003",
    "hook-pass-0004",
    "nats-pass-0005",
    "nats-token-0006",
    "nats-query-0007",
    "admin-token-0008-abcdef",
    "metrics-token-0009-abcdef",
)


def secret_env() -> dict[str, str]:
    return {
        "DATABASE_URL": "postgresql://scim:pg-pass-0001@db.internal:5432/scim?sslpassword=pg-query-0002",
        "SCIM_WEBHOOK_URL": "https://hook-user-0003:hook-pass-0004@hooks.example.com/scim",
        "SCIM_NATS_URL": (
            "nats://natsuser:nats-pass-0005@n1.internal:4222,"
            "nats://nats-token-0006@n2.internal:4222,tls://n3.internal:4222?token=nats-query-0007"
        ),
        "SCIM_ADMIN_TOKEN": "admin-token-0008-abcdef",
        "SCIM_METRICS_TOKEN": "metrics-token-0009-abcdef",
        "SCIM_WEBHOOK_SECRET": generate_secret(),
        "SCIM_WEBHOOK_SIGNING_KEY": generate_signing_key()[0],
    }


def assert_no_secret(text: str, env: dict[str, str]) -> None:
    for word in (*SECRET_WORDS, env["SCIM_WEBHOOK_SECRET"], env["SCIM_WEBHOOK_SIGNING_KEY"]):
        assert word not in text, f"{word} was printed"
    # The secret part of a key is never printed, even partially.
    assert env["SCIM_WEBHOOK_SECRET"].removeprefix("whsec_")[:12] not in text


@pytest.mark.parametrize("as_json", [True, False])
def test_config_check_masks_every_url_credential_and_secret(as_json: bool) -> None:
    env = secret_env()
    base = clean_env()
    proc = subprocess.run(
        [sys.executable, "-m", "scim_service", "config", "check", *(["--json"] if as_json else [])],
        env=base | env | {"SCIM_LOG_FORMAT": "json"},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert_no_secret(proc.stdout + proc.stderr, env)
    assert "hooks.example.com" in proc.stdout and "n3.internal:4222" in proc.stdout
    if as_json:
        values = json.loads(proc.stdout)
        assert values["database_url"] == (
            "postgresql://scim:***@db.internal:5432/scim?sslpassword=***"
        )
        assert values["webhook_url"] == "https://***@hooks.example.com/scim"
        assert values["nats_url"] == (
            "nats://***@n1.internal:4222,nats://***@n2.internal:4222,"
            "tls://n3.internal:4222?token=***"
        )


def test_the_effective_configuration_holds_no_secret() -> None:
    env = secret_env()
    assert_no_secret(json.dumps(effective(load_settings(env)), default=str), env)


def test_configuration_errors_do_not_echo_credentials() -> None:
    env = {
        "SCIM_WEBHOOK_URL": "https://hook-user-0003:hook-pass-0004@hooks.example.com/x?t=pg-query-0002",
        "SCIM_PUBLIC_URL": "ftp://hook-user-0003:hook-pass-0004@scim.example.com",
        "SCIM_NATS_URL": "http://natsuser:nats-pass-0005@n1.internal:4222",
        "DATABASE_URL": "mysql://scim:pg-pass-0001@db.internal/scim",
        "SCIM_ADMIN_TOKEN": "short",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value)
    for name in ("SCIM_WEBHOOK_URL", "SCIM_PUBLIC_URL", "SCIM_NATS_URL", "DATABASE_URL"):
        assert name in text
    for word in SECRET_WORDS:
        assert word not in text


@pytest.fixture(name="_restore_logging")
def fixture_restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_mask_url_credentials_and_tokens(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever a library puts into an error message (a URL with its password, a token),
    the log line masks it; tracebacks included."""
    configure_logging(fmt, "debug", cache=False)
    log = get_logger("test")
    token = "scim_" + "A" * 43
    log.warning(
        "sink_error",
        error="cannot connect to nats://natsuser:nats-pass-0005@n1:4222/?token=nats-query-0007",
        servers=["nats://nats-token-0006@n2:4222"],
        detail=f"bad token {token}",
    )
    try:
        raise RuntimeError("POST https://hook-user-0003:hook-pass-0004@hooks.example.com failed")
    except RuntimeError:
        log.exception("unhandled_error")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "sink_error" in text and "unhandled_error" in text and "n1:4222" in text
    for word in SECRET_WORDS:
        assert word not in text
    assert token not in text
