"""The OpenAPI 3.1 document of the SCIM and admin APIs, built from the code that serves them.

`bodies` builds the schemas (from `scim.schema` and the handlers' msgspec structs),
`scim_paths` and `admin_paths` one operation per route of `routes.py`;
`tests/conformance/test_openapi.py` fails when a route is missing here or here lists one the
app lacks.

The document is committed as `scim_service/openapi.json` and served from there at
`GET /openapi.json`. Regenerate it after a change with

    .venv/bin/python -m scim_service.openapi > scim_service/openapi.json

(a test fails while the committed file is stale).
"""

from __future__ import annotations

from typing import Any

import msgspec

from scim_service.http.authz import scopes_of
from scim_service.http.operations import OPEN_TO_MORE
from scim_service.openapi.admin_paths import admin_ops, plain_ops
from scim_service.openapi.bodies import (
    Error,
    ListResponse,
    PatchOp,
    PatchOperation,
    SearchRequest,
    components,
)
from scim_service.openapi.helpers import error_responses
from scim_service.openapi.scim_paths import discovery_ops, resource_ops

__all__ = [
    "Error",
    "ListResponse",
    "PatchOp",
    "PatchOperation",
    "SearchRequest",
    "build",
    "operations",
    "render",
]


def operations() -> dict[str, dict[str, Any]]:
    """Every operation, keyed "METHOD /path/{param}" like the route table."""
    return {
        **plain_ops(),
        **discovery_ops(),
        **resource_ops("User", "Users"),
        **resource_ops("Group", "Groups"),
        **admin_ops(),
    }


def build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for key, op in operations().items():
        method, path = key.split(" ", 1)
        if path.startswith("/admin/"):  # the credential scopes that may call it (http/authz.py)
            op = {**op, "security": [{"adminAuth": list(scopes_of(key))}]}
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
                "admin paths (`/admin/v1`) take SCIM_ADMIN_TOKEN (the bootstrap operator) or a "
                "scoped admin credential (`scimadm_...`; `adminAuth`, each operation lists the "
                "scopes that may call it) and answer `application/json`. Requests may use "
                "either content type. Every error is "
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
                "adminAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "Admin paths: SCIM_ADMIN_TOKEN (scope operator) or a scoped admin "
                        "credential (scimadm_..., `scim-service credential create`). Scopes: "
                        "operator (everything), org:admin (one organization: its tokens, status, "
                        "activity, guard, snapshots and events), events:read (the pull API and "
                        "snapshots of its organizations, optionally some event types). Outside "
                        "its scope: 403; an organization it may not see: 404. "
                        f"{OPEN_TO_MORE} operations are open to more than operator."
                    ),
                },
                "metricsBearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SCIM_METRICS_TOKEN, when set",
                },
            },
            "schemas": components(),
            "responses": error_responses(),
        },
    }


def render() -> bytes:
    """The document as committed: indented, keys in a stable order, a final newline."""
    return msgspec.json.format(msgspec.json.encode(build()), indent=2) + b"\n"
