"""The admin API's operations, and the unauthenticated ones (health, metrics, this document)."""

from __future__ import annotations

from typing import Any

from scim_service.http.operations import OPERATIONS, Operation
from scim_service.openapi.bodies import JSON, ref
from scim_service.openapi.helpers import linked, ok, op, param, request_body


def admin_ops() -> dict[str, dict[str, Any]]:
    """One entry per declared admin operation (http/operations.py)."""
    return {op.key: _admin_op(op) for op in OPERATIONS}


def _admin_op(o: Operation) -> dict[str, Any]:
    answer = ok(o.status, schema_name(o.answer), o.answer_text, scim=False)
    if o.links:
        answer = linked(
            answer,
            {name: {"operationId": name, "parameters": dict(p)} for name, p in o.links.items()},
        )
    return op(
        o.summary,
        answer,
        tag="Admin",
        op_id=o.op_id,
        scim=False,
        params=[param(p.name, p.where, p.description, **p.schema) for p in o.params],
        body=None if o.body is None else request_body(o.body.__name__, required=o.body_required),
        errors=o.errors,
    )


def schema_name(answer: type | str | None) -> str | None:
    return answer if answer is None or isinstance(answer, str) else answer.__name__


def plain_ops() -> dict[str, dict[str, Any]]:
    def probe(summary: str, op_id: str, *, ready: bool = False) -> dict[str, Any]:
        answers: dict[str, Any] = {
            "200": {"description": "OK", "content": {JSON: {"schema": ref("Health")}}}
        }
        if ready:
            answers["503"] = {
                "description": "Not ready (draining, database unreachable, migrations pending)",
                "content": {JSON: {"schema": ref("Health")}},
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
