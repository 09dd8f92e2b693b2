"""JSON Schema of every event type and the AsyncAPI 3.0 document, generated from the msgspec
structs of `envelope.py` (never written by hand).

Each type's schema is the CloudEvent envelope with `type` fixed to that type and `data` its
struct. Committed as `scim_service/events/schemas.json` and `scim_service/events/asyncapi.json`
(regenerate with `python -m scim_service.events.schemas`;
tests/integration/test_event_schemas.py fails while either is stale) and served at
`GET /admin/v1/events/schemas`.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec

from scim_service.events import envelope as ev

DIRECTORY = Path(__file__).parent
SCHEMAS_FILE = DIRECTORY / "schemas.json"
ASYNCAPI_FILE = DIRECTORY / "asyncapi.json"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"

DATA: dict[str, type[msgspec.Struct]] = {
    ev.USER_PROVISIONED: ev.UserProvisioned,
    ev.USER_UPDATED: ev.UserUpdated,
    ev.USER_DEPROVISIONED: ev.UserDeprovisioned,
    ev.USER_REACTIVATED: ev.UserReactivated,
    ev.USER_SETUP_COMPLETED: ev.UserSetupCompleted,
    ev.GROUP_CHANGED: ev.GroupChanged,
    ev.DIRECTORY_GUARD_TRIPPED: ev.GuardTripped,
    ev.DIRECTORY_GUARD_RELEASED: ev.GuardDecided,
    ev.DIRECTORY_GUARD_REJECTED: ev.GuardDecided,
}
assert set(DATA) == set(ev.EVENT_TYPES)


def _name(event_type: str) -> str:
    return "".join(p.capitalize() for p in event_type.replace("_", ".").split(".")) + "Event"


def event_struct(event_type: str) -> type[msgspec.Struct]:
    """The CloudEvent of one type: `envelope.CloudEvent` with `type` and `data` narrowed."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(ev.CloudEvent):
        if f.name == "type":
            fields.append(("type", Literal[event_type]))
        elif f.name == "data":
            fields.append(("data", DATA[event_type]))
        elif f.name in ("specversion", "datacontenttype"):
            fields.append((f.name, Literal[f.default]))
        else:
            fields.append((f.name, f.type))
    return msgspec.defstruct(_name(event_type), fields, kw_only=True)


_STRUCTS = {t: event_struct(t) for t in ev.EVENT_TYPES}


@cache
def schemas() -> dict[str, Any]:
    """{event type: a standalone JSON Schema (2020-12) of that event}."""
    out: dict[str, Any] = {}
    for event_type, struct in _STRUCTS.items():
        schema = msgspec.json.schema(struct)
        out[event_type] = {
            "$schema": JSON_SCHEMA,
            "$id": f"urn:scim-service:events:{event_type}",
            "title": event_type,
            **schema,
        }
    return out


@cache
def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the webhook and NATS channels."""
    (_, components) = msgspec.json.schema_components(
        list(_STRUCTS.values()), ref_template="#/components/schemas/{name}"
    )
    messages = {
        _name(t): {
            "name": t,
            "title": t,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"#/components/schemas/{_name(t)}"},
        }
        for t in ev.EVENT_TYPES
    }
    refs = {n: {"$ref": f"#/components/messages/{n}"} for n in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "scim-service events",
            "version": "1",
            "description": (
                "CloudEvents 1.0 (structured JSON) for every SCIM change, delivered at least "
                "once, in resourceversion order per subject. See README, 'Consuming events'; "
                "the same events can be pulled from GET /admin/v1/events."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": {
            "webhook": {
                "address": None,
                "title": "Webhook (SCIM_WEBHOOK_URL)",
                "description": (
                    "POSTed to the configured SCIM_WEBHOOK_URL, signed per Standard Webhooks "
                    "(webhook-id, webhook-timestamp, webhook-signature headers: v1 HMAC-SHA256, "
                    "v1a Ed25519). A 2xx answer means delivered; 410 dead-letters."
                ),
                "messages": refs,
                "bindings": {"http": {"method": "POST"}},
            },
            "nats": {
                "address": "{prefix}.{orgid}.{type}",
                "title": "NATS JetStream (SCIM_NATS_URL)",
                "description": "Published with header Nats-Msg-Id = the event id.",
                "parameters": {
                    "prefix": {"description": "SCIM_NATS_SUBJECT_PREFIX (default scim)"},
                    "orgid": {"description": "The organization id (the orgid attribute)"},
                    "type": {"enum": list(ev.EVENT_TYPES), "description": "The event type"},
                },
                "messages": refs,
            },
        },
        "operations": {
            "deliverWebhook": {
                "action": "send",
                "channel": {"$ref": "#/channels/webhook"},
                "messages": [{"$ref": f"#/channels/webhook/messages/{n}"} for n in messages],
            },
            "publishNats": {
                "action": "send",
                "channel": {"$ref": "#/channels/nats"},
                "messages": [{"$ref": f"#/channels/nats/messages/{n}"} for n in messages],
            },
        },
        "components": {"schemas": components, "messages": messages},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write both committed documents (or, with --check, fail when either is stale)."""
    stale = []
    for path, doc in ((SCHEMAS_FILE, schemas()), (ASYNCAPI_FILE, asyncapi())):
        text = render(doc)
        if "--check" in sys.argv:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, "utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} (python -m scim_service.events.schemas)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
