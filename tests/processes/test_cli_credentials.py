"""`scim-service credential create|list|revoke` (issue 22), run as operators run it."""

from __future__ import annotations

from typing import Any

from tests.support import cli, ok_json


async def test_credential_commands(client: Any, database_url: str) -> None:
    """create prints the credential once (it then works on the admin API within its scope),
    list shows prefixes only, revoke makes it 401; bad scopes exit 1 or 2 with a message."""
    org = ok_json(cli(database_url, "org", "create", "Acme", "--json"))
    created = ok_json(
        cli(
            database_url,
            "credential",
            "create",
            "--scope",
            "events:read",
            "--org",
            org["id"],
            "--ttl-days",
            "7",
            "--json",
        )
    )
    token, info = created["token"], created["info"]
    assert token.startswith("scimadm_") and info["org_ids"] == [org["id"]]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/admin/v1/events", headers=auth)).status == 200
    assert (await client.get("/admin/v1/orgs", headers=auth)).status == 403
    listed = cli(database_url, "credential", "list")
    assert listed.returncode == 0 and token not in listed.stdout
    assert info["display_prefix"] + "…" in listed.stdout and "events:read" in listed.stdout
    human = cli(database_url, "credential", "create", "--scope", "operator")
    assert human.returncode == 0 and "shown only this once" in human.stdout
    revoked = ok_json(cli(database_url, "credential", "revoke", info["id"], "--json"))
    assert revoked["state"] == "revoked"
    assert (await client.get("/admin/v1/events", headers=auth)).status == 401
    bad = cli(database_url, "credential", "create", "--scope", "org:admin")
    assert bad.returncode == 1 and "exactly one organization" in bad.stderr
    assert cli(database_url, "credential", "create", "--scope", "root").returncode == 2


def test_cli_changes_are_in_the_audit_trail(database_url: str) -> None:
    """A changing command is an entry (actor cli:USER, action, organization, object, outcome),
    a failed one too; a read is none; `audit --org` narrows to one organization."""
    org = ok_json(cli(database_url, "org", "create", "Acme", "--json"))
    token = ok_json(cli(database_url, "token", "create", org["id"], "--json"))
    assert cli(database_url, "token", "list", org["id"]).returncode == 0
    missing = "00000000-0000-0000-0000-000000000001"
    assert cli(database_url, "token", "revoke", missing).returncode == 1
    found = ok_json(cli(database_url, "audit", "--json"))
    assert [(e["action"], e["outcome"], e["status"]) for e in found] == [
        ("org.create", "ok", 0),
        ("token.create", "ok", 0),
        ("token.revoke", "failed", 1),
    ]
    assert all(e["actor"].startswith("cli:") for e in found)
    assert found[1]["org_id"] == org["id"] and found[1]["target"] == f"id={token['info']['id']}"
    assert found[2]["target"] == f"token_id={missing}" and "not found" in found[2]["detail"]
    assert token["token"] not in str(found)
    mine = ok_json(cli(database_url, "audit", "--org", org["id"], "--json"))
    assert [e["action"] for e in mine] == ["org.create", "token.create"]
    human = cli(database_url, "audit")
    assert human.returncode == 0 and "token.create" in human.stdout
