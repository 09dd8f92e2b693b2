"""Building blocks of the document's operations: bodies, answers, parameters."""

from __future__ import annotations

from typing import Any

from scim_service.openapi.bodies import JSON, SCIM_JSON, ref
from scim_service.scim.discovery import MAX_RESULTS


def content(name: str, *, scim: bool) -> dict[str, Any]:
    types = (SCIM_JSON,) if scim else (JSON,)
    return {t: {"schema": ref(name)} for t in types}


def request_body(name: str, *, required: bool = True) -> dict[str, Any]:
    # Requests: both SCIM content types are accepted on every API (RFC 7644 §3.1, §8.1).
    return {
        "required": required,
        "content": {t: {"schema": ref(name)} for t in (SCIM_JSON, JSON)},
    }


_ERROR_TEXT = {
    "400": "Bad request: a SCIM error with the scimType that applies",
    "401": "Missing, unknown, expired or revoked token",
    "403": "SCIM provisioning is disabled for this organization",
    "404": "No such resource",
    "409": "Uniqueness conflict",
    "410": "The events cursor is older than retention; oldest_cursor names the oldest available",
    "412": "If-Match did not match the current version",
    "413": "Body larger than the 1 MiB limit",
    "415": "Content-Type other than application/scim+json or application/json",
    "429": "Over this organization's share; retry after Retry-After",
    "500": "Unexpected failure: a fixed body naming only the request id",
    "503": "Database unavailable; retry after Retry-After",
}


def responses(ok: dict[str, Any], *, scim: bool, errors: tuple[str, ...]) -> dict[str, Any]:
    """The answers of one operation: its success, then every error it can give (each an
    RFC 7644 §3.12 body; the SCIM API also answers 403 for an organization switched off, the
    admin API for a credential outside its scope)."""
    out = dict(ok)
    auth = ("401", "403")
    for code in ("400", *auth, *errors, "413", "415", "429", "500", "503"):
        out.setdefault(code, {"$ref": f"#/components/responses/{error_name(code, scim)}"})
    return dict(sorted(out.items()))


def error_name(code: str, scim: bool) -> str:
    return f"{'Scim' if scim else 'Admin'}Error{code}"


def error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scim in (True, False):
        for code, text in _ERROR_TEXT.items():
            if code == "403" and not scim:
                text = "Outside the admin credential's scope (the detail names the scope needed)"
            answer: dict[str, Any] = {"description": text, "content": content("Error", scim=scim)}
            if code in ("429", "503"):
                answer["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
            out[error_name(code, scim)] = answer
    return out


def ok(code: str, name: str | None, description: str, *, scim: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if name is not None:
        answer["content"] = content(name, scim=scim)
    if code == "201" and scim:
        answer["headers"] = {"Location": {"schema": {"type": "string"}}}
    return {code: answer}


def linked(ok: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links (§4.8.20): how the answer's id feeds the next operations."""
    [(code, answer)] = ok.items()
    return {code: {**answer, "links": links}}


def param(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }


ID = param("id", "path", "The resource id (a UUID)")
IF_MATCH = param("If-Match", "header", "Apply only if the resource's ETag matches (412 if not)")
IF_NONE_MATCH = param("If-None-Match", "header", "Answer 304 when the ETag matches")
PROJECTION = [
    param("attributes", "query", "Comma-separated attributes to return (RFC 7644 §3.9)"),
    param("excludedAttributes", "query", "Comma-separated attributes to leave out"),
]
LIST = [
    param("filter", "query", 'RFC 7644 §3.4.2.2 filter, e.g. userName eq "bjensen"'),
    param("startIndex", "query", "1-based index of the first result", type="integer"),
    param(
        "count",
        "query",
        f"Page size (default 100, at most {MAX_RESULTS}; 0: only totalResults)",
        type="integer",
    ),
    param("sortBy", "query", "Attribute to sort by"),
    param("sortOrder", "query", "Sort order", type="string", enum=["ascending", "descending"]),
    *PROJECTION,
]


def op(
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
    out["responses"] = responses(ok, scim=scim, errors=errors)
    return out
