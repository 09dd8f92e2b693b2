"""schemathesis against the live server, from the committed OpenAPI document: every operation.

For each operation of `scim_service/openapi.json`, schemathesis generates requests that fit the
document (positive) and requests that break it (negative: wrong types, missing required
members, out-of-range values), SCIM_FUZZ_EXAMPLES each (default 150: about 5,000 requests in
all, a couple of minutes here). Path parameters are often replaced by ids that exist (seed
users and groups, the organizations and their tokens), so writes reach the database instead
of stopping at 404. Every answer must pass `fuzz_support.check_answer` (no 5xx but the known
ones, no internals, SCIM error bodies with `status` as a string, SCIM content types) and
schemathesis's own conformance checks of status code, content type, headers and response
body against the document (the document is true of the server).

`pytest -s` prints the request and status counts.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scim_service.http.authz import scopes_of
from scim_service.http.openapi import DOCUMENT
from tests.conformance.fuzz_support import Live, check_answer, examples, replace_deleted
from tests.conformance.fuzz_support import fixture_live as fixture_live

SCHEMA = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text("utf-8")))
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = examples(150)
HTTP_LINE_LIMIT = 8190  # aiohttp's max_line_size: the longest request line it parses


@pytest.fixture(name="summary", scope="module", autouse=True)
def fixture_summary(live: Live) -> Any:
    yield
    print("\n" + live.tally.report("schemathesis"))


def _real_ids(live: Live, label: str, name: str) -> list[str]:
    """Ids that exist, for a path parameter (so the request gets past 404)."""
    if name == "id":
        if "/Users/" in label:
            return live.user_ids
        if "/Groups/" in label:
            return live.group_ids
        if "/ResourceTypes/" in label:
            return ["User", "Group"]
        if "/Schemas/" in label:
            return [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:core:2.0:Group",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ]
    if name == "org_id":
        # Setup-complete needs the users' organization; every other admin operation gets the
        # spare one, which the fuzzer may switch off without locking itself out.
        return [live.org_id] if "setup-complete" in label else [live.admin_org_id]
    if name == "user_id":
        return live.user_ids
    if name == "token_id":
        return live.admin_token_ids
    return []


def _request_text(case: Any, url: str) -> str:
    body = case.body if not isinstance(case.body, bytes) else case.body.decode("latin-1")
    try:
        shown = body if isinstance(body, str) else json.dumps(body)
    except (TypeError, ValueError):
        shown = repr(body)
    return f"{urllib.parse.unquote(url)} {shown}"


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation(live: Live, label: str) -> None:
    """Generated requests to one operation: no server error, no internals, SCIM errors, and
    answers that conform to the OpenAPI document."""
    _fuzz_operation(live, label, "operator", EXAMPLES)


ADMIN_LABELS = sorted(label for label in OPERATIONS if " /admin/" in label)


@pytest.mark.parametrize("scope", ["org:admin", "events:read"])
@pytest.mark.parametrize("label", ADMIN_LABELS)
def test_admin_operation_per_scope(live: Live, label: str, scope: str) -> None:
    """The admin operations again with each scoped credential (issue 22; fewer examples): the
    same checks, and an operation outside the scope answers 403 whatever the request."""
    _fuzz_operation(live, label, scope, max(1, EXAMPLES // 5))


def _fuzz_operation(live: Live, label: str, scope: str, examples: int) -> None:
    operation = OPERATIONS[label]
    method, _, route = label.partition(" ")
    outside = scope not in scopes_of(f"{method.upper()} {route}")
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    params = [p.name for p in operation.path_parameters]

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=cases, data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        for name in params:
            real = _real_ids(live, label, name)
            if real and data.draw(st.integers(0, 3), label=f"real {name}") > 0:
                case.path_parameters[name] = data.draw(st.sampled_from(real), label=name)
        live.tally.per_target[label] += 1
        if case.query and "wait" in case.query:  # long polling: keep each request short
            with contextlib.suppress(TypeError, ValueError):
                if 0 < float(case.query["wait"]) <= 30:
                    case.query["wait"] = 0.05
        path = case.formatted_path
        response = case.call(
            base_url=live.base,
            session=live.session,
            headers=live.headers(path, scope),
            timeout=30,
            allow_redirects=False,
        )
        target = response.request.path_url or ""
        if len(operation.method) + len(target) + len(" HTTP/1.1") > HTTP_LINE_LIMIT:
            # aiohttp's HTTP parser refuses the request line before the app sees it (README,
            # "Limits"): a plain 400, the one answer not in the OpenAPI document.
            assert response.status_code == 400, response.text[:200]
            live.tally.requests += 1
            live.tally.statuses[400] += 1
            live.tally.parser_refused += 1
            return
        if outside:  # 403 once routed and authenticated (a negative case may mangle the header:
            # 401; a path no route matches: 404; a huge body: 413)
            refused = response.status_code in (401, 403, 413)
            unrouted = response.status_code == 404 and b"No endpoint" in (response.content or b"")
            assert refused or unrouted, (scope, label, response.status_code, response.text[:200])
        known = check_answer(
            live,
            operation.method.upper(),
            path,
            _request_text(case, response.request.url or ""),
            response.status_code,
            response.headers.get("content-type", [""])[0].split(";")[0].strip(),
            response.content or b"",
            (response.headers.get("x-request-id") or [None])[0],
        )
        if known is None:
            case.validate_response(response, checks=CONFORMANCE, headers=live.headers(path, scope))
        if operation.method.upper() == "DELETE":
            replace_deleted(live, path, response.status_code)

    fuzz()
