"""The event JSON Schemas and the AsyncAPI document: generated from the structs, committed
current, served, and true of every event the service writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest

from scim_service.events import envelope, schemas
from tests.conftest import Tenant
from tests.support import create_user, patch_user

GOLDEN = Path(__file__).resolve().parents[1] / "golden_events"


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The published schema, but every property required and no other allowed: the events
    must be exactly what the structs describe (the published one stays open for additions)."""
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node["required"] = sorted(node["properties"])
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


def validators(event_type: str) -> list[jsonschema.Draft202012Validator]:
    schema = schemas.schemas()[event_type]
    jsonschema.Draft202012Validator.check_schema(schema)
    return [jsonschema.Draft202012Validator(s) for s in (schema, strict(schema))]


def test_committed_documents_are_current() -> None:
    """schemas.json and asyncapi.json are what the structs generate now."""
    assert schemas.SCHEMAS_FILE.read_text("utf-8") == schemas.render(schemas.schemas()), (
        "python -m scim_service.events.schemas"
    )
    assert schemas.ASYNCAPI_FILE.read_text("utf-8") == schemas.render(schemas.asyncapi())


@pytest.mark.parametrize("event_type", envelope.EVENT_TYPES)
def test_golden_events_validate(event_type: str) -> None:
    """Every documented golden event is valid against its type's schema (open and strict),
    and not against another type's."""
    event = json.loads((GOLDEN / f"{event_type}.json").read_text())
    for v in validators(event_type):
        v.validate(event)
    other = next(t for t in envelope.EVENT_TYPES if t != event_type)
    assert not jsonschema.Draft202012Validator(schemas.schemas()[other]).is_valid(event)


def test_a_wrong_event_is_rejected() -> None:
    """The schemas say something: a missing member or a wrong type fails."""
    event = json.loads((GOLDEN / "user.updated.json").read_text())
    [open_, strict_] = validators("user.updated")
    broken = copy.deepcopy(event)
    del broken["data"]["changed"]
    assert not open_.is_valid(broken)
    broken = copy.deepcopy(event)
    broken["resourceversion"] = "2"
    assert not open_.is_valid(broken)
    broken = copy.deepcopy(event)
    broken["data"]["surprise"] = 1
    assert open_.is_valid(broken) and not strict_.is_valid(broken)


async def test_every_written_event_validates(
    client: Any, tenant: Tenant, db: asyncpg.Connection, admin_headers: dict[str, str]
) -> None:
    """The events real writes produce, of every type, are valid against the strict schemas;
    the endpoint serves the same documents."""
    user = await create_user(client, tenant)
    uid = user["id"]
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    await patch_user(
        client,
        tenant,
        uid,
        {"op": "replace", "path": "title", "value": "Guide"},
        {"op": "replace", "path": f"{ext}:department", "value": "Ops"},
    )
    # A guard that trips on one deprovision, so directory.guard_tripped is written too.
    resp = await client.patch(
        f"/admin/v1/orgs/{tenant.org_id}/guard",
        json={"percent": 1, "min_users": 1},
        headers=admin_headers,
    )
    assert resp.status == 200, await resp.text()
    await patch_user(client, tenant, uid, {"op": "replace", "path": "active", "value": False})
    guard = f"/admin/v1/orgs/{tenant.org_id}/guard"
    resp = await client.post(f"{guard}/release", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await patch_user(client, tenant, uid, {"op": "replace", "path": "active", "value": True})
    await client.post(
        f"/admin/v1/orgs/{tenant.org_id}/users/{uid}/setup-complete", headers=admin_headers
    )
    resp = await client.post(
        "/scim/v2/Groups",
        json={"displayName": "Eng", "members": [{"value": uid}]},
        headers=tenant.headers,
    )
    gid = (await resp.json(content_type=None))["id"]
    resp = await client.put(
        f"/scim/v2/Groups/{gid}",
        json={"displayName": "Engineering", "externalId": "e1"},
        headers=tenant.headers,
    )
    assert resp.status == 200
    assert (await client.delete(f"/scim/v2/Users/{uid}", headers=tenant.headers)).status == 204
    assert (await client.delete(f"/scim/v2/Groups/{gid}", headers=tenant.headers)).status == 204
    # The user's delete tripped the guard again: a release delivers the held deletes.
    other = await create_user(client, tenant, userName="other@example.com")
    resp = await client.post(f"{guard}/release", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await patch_user(
        client, tenant, other["id"], {"op": "replace", "path": "active", "value": False}
    )
    resp = await client.post(f"{guard}/reject", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    rows = await db.fetch("SELECT payload FROM events ORDER BY seq")
    events = [json.loads(r["payload"]) for r in rows]
    assert {e["type"] for e in events} == set(envelope.EVENT_TYPES)
    for event in events:
        for v in validators(event["type"]):
            v.validate(event)
    updated = next(e for e in events if e["type"] == "user.updated")
    assert updated["data"]["changed"] == ["title", f"{ext}:department"]
    assert updated["data"]["previous"] == {"title": None, f"{ext}:department": None}
    renamed = next(e for e in events if "renamed" in e["data"].get("changes", []))
    assert renamed["data"]["previous"] == {"displayName": "Eng", "externalId": None}
    assert renamed["data"]["previous_display_name"] == "Eng"

    served = await client.get("/admin/v1/events/schemas", headers=admin_headers)
    body = await served.json()
    assert served.status == 200
    assert body == json.loads(
        json.dumps({"schemas": schemas.schemas(), "asyncapi": schemas.asyncapi()})
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_asyncapi_document_is_complete() -> None:
    """AsyncAPI 3.0: both channels carry a message for every event type, the operations send
    them, and every $ref resolves inside the document."""
    doc = schemas.asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {"webhook", "nats"}
    for channel in doc["channels"].values():
        names = {m["$ref"].rsplit("/", 1)[1] for m in channel["messages"].values()}
        titles = {doc["components"]["messages"][n]["name"] for n in names}
        assert titles == set(envelope.EVENT_TYPES)
    assert {o["action"] for o in doc["operations"].values()} == {"send"}
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)
