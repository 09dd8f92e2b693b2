"""Body schemas of the OpenAPI document: built from the definitions the service itself uses.

User and Group come from `scim.schema` (the attribute table that also drives normalisation,
filters and `/Schemas`); admin bodies from the msgspec structs the handlers decode and encode
(`msgspec.json.schema_components`); the SCIM messages (Error, PatchOp, SearchRequest,
ListResponse) from the structs below, which describe what `errors.ScimError.to_body`,
`scim.patch`, `scim.query` and `list_response` accept and produce
(tests/conformance/test_openapi.py checks each against the real thing).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scim_service.http.operations import OPERATIONS
from scim_service.http.responses import SCIM_CONTENT_TYPE
from scim_service.scim import schema as s
from scim_service.scim.discovery import MAX_RESULTS
from scim_service.scim.patch import MAX_OPERATIONS
from scim_service.scim.resource import MAX_INDEXED, MAX_STRING

SCIM = "/scim/v2"
ADMIN = "/admin/v1"
SCIM_JSON = SCIM_CONTENT_TYPE
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
    oldest_cursor: str | UnsetType = UNSET
    """410 from the pull API only: the oldest events cursor still available."""


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


class Health(msgspec.Struct):
    status: str
    pending: list[str] | UnsetType = UNSET


# The SCIM messages above, the probes' answer, and every request and answer type an admin
# operation declares (http/operations.py); msgspec adds the types they contain.
_STRUCTS: tuple[type[Any], ...] = (
    Error,
    PatchOp,
    SearchRequest,
    ListResponse,
    Health,
    *dict.fromkeys(t for o in OPERATIONS for t in (o.body, o.answer) if isinstance(t, type)),
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
        "allOf": [ref(rtype.id)],
        "required": [a.name for a in rtype.schema.attributes if a.required],
    }


def components() -> dict[str, Any]:
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


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


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
