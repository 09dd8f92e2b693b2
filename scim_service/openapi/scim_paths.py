"""The SCIM API's operations (RFC 7644 §3, §4): discovery, Users, Groups, `.search`."""

from __future__ import annotations

from typing import Any

from scim_service.openapi.bodies import SCIM
from scim_service.openapi.helpers import (
    ID,
    IF_MATCH,
    IF_NONE_MATCH,
    LIST,
    PROJECTION,
    linked,
    ok,
    op,
    param,
    request_body,
)


def resource_ops(kind: str, endpoint: str) -> dict[str, dict[str, Any]]:
    """Users or Groups: the same seven operations (RFC 7644 §3.3-§3.6)."""
    one = f"A {kind} (RFC 7644 §3.4.1); ETag header carries meta.version"
    lst = f"{kind}ListResponse"
    tag = f"{kind}s"
    coll = f"{SCIM}/{endpoint}"
    item = f"{coll}/{{id}}"
    return {
        f"GET {coll}": op(
            f"List or filter {kind}s (RFC 7644 §3.4.2)",
            ok("200", lst, "One page of results", scim=True),
            tag=tag,
            op_id=f"list{kind}s",
            params=LIST,
        ),
        f"POST {coll}": op(
            f"Create a {kind} (RFC 7644 §3.3)",
            linked(
                ok("201", kind, f"The created {kind}, with Location and ETag", scim=True),
                {
                    f"{verb}{kind}": {
                        "operationId": f"{verb}{kind}",
                        "parameters": {"id": "$response.body#/id"},
                    }
                    for verb in ("get", "replace", "patch", "delete")
                },
            ),
            tag=tag,
            op_id=f"create{kind}",
            params=PROJECTION,
            body=request_body(f"{kind}Request"),
            errors=("409",),
        ),
        f"POST {coll}/.search": op(
            f"Search {kind}s with a SearchRequest (RFC 7644 §3.4.3)",
            ok("200", lst, "One page of results", scim=True),
            tag=tag,
            op_id=f"search{kind}s",
            body=request_body("SearchRequest"),
        ),
        f"GET {item}": op(
            f"Read one {kind}",
            {
                **ok("200", kind, one, scim=True),
                "304": {"description": "If-None-Match matched the current version"},
            },
            tag=tag,
            op_id=f"get{kind}",
            params=[ID, IF_NONE_MATCH, *PROJECTION],
            errors=("404",),
        ),
        f"PUT {item}": op(
            f"Replace a {kind} (RFC 7644 §3.5.1)",
            ok("200", kind, f"The {kind} after the change", scim=True),
            tag=tag,
            op_id=f"replace{kind}",
            params=[ID, IF_MATCH, *PROJECTION],
            body=request_body(f"{kind}Request"),
            errors=("404", "409", "412"),
        ),
        f"PATCH {item}": op(
            f"Modify a {kind} (RFC 7644 §3.5.2), atomically",
            ok("200", kind, f"The {kind} after the change", scim=True),
            tag=tag,
            op_id=f"patch{kind}",
            params=[ID, IF_MATCH, *PROJECTION],
            body=request_body("PatchOp"),
            errors=("404", "409", "412"),
        ),
        f"DELETE {item}": op(
            f"Delete a {kind} (RFC 7644 §3.6)",
            {"204": {"description": "Deleted"}},
            tag=tag,
            op_id=f"delete{kind}",
            params=[ID, IF_MATCH],
            errors=("404", "412"),
        ),
    }


def discovery_ops() -> dict[str, dict[str, Any]]:
    def get(summary: str, schema: str, text: str, op_id: str, what: str = "") -> dict[str, Any]:
        """A discovery GET; `what` describes the {id} of one item."""
        params = [param("id", "path", what)] if what else None
        answer = ok("200", schema, text, scim=True)
        errors = ("404",) if what else ()
        return op(summary, answer, tag="Discovery", op_id=op_id, params=params, errors=errors)

    doc, listed = "DiscoveryDocument", "ListResponse"
    return {
        f"GET {SCIM}/ServiceProviderConfig": get(
            "What this service supports (RFC 7644 §4)",
            doc,
            "The ServiceProviderConfig",
            "getServiceProviderConfig",
        ),
        f"GET {SCIM}/ResourceTypes": get(
            "Resource types (RFC 7644 §4)", listed, "User and Group", "listResourceTypes"
        ),
        f"GET {SCIM}/ResourceTypes/{{id}}": get(
            "One resource type", doc, "The ResourceType", "getResourceType", "User or Group"
        ),
        f"GET {SCIM}/Schemas": get("Schemas (RFC 7644 §4)", listed, "Every schema", "listSchemas"),
        f"GET {SCIM}/Schemas/{{id}}": get(
            "One schema, by URN", doc, "The Schema", "getSchema", "The schema URN"
        ),
        f"POST {SCIM}/.search": op(
            "Search Users then Groups (RFC 7644 §3.4.3)",
            ok("200", "SearchListResponse", "One page over Users then Groups", scim=True),
            tag="Discovery",
            op_id="searchAll",
            body=request_body("SearchRequest"),
        ),
    }
