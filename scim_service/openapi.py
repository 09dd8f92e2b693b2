"""The OpenAPI 3.1 document of the SCIM and admin APIs, built from the code that serves them.

Body schemas come from the definitions the service itself uses: User and Group from
`scim.schema` (the same attribute table that drives normalisation, filters and `/Schemas`),
admin bodies from the msgspec structs the handlers decode and encode
(`msgspec.json.schema_components`), and the SCIM messages (Error, PatchOp, SearchRequest,
ListResponse) from the structs below, which document what `errors.ScimError.to_body`,
`scim.patch`, `scim.query` and `list_response` accept and produce (tests check each against
the real thing). Operations are listed per route of `routes.py`; `tests/test_openapi.py`
fails when a route is missing here or here lists one the app lacks.

The document is committed as `scim_service/openapi.json` and served from there at
`GET /openapi.json`. Regenerate it after a change with

    .venv/bin/python -m scim_service.openapi > scim_service/openapi.json

(a test fails while the committed file is stale).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scim_service.http.admin import (
    CreatedToken,
    CreateOrg,
    CreateToken,
    ReplayRequest,
    RetryRequest,
)
from scim_service.scim import schema as s
from scim_service.scim.discovery import MAX_RESULTS
from scim_service.scim.patch import MAX_OPERATIONS
from scim_service.scim.resource import MAX_INDEXED, MAX_STRING
from scim_service.store.outbox import DeadLetter, SinkStats
from scim_service.store.tenants import Org, TokenInfo

SCIM = "/scim/v2"
ADMIN = "/admin/v1"
SCIM_JSON = "application/scim+json"
JSON = "application/json"
REF = "#/components/schemas/{name}"

ScimType = Literal[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
]


# --- SCIM messages (RFC 7644 §3.12, §3.5.2, §3.4.3, §3.4.2) --------------------------------


class Error(msgspec.Struct, kw_only=True):
    """RFC 7644 §3.12 error body: `status` is the HTTP status as a string. Admin errors use the
    same body (as `application/json`)."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:Error"]]
    status: str
    scimType: ScimType | UnsetType = UNSET
    detail: str


class PatchOperation(msgspec.Struct, kw_only=True):
    """One operation. `op` is case-insensitive (Entra sends "Replace"); `path` follows RFC 7644
    §3.5.2's PATH grammar (`emails[type eq "work"].value`, URN-qualified names)."""

    op: Literal["add", "remove", "replace", "Add", "Remove", "Replace"]
    path: str | UnsetType = UNSET
    value: Any | UnsetType = UNSET


class PatchOp(msgspec.Struct, kw_only=True):
    """RFC 7644 §3.5.2: applied atomically, all operations or none."""

    schemas: list[str]
    Operations: list[PatchOperation]


class SearchRequest(msgspec.Struct, kw_only=True):
    """RFC 7644 §3.4.3 (POST .search); member names are case-insensitive."""

    schemas: list[str] | UnsetType = UNSET
    filter: str | UnsetType = UNSET
    startIndex: int | UnsetType = UNSET
    count: int | UnsetType = UNSET
    sortBy: str | UnsetType = UNSET
    sortOrder: Literal["ascending", "descending"] | UnsetType = UNSET
    attributes: list[str] | UnsetType = UNSET
    excludedAttributes: list[str] | UnsetType = UNSET


class ListResponse(msgspec.Struct, kw_only=True):
    """RFC 7644 §3.4.2: `totalResults` is exact; `Resources` is one page."""

    schemas: list[Literal["urn:ietf:params:scim:api:messages:2.0:ListResponse"]]
    totalResults: int
    startIndex: int
    itemsPerPage: int
    Resources: list[dict[str, Any]]


# --- admin answers (the shapes `http/admin.py` encodes) -------------------------------------


class OrgList(msgspec.Struct):
    orgs: list[Org]


class TokenList(msgspec.Struct):
    tokens: list[TokenInfo]


class EventStats(msgspec.Struct):
    sinks: list[SinkStats]


class DeadLetters(msgspec.Struct):
    dead_letters: list[DeadLetter]


class Retried(msgspec.Struct):
    retried: list[uuid.UUID]


class Queued(msgspec.Struct):
    queued: int


class SigningKey(msgspec.Struct):
    algorithm: Literal["ed25519"]
    public_key: str


class Health(msgspec.Struct):
    status: str
    pending: list[str] | UnsetType = UNSET


_STRUCTS: tuple[type[Any], ...] = (
    Error,
    PatchOp,
    SearchRequest,
    ListResponse,
    CreateOrg,
    Org,
    OrgList,
    CreateToken,
    CreatedToken,
    TokenInfo,
    TokenList,
    RetryRequest,
    Retried,
    ReplayRequest,
    Queued,
    EventStats,
    DeadLetters,
    SigningKey,
    Health,
)

# JSON Schema types of RFC 7643 §2.3 attribute types.
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "decimal": {"type": "number"},
    "integer": {"type": "integer"},
    "dateTime": {"type": "string", "format": "date-time"},
    "reference": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
}
_INDEXED = frozenset(("userName", "externalId", "displayName"))


def _attr_schema(attr: s.Attr, path: str) -> dict[str, Any]:
    """An attribute of `scim.schema` as JSON Schema (what `scim.resource` accepts)."""
    if attr.type == "complex":
        one: dict[str, Any] = {
            "type": "object",
            "properties": {
                sub.name: _attr_schema(sub, f"{path}.{sub.name}") for sub in attr.sub_attributes
            },
        }
    else:
        one = dict(_TYPES[attr.type])
        if attr.type in ("string", "reference", "binary") and not attr.read_only:
            indexed = attr.name in _INDEXED or path == "emails.value"
            one["maxLength"] = MAX_INDEXED if indexed else MAX_STRING
    out: dict[str, Any] = {"type": "array", "items": one} if attr.multi_valued else one
    if attr.description:
        out["description"] = attr.description
    if attr.read_only:
        out["readOnly"] = True
    if attr.mutability == "writeOnly":
        out["writeOnly"] = True
    return out


def _meta_schema() -> dict[str, Any]:
    return _attr_schema(s.META, "meta")


def resource_schema(rtype: s.ResourceType) -> dict[str, Any]:
    """A User or Group: core attributes at the top, each extension under its URN. Unknown
    attributes are accepted and ignored (RFC 7643 §3; Entra adds its own)."""
    props: dict[str, Any] = {
        "schemas": {"type": "array", "items": {"type": "string"}},
        "id": {**_attr_schema(s.ID, "id"), "readOnly": True},
        "externalId": _attr_schema(s.EXTERNAL_ID, "externalId"),
        "meta": _meta_schema(),
    }
    for attr in rtype.schema.attributes:
        props[attr.name] = _attr_schema(attr, attr.name)
    for ext, _required in rtype.extensions:
        props[ext.id] = {
            "type": "object",
            "description": ext.description,
            "properties": {a.name: _attr_schema(a, a.name) for a in ext.attributes},
        }
    return {
        "type": "object",
        "description": f"{rtype.description} ({rtype.schema.id})",
        "properties": props,
    }


def _resource_request(rtype: s.ResourceType) -> dict[str, Any]:
    """POST and PUT bodies: the resource with its required attributes. (Answers may lack
    them: `attributes`/`excludedAttributes` project them away.)"""
    return {
        "allOf": [_ref(rtype.id)],
        "required": [a.name for a in rtype.schema.attributes if a.required],
    }


def _components() -> dict[str, Any]:
    _, structs = msgspec.json.schema_components(_STRUCTS, ref_template=REF)
    structs["Error"]["properties"]["status"] |= {
        "pattern": "^[1-5][0-9][0-9]$",
        "description": "The HTTP status code, as a string (RFC 7644 §3.12)",
    }
    ops = structs["PatchOp"]["properties"]["Operations"]
    ops |= {"minItems": 1, "maxItems": MAX_OPERATIONS}
    structs["SearchRequest"]["properties"]["count"] |= {
        "description": f"page size; negative means 0, at most {MAX_RESULTS}"
    }
    schemas: dict[str, Any] = {
        **structs,
        "User": resource_schema(s.USER_TYPE),
        "Group": resource_schema(s.GROUP_TYPE),
        "UserRequest": _resource_request(s.USER_TYPE),
        "GroupRequest": _resource_request(s.GROUP_TYPE),
        "UserListResponse": _list_of("User"),
        "GroupListResponse": _list_of("Group"),
        "SearchListResponse": _list_of("User", "Group"),
        "DiscoveryDocument": {
            "type": "object",
            "description": "ServiceProviderConfig, ResourceType or Schema (RFC 7643 §5-§7)",
            "properties": {"schemas": {"type": "array", "items": {"type": "string"}}},
            "required": ["schemas"],
        },
    }
    return schemas


def _list_of(*names: str) -> dict[str, Any]:
    items: dict[str, Any] = (
        {"$ref": REF.format(name=names[0])}
        if len(names) == 1
        else {"anyOf": [{"$ref": REF.format(name=n)} for n in names]}
    )
    return {
        "allOf": [
            {"$ref": REF.format(name="ListResponse")},
            {"type": "object", "properties": {"Resources": {"type": "array", "items": items}}},
        ]
    }


# --- operations -----------------------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


def _content(name: str, *, scim: bool) -> dict[str, Any]:
    types = (SCIM_JSON,) if scim else (JSON,)
    return {t: {"schema": _ref(name)} for t in types}


def _request(name: str, *, required: bool = True) -> dict[str, Any]:
    # Requests: both SCIM content types are accepted on every API (RFC 7644 §3.1, §8.1).
    return {
        "required": required,
        "content": {t: {"schema": _ref(name)} for t in (SCIM_JSON, JSON)},
    }


_ERROR_TEXT = {
    "400": "Bad request: a SCIM error with the scimType that applies",
    "401": "Missing, unknown, expired or revoked token",
    "403": "SCIM provisioning is disabled for this organization",
    "404": "No such resource",
    "409": "Uniqueness conflict",
    "412": "If-Match did not match the current version",
    "413": "Body larger than the 1 MiB limit",
    "415": "Content-Type other than application/scim+json or application/json",
    "429": "Over this organization's share; retry after Retry-After",
    "500": "Unexpected failure: a fixed body naming only the request id",
    "503": "Database unavailable; retry after Retry-After",
}


def _responses(ok: dict[str, Any], *, scim: bool, errors: tuple[str, ...]) -> dict[str, Any]:
    """The answers of one operation: its success, then every error it can give (each an
    RFC 7644 §3.12 body; the SCIM API also answers 403 for an organization switched off)."""
    out = dict(ok)
    auth = ("401", "403") if scim else ("401",)
    for code in ("400", *auth, *errors, "413", "415", "429", "500", "503"):
        out.setdefault(code, {"$ref": f"#/components/responses/{_error_name(code, scim)}"})
    return dict(sorted(out.items()))


def _error_name(code: str, scim: bool) -> str:
    return f"{'Scim' if scim else 'Admin'}Error{code}"


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scim in (True, False):
        for code, text in _ERROR_TEXT.items():
            if code == "403" and not scim:
                continue
            answer: dict[str, Any] = {"description": text, "content": _content("Error", scim=scim)}
            if code in ("429", "503"):
                answer["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
            out[_error_name(code, scim)] = answer
    return out


def _ok(code: str, name: str | None, description: str, *, scim: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if name is not None:
        answer["content"] = _content(name, scim=scim)
    if code == "201" and scim:
        answer["headers"] = {"Location": {"schema": {"type": "string"}}}
    return {code: answer}


def _linked(ok: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links (§4.8.20): how the answer's id feeds the next operations."""
    [(code, answer)] = ok.items()
    return {code: {**answer, "links": links}}


def _param(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ID = _param("id", "path", "The resource id (a UUID)")
_IF_MATCH = _param("If-Match", "header", "Apply only if the resource's ETag matches (412 if not)")
_IF_NONE_MATCH = _param("If-None-Match", "header", "Answer 304 when the ETag matches")
_PROJECTION = [
    _param("attributes", "query", "Comma-separated attributes to return (RFC 7644 §3.9)"),
    _param("excludedAttributes", "query", "Comma-separated attributes to leave out"),
]
_LIST = [
    _param("filter", "query", 'RFC 7644 §3.4.2.2 filter, e.g. userName eq "bjensen"'),
    _param("startIndex", "query", "1-based index of the first result", type="integer"),
    _param(
        "count",
        "query",
        f"Page size (default 100, at most {MAX_RESULTS}; 0: only totalResults)",
        type="integer",
    ),
    _param("sortBy", "query", "Attribute to sort by"),
    _param("sortOrder", "query", "Sort order", type="string", enum=["ascending", "descending"]),
    *_PROJECTION,
]


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    tag: str,
    op_id: str,
    scim: bool = True,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "summary": summary, "operationId": op_id}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = body
    out["responses"] = _responses(ok, scim=scim, errors=errors)
    return out


def _resource_ops(kind: str, endpoint: str) -> dict[str, dict[str, Any]]:
    """Users or Groups: the same seven operations (RFC 7644 §3.3-§3.6)."""
    one = f"A {kind} (RFC 7644 §3.4.1); ETag header carries meta.version"
    lst = f"{kind}ListResponse"
    tag = f"{kind}s"
    coll = f"{SCIM}/{endpoint}"
    item = f"{coll}/{{id}}"
    return {
        f"GET {coll}": _op(
            f"List or filter {kind}s (RFC 7644 §3.4.2)",
            _ok("200", lst, "One page of results", scim=True),
            tag=tag,
            op_id=f"list{kind}s",
            params=_LIST,
        ),
        f"POST {coll}": _op(
            f"Create a {kind} (RFC 7644 §3.3)",
            _linked(
                _ok("201", kind, f"The created {kind}, with Location and ETag", scim=True),
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
            params=_PROJECTION,
            body=_request(f"{kind}Request"),
            errors=("409",),
        ),
        f"POST {coll}/.search": _op(
            f"Search {kind}s with a SearchRequest (RFC 7644 §3.4.3)",
            _ok("200", lst, "One page of results", scim=True),
            tag=tag,
            op_id=f"search{kind}s",
            body=_request("SearchRequest"),
        ),
        f"GET {item}": _op(
            f"Read one {kind}",
            {
                **_ok("200", kind, one, scim=True),
                "304": {"description": "If-None-Match matched the current version"},
            },
            tag=tag,
            op_id=f"get{kind}",
            params=[_ID, _IF_NONE_MATCH, *_PROJECTION],
            errors=("404",),
        ),
        f"PUT {item}": _op(
            f"Replace a {kind} (RFC 7644 §3.5.1)",
            _ok("200", kind, f"The {kind} after the change", scim=True),
            tag=tag,
            op_id=f"replace{kind}",
            params=[_ID, _IF_MATCH, *_PROJECTION],
            body=_request(f"{kind}Request"),
            errors=("404", "409", "412"),
        ),
        f"PATCH {item}": _op(
            f"Modify a {kind} (RFC 7644 §3.5.2), atomically",
            _ok("200", kind, f"The {kind} after the change", scim=True),
            tag=tag,
            op_id=f"patch{kind}",
            params=[_ID, _IF_MATCH, *_PROJECTION],
            body=_request("PatchOp"),
            errors=("404", "409", "412"),
        ),
        f"DELETE {item}": _op(
            f"Delete a {kind} (RFC 7644 §3.6)",
            {"204": {"description": "Deleted"}},
            tag=tag,
            op_id=f"delete{kind}",
            params=[_ID, _IF_MATCH],
            errors=("404", "412"),
        ),
    }


def _discovery_ops() -> dict[str, dict[str, Any]]:
    doc = "DiscoveryDocument"
    return {
        f"GET {SCIM}/ServiceProviderConfig": _op(
            "What this service supports (RFC 7644 §4)",
            _ok("200", doc, "The ServiceProviderConfig", scim=True),
            tag="Discovery",
            op_id="getServiceProviderConfig",
        ),
        f"GET {SCIM}/ResourceTypes": _op(
            "Resource types (RFC 7644 §4)",
            _ok("200", "ListResponse", "User and Group", scim=True),
            tag="Discovery",
            op_id="listResourceTypes",
        ),
        f"GET {SCIM}/ResourceTypes/{{id}}": _op(
            "One resource type",
            _ok("200", doc, "The ResourceType", scim=True),
            tag="Discovery",
            op_id="getResourceType",
            params=[_param("id", "path", "User or Group")],
            errors=("404",),
        ),
        f"GET {SCIM}/Schemas": _op(
            "Schemas (RFC 7644 §4)",
            _ok("200", "ListResponse", "Every schema", scim=True),
            tag="Discovery",
            op_id="listSchemas",
        ),
        f"GET {SCIM}/Schemas/{{id}}": _op(
            "One schema, by URN",
            _ok("200", doc, "The Schema", scim=True),
            tag="Discovery",
            op_id="getSchema",
            params=[_param("id", "path", "The schema URN")],
            errors=("404",),
        ),
        f"POST {SCIM}/.search": _op(
            "Search Users then Groups (RFC 7644 §3.4.3)",
            _ok("200", "SearchListResponse", "One page over Users then Groups", scim=True),
            tag="Discovery",
            op_id="searchAll",
            body=_request("SearchRequest"),
        ),
    }


def _admin_ops() -> dict[str, dict[str, Any]]:
    org = _param("org_id", "path", "The organization id (a UUID)")

    def admin(
        summary: str,
        ok: dict[str, Any],
        op_id: str,
        *,
        params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        errors: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        return _op(
            summary,
            ok,
            tag="Admin",
            op_id=op_id,
            scim=False,
            params=params,
            body=body,
            errors=errors,
        )

    def ok(code: str, name: str, description: str) -> dict[str, Any]:
        return _ok(code, name, description, scim=False)

    return {
        f"POST {ADMIN}/orgs": admin(
            "Create an organization",
            _linked(
                ok("201", "Org", "The organization"),
                {
                    name: {"operationId": name, "parameters": {"org_id": "$response.body#/id"}}
                    for name in ("getOrg", "disableScim", "enableScim", "createToken", "listTokens")
                },
            ),
            "createOrg",
            body=_request("CreateOrg"),
            errors=("409",),
        ),
        f"GET {ADMIN}/orgs": admin(
            "List organizations", ok("200", "OrgList", "Every organization"), "listOrgs"
        ),
        f"GET {ADMIN}/orgs/{{org_id}}": admin(
            "One organization",
            ok("200", "Org", "The organization"),
            "getOrg",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/scim/enable": admin(
            "Switch SCIM provisioning on for an organization",
            ok("200", "Org", "The organization"),
            "enableScim",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/scim/disable": admin(
            "Switch SCIM provisioning off (tokens are kept; SCIM answers 403)",
            ok("200", "Org", "The organization"),
            "disableScim",
            params=[org],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/tokens": admin(
            "Create a SCIM token (shown once, in this answer only)",
            _linked(
                ok("201", "CreatedToken", "The token, the SCIM base URL and the token's info"),
                {
                    "revokeToken": {
                        "operationId": "revokeToken",
                        "parameters": {"token_id": "$response.body#/info/id"},
                    }
                },
            ),
            "createToken",
            params=[org],
            body=_request("CreateToken", required=False),
            errors=("404",),
        ),
        f"GET {ADMIN}/orgs/{{org_id}}/tokens": admin(
            "List an organization's tokens (never the tokens themselves)",
            ok("200", "TokenList", "The tokens"),
            "listTokens",
            params=[org],
            errors=("404",),
        ),
        f"DELETE {ADMIN}/tokens/{{token_id}}": admin(
            "Revoke a token (at once, on every replica)",
            ok("200", "TokenInfo", "The revoked token's info"),
            "revokeToken",
            params=[_param("token_id", "path", "The token id (a UUID)")],
            errors=("404",),
        ),
        f"POST {ADMIN}/orgs/{{org_id}}/users/{{user_id}}/setup-complete": admin(
            "The user finished account setup (created their master key)",
            ok("200", "User", "The user, SCIM representation"),
            "completeUserSetup",
            params=[org, _param("user_id", "path", "The user id (a UUID)")],
            errors=("404",),
        ),
        f"GET {ADMIN}/events/stats": admin(
            "Outbox backlog per sink", ok("200", "EventStats", "Per sink"), "eventStats"
        ),
        f"GET {ADMIN}/events/dead-letters": admin(
            "Dead-lettered events with their last error",
            ok("200", "DeadLetters", "At most 500 events"),
            "listDeadLetters",
            params=[_param("sink", "query", "Only this sink")],
        ),
        f"POST {ADMIN}/events/dead-letters/retry": admin(
            "Give dead-lettered events a fresh set of attempts",
            ok("200", "Retried", "The ids queued again"),
            "retryDeadLetters",
            body=_request("RetryRequest", required=False),
        ),
        f"POST {ADMIN}/events/replay": admin(
            "Re-send delivered events (same ids) from a time or an event",
            ok("200", "Queued", "How many deliveries were queued"),
            "replayEvents",
            body=_request("ReplayRequest"),
            errors=("404",),
        ),
        f"GET {ADMIN}/events/signing-key": admin(
            "The Ed25519 public key for v1a webhook signatures",
            ok("200", "SigningKey", "The whpk_ public key"),
            "signingKey",
            errors=("404",),
        ),
    }


def _plain_ops() -> dict[str, dict[str, Any]]:
    def probe(summary: str, op_id: str, *, ready: bool = False) -> dict[str, Any]:
        answers: dict[str, Any] = {
            "200": {"description": "OK", "content": {JSON: {"schema": _ref("Health")}}}
        }
        if ready:
            answers["503"] = {
                "description": "Not ready (draining, database unreachable, migrations pending)",
                "content": {JSON: {"schema": _ref("Health")}},
            }
        return {
            "tags": ["Health"],
            "summary": summary,
            "operationId": op_id,
            "security": [],
            "responses": answers,
        }

    return {
        "GET /healthz": probe("Liveness: the process and its event loop answer", "healthz"),
        "GET /readyz": probe(
            "Readiness: database reachable, migrations current, not draining",
            "readyz",
            ready=True,
        ),
        "GET /metrics": {
            "tags": ["Health"],
            "summary": "Prometheus metrics (bearer SCIM_METRICS_TOKEN when set)",
            "operationId": "metrics",
            "security": [{}, {"metricsBearerAuth": []}],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {"description": "SCIM_METRICS_TOKEN is set and was not sent"},
            },
        },
        "GET /openapi.json": {
            "tags": ["Health"],
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {JSON: {"schema": {"type": "object"}}},
                }
            },
        },
    }


def operations() -> dict[str, dict[str, Any]]:
    """Every operation, keyed "METHOD /path/{param}" like the route table."""
    return {
        **_plain_ops(),
        **_discovery_ops(),
        **_resource_ops("User", "Users"),
        **_resource_ops("Group", "Groups"),
        **_admin_ops(),
    }


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for key, op in operations().items():
        method, path = key.split(" ", 1)
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scim-service",
            "version": "2",
            "summary": "SCIM 2.0 provisioning (RFC 7643/7644) and its admin API",
            "description": (
                "SCIM paths (`/scim/v2`) take an organization's SCIM token "
                "(`Authorization: Bearer scim_...`) and answer `application/scim+json`; "
                "admin paths (`/admin/v1`) take SCIM_ADMIN_TOKEN and answer "
                "`application/json`. Requests may use either content type. Every error is "
                "an RFC 7644 §3.12 body with `status` as a string."
            ),
        },
        "tags": [
            {"name": "Discovery"},
            {"name": "Users"},
            {"name": "Groups"},
            {"name": "Admin"},
            {"name": "Health"},
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "SCIM paths: an organization's SCIM token (scim_...); admin paths: "
                        "SCIM_ADMIN_TOKEN"
                    ),
                },
                "metricsBearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SCIM_METRICS_TOKEN, when set",
                },
            },
            "schemas": _components(),
            "responses": _error_responses(),
        },
    }


def render() -> bytes:
    """The document as committed: indented, keys in a stable order, a final newline."""
    return msgspec.json.format(msgspec.json.encode(build()), indent=2) + b"\n"


def main() -> None:
    sys.stdout.buffer.write(render())


if __name__ == "__main__":
    main()
