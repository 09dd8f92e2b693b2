"""Golden IdP conversations: replay what JumpCloud, Okta and Entra ID send, check what we answer.

Each file `tests/idp/<vendor>/NN_name.json` is one scenario taken from the vendor's public
material (its `source`): a list of steps, each a request exactly as the IdP sends it (method,
path relative to /scim/v2 with the vendor's own query encoding, headers, body) and what a
correct server answers. Every scenario runs against the real app on a fresh database.

File format (see tests/idp/*/ for examples):

    {"description": "Okta: ...", "source": "https://..." or ["https://...", ...],
     "steps": [{"name": "...", "note": "optional",
                "request": {"method": "POST", "path": "/Users", "headers": {...},
                            "body": {...}  or  "body_text": "raw, not JSON"},
                "response": {"status": 201, "headers": {...}, "body": {...} | null},
                "capture": {"user_id": "id", "first": "Resources.0.id"}}]}

- `{{name}}` is replaced by a captured value anywhere in a request or an expected response.
  Captures are dotted paths into the response body (digits index arrays) and are taken before
  the expected response is checked, so a step's expectations may use its own captures.
- A request body is sent as JSON bytes; with no Content-Type among the step's headers none is
  sent (Okta's spec test posts users that way). The tenant's bearer token is always added.
- Expected bodies: objects are subset matches; `"$absent": [keys]` inside an object asserts the
  keys are missing; arrays match element-wise in order and must have the same length, unless
  written `{"$contains": [...]}` (each listed element matches a distinct actual element) or
  `{"$unordered": [...]}` (same length, any order). Strings compare exactly, except the whole
  string tokens `{{any}}` (any non-null value), `{{uuid}}`, `{{datetime}}` (RFC 3339) and
  `{{ci:Text}}` (case-insensitive). Numbers, booleans and null compare by value and JSON type.
  Keys such as `$ref` are ordinary attribute names.
- `"body": null` expects an empty body (204); leaving `body` out skips the body check.
- Expected headers match by case-insensitive name with the same string rules; Content-Type
  compares the media type only (parameters such as charset are ignored).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from tests.conftest import Tenant

IDP_DIR = Path(__file__).resolve().parent
VENDORS = {"jumpcloud": "JumpCloud", "okta": "Okta", "entra": "Entra"}
SCIM_PREFIX = "/scim/v2"

ANY = "{{any}}"
UUID_TOKEN = "{{uuid}}"
DATETIME_TOKEN = "{{datetime}}"
_CI_TOKEN = re.compile(r"^\{\{ci:(.*)\}\}$", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SPECIAL_KEYS = ("$contains", "$unordered")


# --- the matcher ---------------------------------------------------------------------------------


def _show(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_matcher_token(name: str) -> bool:
    """`name` (the text between the braces) is a matcher token, not a captured variable."""
    return name in ("any", "uuid", "datetime") or name.startswith("ci:")


def _is_datetime(value: str) -> bool:
    if "T" not in value.upper():
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def match_string(expected: str, actual: Any, path: str) -> list[str]:
    ci = _CI_TOKEN.match(expected)
    if expected == ANY:
        ok = actual is not None
    elif expected == UUID_TOKEN:
        ok = isinstance(actual, str) and bool(_UUID.match(actual))
    elif expected == DATETIME_TOKEN:
        ok = isinstance(actual, str) and _is_datetime(actual)
    elif ci is not None:
        ok = isinstance(actual, str) and actual.casefold() == ci.group(1).casefold()
    else:
        ok = isinstance(actual, str) and actual == expected
    return [] if ok else [f"{path}: expected {_show(expected)}, got {_show(actual)}"]


def match_scalar(expected: Any, actual: Any, path: str) -> list[str]:
    if isinstance(expected, bool) or expected is None:
        ok = actual is expected
    else:  # a number: int and float compare by value, a boolean is never a number
        ok = (
            isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual == expected
        )
    return [] if ok else [f"{path}: expected {_show(expected)}, got {_show(actual)}"]


def match_object(expected: dict[str, Any], actual: Any, path: str) -> list[str]:
    if not isinstance(actual, dict):
        return [f"{path}: expected an object, got {_show(actual)}"]
    problems: list[str] = []
    for key, want in expected.items():
        if key == "$absent":
            problems += [
                f"{path}.{name}: expected absent, got {_show(actual[name])}"
                for name in want
                if name in actual
            ]
        elif key not in actual:
            problems.append(f"{path}.{key}: missing (expected {_show(want)})")
        else:
            problems += match(want, actual[key], f"{path}.{key}")
    return problems


def match_list(expected: list[Any], actual: Any, path: str) -> list[str]:
    if not isinstance(actual, list):
        return [f"{path}: expected an array, got {_show(actual)}"]
    if len(expected) != len(actual):
        return [f"{path}: expected {len(expected)} element(s), got {len(actual)}: {_show(actual)}"]
    problems: list[str] = []
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        problems += match(want, got, f"{path}[{i}]")
    return problems


def _assign(candidates: list[list[int]]) -> bool:
    """Whether every expected element gets a distinct actual element (bipartite matching)."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    return all(place(i, set()) for i in range(len(candidates)))


def match_some(expected: list[Any], actual: Any, path: str, *, exact_length: bool) -> list[str]:
    if not isinstance(actual, list):
        return [f"{path}: expected an array, got {_show(actual)}"]
    if exact_length and len(expected) != len(actual):
        return [
            f"{path}: expected {len(expected)} element(s) in any order, got {len(actual)}: "
            f"{_show(actual)}"
        ]
    candidates = [
        [j for j, got in enumerate(actual) if not match(want, got, f"{path}[{j}]")]
        for want in expected
    ]
    problems = [
        f"{path}: no element matches {_show(want)}; actual: {_show(actual)}"
        for want, found in zip(expected, candidates, strict=True)
        if not found
    ]
    if not problems and not _assign(candidates):
        problems.append(
            f"{path}: the expected elements {_show(expected)} cannot each match a different "
            f"element of {_show(actual)}"
        )
    return problems


def match(expected: Any, actual: Any, path: str = "body") -> list[str]:
    """Every way `actual` differs from `expected`, as messages naming the JSON path."""
    if isinstance(expected, dict):
        if len(expected) == 1 and next(iter(expected)) in _SPECIAL_KEYS:
            key, items = next(iter(expected.items()))
            return match_some(items, actual, path, exact_length=key == "$unordered")
        return match_object(expected, actual, path)
    if isinstance(expected, list):
        return match_list(expected, actual, path)
    if isinstance(expected, str):
        return match_string(expected, actual, path)
    return match_scalar(expected, actual, path)


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def match_headers(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    by_name = {name.lower(): value for name, value in actual.items()}
    problems: list[str] = []
    for name, want in expected.items():
        got = by_name.get(name.lower())
        where = f"header {name}"
        if got is None:
            problems.append(f"{where}: missing (expected {_show(want)})")
        elif name.lower() == "content-type" and not want.startswith("{{"):
            if media_type(got) != media_type(want):
                problems.append(f"{where}: expected media type {want!r}, got {got!r}")
        else:
            problems += match_string(want, got, where)
    return problems


# --- placeholders and captures --------------------------------------------------------------------


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with every `{{name}}` of a captured variable replaced; matcher tokens are kept.

    A string that is exactly one placeholder takes the captured value with its JSON type.
    """
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and whole.group(1) in variables:
        return variables[whole.group(1)]

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name in variables:
            return str(variables[name])
        if is_matcher_token(name):
            return found.group(0)
        raise KeyError(f"placeholder {found.group(0)} has not been captured")

    return _PLACEHOLDER.sub(replace, value)


def placeholders(value: Any) -> set[str]:
    """Names of the variables (not matcher tokens) that `value` refers to."""
    if isinstance(value, dict):
        return set().union(*(placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(placeholders(item) for item in value))
    if isinstance(value, str):
        return {name for name in _PLACEHOLDER.findall(value) if not is_matcher_token(name)}
    return set()


_MISSING = object()


def dig(body: Any, dotted: str) -> Any:
    """The value at a dotted path (`Resources.0.id`), or _MISSING."""
    node = body
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


# --- scenarios ------------------------------------------------------------------------------------


def scenario_files() -> list[Path]:
    return sorted(IDP_DIR.glob("*/*.json"))


def scenario_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load_scenario(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        scenario: dict[str, Any] = json.load(fh)
    return scenario


def _pretty(value: Any, limit: int = 4000) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


def _failure(
    sid: str,
    where: str,
    request: Mapping[str, Any],
    status: int,
    body: Any,
    expected: Mapping[str, Any],
    problems: list[str],
) -> str:
    lines = [
        f"{sid}, {where}",
        f"request: {request['method']} {SCIM_PREFIX}{request['path']}",
    ]
    if "body" in request:
        lines.append(f"request body:\n{_pretty(request['body'])}")
    lines.append(f"status: expected {expected['status']}, got {status}")
    if "body" in expected:
        lines.append(f"expected body:\n{_pretty(expected['body'])}")
    lines.append(f"actual body:\n{_pretty(body)}")
    lines.append("problems:")
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)


def parse_body(raw: bytes) -> tuple[Any, bool]:
    """(the decoded JSON, True), or (the text, False) when the body is empty or not JSON."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), True
    except ValueError:
        return text, False


def check_body(expected: Mapping[str, Any], body: Any, is_json: bool) -> list[str]:
    if "body" not in expected:
        return []
    if expected["body"] is None:
        return [] if body == "" else [f"body: expected no body, got {_show(body)}"]
    if not is_json:
        return [f"body: expected JSON, got {_show(body)}"]
    return match(expected["body"], body)


def take_captures(captures: Mapping[str, str], body: Any, variables: dict[str, Any]) -> list[str]:
    problems = []
    for name, dotted in captures.items():
        value = dig(body, dotted)
        if value is _MISSING:
            problems.append(f"capture {name}: nothing at {dotted!r} in the response body")
        else:
            variables[name] = value
    return problems


async def run_step(client: Any, auth: Mapping[str, str], request: Mapping[str, Any]) -> Any:
    headers = {**auth, **request.get("headers", {})}
    data: bytes | None = None
    if "body" in request:
        data = json.dumps(request["body"]).encode()
    elif "body_text" in request:
        data = request["body_text"].encode()
    skip = [] if any(name.lower() == "content-type" for name in headers) else ["Content-Type"]
    return await client.request(
        request["method"],
        URL(SCIM_PREFIX + request["path"], encoded=True),  # the vendor's encoding, unchanged
        headers=headers,
        data=data,
        skip_auto_headers=skip,
    )


def check_step(
    step: Mapping[str, Any],
    status: int,
    headers: Mapping[str, str],
    body: Any,
    is_json: bool,
    variables: dict[str, Any],
) -> tuple[Mapping[str, Any], list[str]]:
    """Status first, then captures, then headers and body: (the expected response, problems)."""
    expected = step["response"]
    if status != expected["status"]:
        return expected, [f"status: expected {expected['status']}, got {status}"]
    problems = take_captures(step.get("capture", {}), body, variables)
    if problems:
        return expected, problems
    expected = substitute(expected, variables)
    return expected, match_headers(expected.get("headers", {}), headers) + check_body(
        expected, body, is_json
    )


async def run_scenario(
    client: Any, auth: Mapping[str, str], scenario: Mapping[str, Any], sid: str
) -> None:
    variables: dict[str, Any] = {}
    steps = scenario["steps"]
    for index, step in enumerate(steps, 1):
        request = substitute(step["request"], variables)
        resp = await run_step(client, auth, request)
        body, is_json = parse_body(await resp.read())
        expected, problems = check_step(step, resp.status, resp.headers, body, is_json, variables)
        if problems:
            where = f"step {index}/{len(steps)} {step['name']!r}"
            report = _failure(sid, where, request, resp.status, body, expected, problems)
            pytest.fail(report, pytrace=False)


SCENARIOS = scenario_files()


@pytest.mark.parametrize("path", SCENARIOS, ids=scenario_id)
async def test_idp_conversation(client: Any, tenant: Tenant, path: Path) -> None:
    await run_scenario(client, tenant.headers, load_scenario(path), scenario_id(path))


# --- the scenario files themselves (no server needed) ----------------------------------------------

_STEP_KEYS = {"name", "note", "request", "response", "capture"}
_REQUEST_KEYS = {"method", "path", "headers", "body", "body_text"}
_RESPONSE_KEYS = {"status", "headers", "body"}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize("path", SCENARIOS, ids=scenario_id)
def test_scenario_file_is_well_formed(path: Path) -> None:
    scenario = load_scenario(path)
    sid = scenario_id(path)
    assert set(scenario) == {"description", "source", "steps"}, sid
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem), f"{sid}: name files NN_short_name.json"
    assert scenario["description"].startswith(VENDORS[path.parent.name] + ": "), sid
    sources = scenario["source"] if isinstance(scenario["source"], list) else [scenario["source"]]
    assert sources and all(s.startswith("https://") for s in sources), sid
    assert scenario["steps"], sid
    captured: set[str] = set()
    for index, step in enumerate(scenario["steps"], 1):
        where = f"{sid} step {index} {step.get('name')!r}"
        assert set(step) <= _STEP_KEYS and {"name", "request", "response"} <= set(step), where
        request, response = step["request"], step["response"]
        assert set(request) <= _REQUEST_KEYS, where
        assert not ("body" in request and "body_text" in request), where
        assert request["method"] in _METHODS, where
        assert request["path"].startswith("/") and not request["path"].startswith("/scim"), where
        assert " " not in request["path"], f"{where}: encode the path as the vendor does"
        assert set(response) <= _RESPONSE_KEYS and isinstance(response["status"], int), where
        if response["status"] == 204:
            assert response.get("body", None) is None, f"{where}: 204 has no body"
        unknown = placeholders(request) - captured
        assert not unknown, f"{where}: request uses {sorted(unknown)} before they are captured"
        capture = step.get("capture", {})
        assert all(isinstance(v, str) and v for v in capture.values()), where
        captured |= set(capture)
        unknown = placeholders(response) - captured
        assert not unknown, f"{where}: response uses {sorted(unknown)} that are never captured"


def test_every_vendor_has_scenarios() -> None:
    counts = {vendor: len(list((IDP_DIR / vendor).glob("*.json"))) for vendor in VENDORS}
    assert all(n >= 8 for n in counts.values()), counts


# --- unit tests of the matcher (so a matcher bug cannot hide a server bug) -------------------------


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        ({"a": 1}, {"a": 1, "extra": True}),
        ({"a": {"b": "x"}}, {"a": {"b": "x", "c": "y"}}),
        ({"$absent": ["password"], "id": "1"}, {"id": "1"}),
        ([1, 2], [1, 2]),
        ([], []),
        ({"$contains": [2]}, [1, 2, 3]),
        ({"$contains": [{"v": 1}, {"v": 1}]}, [{"v": 1, "x": 1}, {"v": 1, "x": 2}]),
        ({"$unordered": [{"v": 2}, {"v": 1}]}, [{"v": 1}, {"v": 2}]),
        ({"$contains": [{"v": 1}, {}]}, [{"v": 2}, {"v": 1}]),  # needs the matching, not greed
        ("{{any}}", "anything"),
        ("{{any}}", False),
        ("{{any}}", 0),
        ("{{uuid}}", "23a35c27-23d3-4c03-b4c5-6443c09e7173"),
        ("{{datetime}}", "2018-03-27T19:59:26.000Z"),
        ("{{datetime}}", "2024-01-02T03:04:05+01:00"),
        ("{{ci:Test.User@Okta.local}}", "test.user@okta.local"),
        ("exact", "exact"),
        (True, True),
        (None, None),
        (1, 1.0),
        (
            {"$ref": "http://scim.test/scim/v2/Users/1"},
            {"$ref": "http://scim.test/scim/v2/Users/1"},
        ),
    ],
)
def test_matcher_accepts(expected: Any, actual: Any) -> None:
    assert match(expected, actual) == []


@pytest.mark.parametrize(
    ("expected", "actual", "fragment"),
    [
        ({"a": 1}, {"b": 1}, "body.a: missing"),
        ({"a": 1}, {"a": 2}, "body.a: expected 1, got 2"),
        ({"a": 1}, [], "expected an object"),
        ({"$absent": ["password"]}, {"password": "x"}, "body.password: expected absent"),
        ([1, 2], [1, 2, 3], "expected 2 element(s), got 3"),
        ([1, 2], [2, 1], "body[0]: expected 1, got 2"),
        ([1], {"0": 1}, "expected an array"),
        ({"$contains": [4]}, [1, 2, 3], "no element matches 4"),
        ({"$contains": [{"v": 1}, {"v": 1}]}, [{"v": 1}], "cannot each match a different"),
        ({"$unordered": [1, 2]}, [2, 1, 1], "expected 2 element(s) in any order, got 3"),
        ({"$unordered": [1, 1]}, [1, 2], "cannot each match a different"),
        ("{{any}}", None, 'expected "{{any}}", got null'),
        ("{{uuid}}", "not-a-uuid", 'expected "{{uuid}}"'),
        ("{{uuid}}", 5, 'expected "{{uuid}}"'),
        ("{{datetime}}", "2018-03-27", 'expected "{{datetime}}"'),
        ("{{datetime}}", "2018-03-27T19:59:26", 'expected "{{datetime}}"'),  # no offset
        ("{{ci:abc}}", "abd", 'expected "{{ci:abc}}"'),
        ("Exact", "exact", 'expected "Exact", got "exact"'),
        ("1", 1, 'expected "1", got 1'),
        (True, 1, "expected true, got 1"),
        (False, None, "expected false, got null"),
        (1, True, "expected 1, got true"),
        (None, "", "expected null"),
        ({"a": {"b": [{"c": 1}]}}, {"a": {"b": [{"c": 2}]}}, "body.a.b[0].c: expected 1"),
    ],
)
def test_matcher_rejects(expected: Any, actual: Any, fragment: str) -> None:
    problems = match(expected, actual)
    assert problems, f"{expected!r} should not match {actual!r}"
    assert any(fragment in p for p in problems), problems


def test_matcher_reports_every_problem() -> None:
    problems = match({"a": 1, "b": 2, "$absent": ["c"]}, {"a": 0, "c": 3})
    assert len(problems) == 3, problems


def test_headers_match_by_name_and_media_type() -> None:
    actual = {"content-type": "application/scim+json; charset=utf-8", "ETag": 'W/"1"'}
    assert match_headers({"Content-Type": "application/scim+json", "etag": "{{any}}"}, actual) == []
    assert match_headers({"Content-Type": "application/json"}, actual)
    assert match_headers({"Location": "{{any}}"}, actual) == [
        'header Location: missing (expected "{{any}}")'
    ]
    assert match_headers({"ETag": 'W/"2"'}, actual)


def test_substitute_keeps_types_and_matcher_tokens() -> None:
    variables = {"id": "abc", "n": 3}
    got = substitute(
        {
            "path": "/Users/{{id}}",
            "count": "{{n}}",
            "any": "{{any}}",
            "ci": "{{ci:X}}",
            "l": ["{{id}}"],
        },
        variables,
    )
    assert got == {
        "path": "/Users/abc",
        "count": 3,
        "any": "{{any}}",
        "ci": "{{ci:X}}",
        "l": ["abc"],
    }
    assert substitute('members[value eq "{{id}}"]', variables) == 'members[value eq "abc"]'
    with pytest.raises(KeyError, match="nope"):
        substitute("{{nope}}", variables)


def test_placeholders_and_dig() -> None:
    assert placeholders({"a": ["{{x}} {{any}}", "{{uuid}}", "{{ci:Y}}"], "b": "{{y}}"}) == {
        "x",
        "y",
    }
    body = {"Resources": [{"id": "u1"}], "totalResults": 1}
    assert dig(body, "Resources.0.id") == "u1"
    assert dig(body, "totalResults") == 1
    assert dig(body, "Resources.1.id") is _MISSING
    assert dig(body, "nope") is _MISSING
    assert dig(None, "id") is _MISSING


def test_uuid_token_is_what_uuid4_produces() -> None:
    assert match("{{uuid}}", str(uuid.uuid4())) == []
    assert match("{{uuid}}", str(uuid.uuid4()).upper()) == []
