"""Hypothesis-generated SCIM filters and PATCH bodies against the live server.

schemathesis (test_fuzz_openapi.py) knows only what the OpenAPI document says: a filter is a
string, a PATCH value is anything. Here the inputs come from the SCIM grammar itself (RFC 7644
§3.4.2.2 filters, §3.5.2 PATCH paths): attribute paths of every kind (core, sub-attributes,
URN-qualified, extension, unknown, in any case), every operator, value paths, `and`/`or`/`not`,
parentheses and nesting, and comparison values that are hard on a parser and a database: odd
unicode (NUL, lone surrogates escaped in JSON, right-to-left marks, emoji), huge and tiny
numbers, dates in and far out of range, booleans and null. Some inputs are then mangled (a
character dropped, inserted or swapped) so the error paths of the parser run too.

Every answer must pass `fuzz_support.check_answer` (no 5xx at all: `KNOWN_5XX` is empty); the
reproductions at the end keep each of issue 12's former 500s a 400.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

from scim_service.scim import schema as s
from tests.conformance.fuzz_support import Live, check_answer, examples
from tests.conformance.fuzz_support import fixture_live as fixture_live

FILTER_EXAMPLES = examples(400)
PATCH_EXAMPLES = examples(500)


def _settings(max_examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )


@pytest.fixture(name="summary", scope="module", autouse=True)
def fixture_summary(live: Live) -> Any:
    yield
    print("\n" + live.tally.report("SCIM grammar fuzz"))


# --- the grammar -------------------------------------------------------------------------------


def _names(schema: s.Schema) -> list[str]:
    out = []
    for attr in schema.attributes:
        out.append(attr.name)
        out.extend(f"{attr.name}.{sub.name}" for sub in attr.sub_attributes)
    return out


USER_PATHS = [
    "id",
    "externalId",
    "meta.created",
    "meta.lastModified",
    "meta.version",
    "meta.resourceType",
    *_names(s.USER),
    *(f"{s.USER_SCHEMA}:{n}" for n in _names(s.USER)[:12]),
    *(f"{s.ENTERPRISE_USER_SCHEMA}:{n}" for n in _names(s.ENTERPRISE_USER)),
    *(f"{s.PLATFORM_USER_SCHEMA}:{n}" for n in _names(s.PLATFORM_USER)),
]
GROUP_PATHS = ["id", "externalId", "meta.created", "meta.lastModified", *_names(s.GROUP)]
MULTI = ["emails", "phoneNumbers", "addresses", "members", "groups", "roles", "x509Certificates"]
SUBS = ["value", "type", "primary", "display", "$ref", "givenName"]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]

odd_chars = st.sampled_from(
    ["\x00", "\u202e", "\ufeff", "\U0001f600", "\\", '"', "'", "[", "]", "(", ")", " ", "\t", "é"]
)
# Lone surrogates only inside values, which reach the server JSON-escaped ("\ud800").
lone_surrogates = st.sampled_from(["\ud800", "\udfff"])
odd_text = st.lists(st.one_of(st.text(max_size=4), odd_chars, lone_surrogates), max_size=8).map(
    "".join
)
dates = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-01T25:61:61Z",
            "2026-12-01",
            "2026-12-01T00:00:00.1234567891234Z",
        ]
    ),
)
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e999", "-1e999", "1e-999", "00012", "-0", "9" * 400, "1.5e308"]),
)


def _literal(value: Any) -> str:
    """A filter comparison value (RFC 7644 §3.4.2.2 compValue): JSON literals, raw numbers."""
    if isinstance(value, str):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


comp_values = st.one_of(
    odd_text.map(_literal),
    dates.map(_literal),
    numbers.map(lambda n: n if isinstance(n, str) else _literal(n)),
    st.sampled_from(["true", "false", "null", "True", '""']),
)


def _any_case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


def attr_paths(paths: list[str]) -> st.SearchStrategy[str]:
    known = st.sampled_from(paths).flatmap(_any_case)
    return st.one_of(
        known, known, known, st.text(alphabet="abcxyzAZ:._$-1", min_size=1, max_size=12)
    )


def comparisons(paths: list[str]) -> st.SearchStrategy[str]:
    compare = st.builds(
        lambda a, op, v: f"{a} {op} {v}",
        attr_paths(paths),
        st.sampled_from(OPERATORS).flatmap(_any_case),
        comp_values,
    )
    present = attr_paths(paths).map(lambda a: f"{a} pr")
    return st.one_of(compare, compare, present)


def filters(paths: list[str]) -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda a, b: f"{a} and {b}", inner, inner),
            st.builds(lambda a, b: f"{a} or {b}", inner, inner),
            inner.map(lambda a: f"not ({a})"),
            inner.map(lambda a: f"({a})"),
            st.builds(lambda m, a: f"{m}[{a}]", st.sampled_from(MULTI), inner),
        )

    tree = st.recursive(comparisons(paths), extend, max_leaves=10)
    return st.one_of(tree, tree, tree, st.builds(_mangle, tree, st.integers(0, 10**6), odd_chars))


def _mangle(text: str, where: int, char: str) -> str:
    """One edit: drop, insert or replace a character at a position."""
    if not text:
        return char
    i = where % len(text)
    edit = where % 3
    if edit == 0:
        return text[:i] + text[i + 1 :]
    if edit == 1:
        return text[:i] + char + text[i:]
    return text[:i] + char + text[i + 1 :]


def patch_paths(paths: list[str]) -> st.SearchStrategy[str]:
    value_path = st.builds(
        lambda m, f, sub: f"{m}[{f}]" + (f".{sub}" if sub else ""),
        st.sampled_from(MULTI),
        filters(["value", "type", "primary", "display"]),
        st.one_of(st.none(), st.sampled_from(SUBS)),
    )
    return st.one_of(attr_paths(paths), value_path, value_path.map(lambda p: _mangle(p, 7, "]")))


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["True", "false", ""]),
    numbers.filter(lambda n: not isinstance(n, str)),
    odd_text,
    dates,
)


def json_values(paths: list[str]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(paths + SUBS + MULTI).flatmap(_any_case), odd_text)
    return st.recursive(
        json_leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=12,
    )


def patch_bodies(paths: list[str]) -> st.SearchStrategy[Any]:
    operation = st.fixed_dictionaries(
        {
            "op": st.one_of(
                st.sampled_from(["add", "remove", "replace"]).flatmap(_any_case), odd_text
            )
        },
        optional={"path": patch_paths(paths), "value": json_values(paths)},
    )
    body = st.fixed_dictionaries(
        {"Operations": st.lists(operation, min_size=1, max_size=6)},
        optional={"schemas": st.sampled_from([[s.PATCH_OP], [], ["urn:x"], "x"])},
    )
    return st.one_of(body, body, json_values(paths))  # now and then not a PatchOp at all


# --- the targets -----------------------------------------------------------------------------


def _send(
    live: Live, method: str, path: str, *, body: Any = None, filter_: str | None = None
) -> None:
    params = {"filter": filter_} if filter_ is not None else None
    resp = live.call(method, path, body=body, params=params)
    live.tally.per_target[f"{method} {path.split('/')[3]}"] += 1
    request_text = f"{resp.request.url} {json.dumps(body) if body is not None else ''}"
    check_answer(
        live,
        method,
        path,
        request_text,
        resp.status_code,
        resp.headers.get("Content-Type", "").split(";")[0].strip(),
        resp.content,
        resp.headers.get("X-Request-ID"),
    )


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_filters_in_the_query(live: Live, resource: str) -> None:
    """GET /Users?filter= and /Groups?filter= with generated filters: 200 or a SCIM 400."""
    paths = USER_PATHS if resource == "Users" else GROUP_PATHS

    @_settings(FILTER_EXAMPLES)
    @hypothesis.given(filter_=filters(paths))
    def fuzz(filter_: str) -> None:
        _send(live, "GET", f"/scim/v2/{resource}", filter_=filter_)

    fuzz()


@pytest.mark.parametrize("target", ["Users/.search", "Groups/.search", ".search"])
def test_filters_in_search_requests(live: Live, target: str) -> None:
    """POST .search with generated filters, sortBy and attributes (RFC 7644 §3.4.3)."""
    paths = GROUP_PATHS if target.startswith("Groups") else USER_PATHS
    bodies = st.fixed_dictionaries(
        {"schemas": st.just([s.SEARCH_REQUEST]), "filter": filters(paths)},
        optional={
            "sortBy": attr_paths(paths),
            "sortOrder": st.sampled_from(["ascending", "descending", "sideways"]),
            "attributes": st.lists(attr_paths(paths), max_size=3),
            "excludedAttributes": st.lists(attr_paths(paths), max_size=3),
            "startIndex": st.integers(-5, 10**12),
            "count": st.integers(-5, 10**12),
        },
    )

    @_settings(FILTER_EXAMPLES)
    @hypothesis.given(body=bodies)
    def fuzz(body: dict[str, Any]) -> None:
        _send(live, "POST", f"/scim/v2/{target}", body=body)

    fuzz()


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_patch_bodies(live: Live, resource: str) -> None:
    """PATCH with generated operations, paths (value paths included) and values: 200 or a
    SCIM 4xx, against users and groups that exist."""
    paths = USER_PATHS if resource == "Users" else GROUP_PATHS
    ids = live.user_ids if resource == "Users" else live.group_ids

    @_settings(PATCH_EXAMPLES)
    @hypothesis.given(body=patch_bodies(paths), which=st.integers(0, 100))
    def fuzz(body: Any, which: int) -> None:
        _send(live, "PATCH", f"/scim/v2/{resource}/{ids[which % len(ids)]}", body=body)

    fuzz()


# --- the known 500s of issue 12, fixed on other branches ----------------------------------------


def _deep(prefix: str, depth: int = 1000) -> bytes:
    """A JSON object whose last member is an array nested `depth` deep (as raw bytes: the
    JSON encoder itself would refuse the depth)."""
    return f'{{{prefix}"x": {"[" * depth}1{"]" * depth}}}'.encode()


KNOWN = [
    pytest.param(
        "GET",
        "/scim/v2/Users",
        {"filter": 'userName eq "a\\u0000b"'},
        None,
        id="nul-in-filter-users",
    ),
    pytest.param(
        "GET",
        "/scim/v2/Groups",
        {"filter": 'displayName eq "a\\u0000b"'},
        None,
        id="nul-in-filter-groups",
    ),
    pytest.param(
        "POST",
        "/scim/v2/.search",
        None,
        {"schemas": [s.SEARCH_REQUEST], "filter": 'userName sw "\\u0000"'},
        id="nul-in-filter-search",
    ),
    pytest.param(
        "GET",
        "/scim/v2/Users",
        {"filter": 'meta.created gt "9999-12-31T23:59:59-23:59"'},
        None,
        id="datetime-out-of-range",
    ),
    pytest.param(
        "POST", "/scim/v2/Users", None, _deep('"userName": "deep", '), id="deep-json-post"
    ),
    pytest.param(
        "PATCH",
        "/scim/v2/Users/{user}",
        None,
        _deep('"Operations": [{"op": "add", "path": "title", "value": "t"}], '),
        id="deep-json-patch",
    ),
    pytest.param(
        "POST",
        "/admin/v1/orgs/{org}/tokens",
        None,
        {"description": "a\x00b"},
        id="nul-in-token-description",
    ),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), KNOWN)
def test_known_500_is_a_400(
    live: Live, method: str, path: str, params: dict[str, str] | None, body: Any
) -> None:
    """Each reproduction of issue 12 answers a SCIM 400 (and so changes nothing)."""
    path = path.format(user=live.user_ids[0], org=live.admin_org_id)
    resp = live.call(method, path, body=body, params=params)
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert resp.json()["status"] == "400"
