"""Configuration: defaults, and one clear message per bad value."""

from __future__ import annotations

import pytest

from scim_service.config import ConfigError, load_settings


def test_defaults_without_environment() -> None:
    """With nothing set: embedded database, loopback:8080, admin API off."""
    s = load_settings({}, isatty=False)
    assert s.database_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.scim_base_url == "http://127.0.0.1:8080/scim/v2"
    assert s.admin_token is None
    assert s.log_format == "json"
    assert s.migrate_on_start is True


def test_console_logs_on_a_terminal() -> None:
    assert load_settings({}, isatty=True).log_format == "console"


def test_public_url_overrides_host_and_port() -> None:
    s = load_settings({"SCIM_PUBLIC_URL": "https://scim.example.com/", "SCIM_PORT": "9000"})
    assert s.scim_base_url == "https://scim.example.com/scim/v2"


def test_wildcard_host_prints_a_reachable_url() -> None:
    assert load_settings({"SCIM_HOST": "0.0.0.0"}).public_url == "http://127.0.0.1:8080"


def test_every_bad_value_is_reported_at_once() -> None:
    """An operator sees all problems in one start attempt, each naming its variable."""
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "SCIM_PORT": "eighty",
                "SCIM_LOG_FORMAT": "xml",
                "SCIM_LOG_LEVEL": "loud",
                "SCIM_PUBLIC_URL": "ftp://x",
                "SCIM_MIGRATE_ON_START": "perhaps",
                "DATABASE_URL": "mysql://u:hunter2@db/x",
                "SCIM_ADMIN_TOKEN": "short",
            }
        )
    text = str(info.value)
    for name in (
        "SCIM_PORT",
        "SCIM_LOG_FORMAT",
        "SCIM_LOG_LEVEL",
        "SCIM_PUBLIC_URL",
        "SCIM_MIGRATE_ON_START",
        "DATABASE_URL",
        "SCIM_ADMIN_TOKEN",
    ):
        assert name in text
    assert len(info.value.problems) == 7
    assert "hunter2" not in text, "a DSN password must never be echoed"
    assert "short" not in text.replace("too short", ""), "the admin token must never be echoed"


def test_port_out_of_range() -> None:
    with pytest.raises(ConfigError, match="SCIM_PORT=70000 is out of range"):
        load_settings({"SCIM_PORT": "70000"})


def test_pool_bounds_must_be_consistent() -> None:
    with pytest.raises(ConfigError, match="SCIM_DB_POOL_MIN=5 is larger"):
        load_settings({"SCIM_DB_POOL_MIN": "5", "SCIM_DB_POOL_MAX": "2"})


def test_booleans_accept_common_spellings() -> None:
    assert load_settings({"SCIM_MIGRATE_ON_START": "off"}).migrate_on_start is False
    assert load_settings({"SCIM_MIGRATE_ON_START": "YES"}).migrate_on_start is True
