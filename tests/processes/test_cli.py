"""The console script, run as operators run it: a real process against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support import clean_env, cli, ok_json


def test_org_and_token_commands(database_url: str) -> None:
    org = ok_json(cli(database_url, "org", "create", "Acme", "--json"))
    assert org["name"] == "Acme" and org["scim_enabled"] is True
    org_id = org["id"]

    orgs = ok_json(cli(database_url, "org", "list", "--json"))
    assert [o["id"] for o in orgs] == [org_id]

    created = ok_json(
        cli(
            database_url,
            "token",
            "create",
            org_id,
            "--description",
            "JumpCloud",
            "--ttl-days",
            "30",
            "--json",
        )
    )
    token = created["token"]
    assert token.startswith("scim_")
    assert created["info"]["description"] == "JumpCloud"
    assert created["info"]["expires_at"] is not None

    tokens = ok_json(cli(database_url, "token", "list", org_id, "--json"))
    assert len(tokens) == 1 and tokens[0]["state"] == "active"
    assert token not in json.dumps(tokens)

    disabled = ok_json(cli(database_url, "org", "scim", "disable", org_id, "--json"))
    assert disabled["scim_enabled"] is False
    enabled = ok_json(cli(database_url, "org", "scim", "enable", org_id, "--json"))
    assert enabled["scim_enabled"] is True

    revoked = ok_json(cli(database_url, "token", "revoke", tokens[0]["id"], "--json"))
    assert revoked["state"] == "revoked"


def test_human_output_shows_token_once_and_lists_prefix_only(database_url: str) -> None:
    org_id = ok_json(cli(database_url, "org", "create", "Acme", "--json"))["id"]
    out = cli(database_url, "token", "create", org_id)
    assert out.returncode == 0
    token = next(w for w in out.stdout.split() if w.startswith("scim_"))
    assert "SCIM Base URL:" in out.stdout and "only this once" in out.stdout
    listing = cli(database_url, "token", "list", org_id)
    assert listing.returncode == 0
    assert token[:11] in listing.stdout and token not in listing.stdout
    assert "ACTIVE" not in listing.stdout and "active" in listing.stdout


def test_errors_exit_nonzero_with_a_message(database_url: str) -> None:
    missing = str(uuid.uuid4())
    proc = cli(database_url, "token", "list", missing)
    assert proc.returncode == 1
    assert f"Organization {missing} not found" in proc.stderr
    proc = cli(database_url, "token", "revoke", "not-a-uuid")
    assert proc.returncode == 2 and "is not a UUID" in proc.stderr
    cli(database_url, "org", "create", "Dup")
    proc = cli(database_url, "org", "create", "dup")
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_bad_configuration_exits_2_naming_each_variable(database_url: str) -> None:
    proc = cli(database_url, "org", "list", env={"SCIM_PORT": "x", "SCIM_LOG_LEVEL": "loud"})
    assert proc.returncode == 2
    assert "SCIM_PORT" in proc.stderr and "SCIM_LOG_LEVEL" in proc.stderr


def test_migrate_command(database_url: str) -> None:
    assert ok_json(cli(database_url, "migrate", "--json")) == {"applied": []}
    proc = cli(database_url, "migrate")
    assert proc.returncode == 0 and "up to date" in proc.stdout


@pytest.mark.parametrize(
    "command", [["org", "list"], ["token", "list", str(uuid.uuid4())], ["migrate"]]
)
def test_every_data_command_accepts_json(database_url: str, command: list[str]) -> None:
    proc = cli(database_url, *command, "--json")
    assert proc.returncode in (0, 1)
    if proc.returncode == 0:
        json.loads(proc.stdout)


async def test_events_orphans_commands(
    database_url: str, db: Any, tenant: Any, client: Any
) -> None:
    """`events stats` names a sink that is no longer configured; `events orphans move` hands
    its events to a configured sink; a configured sink's events cannot be discarded."""
    resp = await client.post(
        "/scim/v2/Users", json={"userName": "orphan@example.com"}, headers=tenant.headers
    )
    assert resp.status == 201
    await db.execute("UPDATE outbox SET sink = 'nats'")  # queued while NATS was configured
    stats = ok_json(cli(database_url, "events", "stats", "--json"))
    assert {"sink": "nats", "pending": 1, "configured": False}.items() <= next(
        s for s in stats if s["sink"] == "nats"
    ).items()
    refused = cli(database_url, "events", "orphans", "discard", "log")
    assert refused.returncode == 1 and "is configured" in refused.stderr
    moved = ok_json(cli(database_url, "events", "orphans", "move", "nats", "--to", "log", "--json"))
    assert moved == {"sink": "nats", "to": "log", "moved": 1}
    assert await db.fetchval("SELECT sink FROM outbox") == "log"
    gone = ok_json(cli(database_url, "events", "orphans", "discard", "nats", "--json"))
    assert gone == {"sink": "nats", "discarded": 0}


def test_a_reader_that_stops_early_is_not_a_database_error() -> None:
    """`scim-service config check | head -1`: the closed pipe ends the command quietly (exit 0),
    never as "database error: BrokenPipeError"."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_service", "config", "check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "database error" not in err and "Traceback" not in err
