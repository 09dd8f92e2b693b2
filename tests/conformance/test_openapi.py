"""The OpenAPI document: committed, current, complete, valid, served, and true to the code."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
import schemathesis

from scim_service import errors, openapi
from scim_service.app import create_app
from scim_service.config import Settings
from scim_service.http.authz import scopes_of
from scim_service.http.openapi import DOCUMENT
from scim_service.scim import schema as s
from scim_service.scim.query import list_response
from tests.conftest import ADMIN_TOKEN, Tenant

COMMITTED = json.loads(DOCUMENT.read_text("utf-8"))
REGENERATE = ".venv/bin/python -m scim_service.openapi > scim_service/openapi.json"


def _route_operations() -> set[str]:
    """Every "METHOD /path" of the app's router (`routes.py`), HEAD twins of GETs aside."""
    app = create_app(Settings(database_url="postgresql://unused/unused", admin_token=ADMIN_TOKEN))
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        found.add(f"{route.method} {route.resource.canonical}")
    return found


def _document_operations(doc: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }


def test_committed_document_is_current() -> None:
    """scim_service/openapi.json is what scim_service/openapi.py builds (regenerate it)."""
    assert DOCUMENT.read_bytes() == openapi.render(), f"stale: run {REGENERATE}"


def test_every_route_is_documented_and_nothing_else() -> None:
    """Each route of routes.py is an operation of the document, and the other way round."""
    routes, documented = _route_operations(), _document_operations(COMMITTED)
    assert routes - documented == set(), f"routes missing from the document ({REGENERATE})"
    assert documented - routes == set(), "operations the app does not serve"
    assert len(routes) >= 38


def test_document_is_valid_openapi_31() -> None:
    """The OpenAPI 3.1 meta-schema accepts it (schemathesis validates on load)."""
    assert COMMITTED["openapi"].startswith("3.1.")
    schema = schemathesis.openapi.from_dict(COMMITTED)
    schema.validate()
    assert all(r.ok() for r in schema.get_all_operations())


def test_security_and_content_types() -> None:
    """Bearer auth everywhere but health and this document; SCIM answers scim+json, admin
    answers json, and requests may use either content type."""
    assert COMMITTED["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": COMMITTED["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert COMMITTED["security"] == [{"bearerAuth": []}]
    for path, item in COMMITTED["paths"].items():
        for method, op in item.items():
            public = path in ("/healthz", "/readyz", "/metrics", "/openapi.json")
            if path.startswith("/admin/"):  # the scopes of http/authz.py (issue 22)
                scopes = list(scopes_of(f"{method.upper()} {path}"))
                assert op["security"] == [{"adminAuth": scopes}], (method, path)
                assert "operator" in scopes and "403" in op["responses"], (method, path)
            else:
                assert ("security" in op) == public, (method, path)
            body = op.get("requestBody")
            if body is not None:
                assert set(body["content"]) == {"application/scim+json", "application/json"}
            for code, answer in op["responses"].items():
                if "$ref" in answer:
                    name = answer["$ref"].rsplit("/", 1)[1]
                    answer = COMMITTED["components"]["responses"][name]
                want = (
                    {"application/scim+json"}
                    if path.startswith("/scim/")
                    else {"application/json"}
                    if path.startswith("/admin/")
                    else None
                )
                if want is not None and "content" in answer:
                    assert set(answer["content"]) == want, (method, path, code)


@pytest.mark.parametrize(
    "cls",
    [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ScimError)],
    ids=lambda c: c.__name__,
)
def test_every_error_class_matches_the_error_schema(cls: type[errors.ScimError]) -> None:
    """Every error the service raises renders as the document's Error (status a string)."""
    err = cls.__new__(cls)
    errors.ScimError.__init__(err)
    body = err.to_body()
    decoded = msgspec.convert(body, openapi.Error)
    assert decoded.status == str(cls.status)
    assert re.fullmatch(
        COMMITTED["components"]["schemas"]["Error"]["properties"]["status"]["pattern"],
        decoded.status,
    )


def test_messages_match_their_schemas() -> None:
    """ListResponse, PatchOp and SearchRequest as the code builds or accepts them."""
    msgspec.convert(list_response(1, 1, [{"id": "x"}]), openapi.ListResponse)
    op = msgspec.convert(
        {
            "schemas": [s.PATCH_OP],
            "Operations": [{"op": "Replace", "path": 'emails[type eq "work"].value', "value": 1}],
        },
        openapi.PatchOp,
    )
    assert op.Operations[0].op == "Replace"
    msgspec.convert(
        {"schemas": [s.SEARCH_REQUEST], "filter": 'userName eq "a"', "count": 10},
        openapi.SearchRequest,
    )
    user = COMMITTED["components"]["schemas"]["User"]["properties"]
    assert {a.name for a in s.USER.attributes} <= set(user)
    assert {s.ENTERPRISE_USER_SCHEMA, s.PLATFORM_USER_SCHEMA} <= set(user)
    assert user["groups"]["readOnly"] is True
    assert user["password"]["writeOnly"] is True
    request = COMMITTED["components"]["schemas"]["UserRequest"]
    assert request["required"] == ["userName"]


async def test_served_without_a_token(client: Any, tenant: Tenant) -> None:
    """GET /openapi.json needs no token and answers the committed document; the APIs it
    describes still do."""
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == COMMITTED
    assert (await client.get("/scim/v2/Users")).status == 401
    assert (await client.get("/scim/v2/Users", headers=tenant.headers)).status == 200
