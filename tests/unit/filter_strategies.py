"""A generator of valid SCIM filters over real User attributes, and a renderer back to text:
the parser's round-trip properties (test_filter_parser.py) and the evaluator's
(test_filter_evaluate.py) both draw from it."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import strategies as st

from scim_service.scim import schema as s
from scim_service.scim.filter import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    Expr,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
)

ENT = s.ENTERPRISE_USER_SCHEMA
CORE = s.USER_SCHEMA


SIMPLE_ATTRS = [
    "userName",
    "displayName",
    "nickName",
    "title",
    "userType",
    "locale",
    "timezone",
    "preferredLanguage",
    "profileUrl",
    "active",
    "id",
    "externalId",
]
COMPLEX_SUBS = {
    "name": ["formatted", "familyName", "givenName", "middleName"],
    "meta": ["created", "lastModified", "resourceType", "version", "location"],
}
MULTI_SUBS = {
    "emails": ["value", "type", "primary", "display"],
    "phoneNumbers": ["value", "type", "primary"],
    "ims": ["value", "type"],
    "roles": ["value", "display", "primary"],
    "x509Certificates": ["value"],
    "addresses": ["streetAddress", "locality", "postalCode", "country", "type", "primary"],
    "groups": ["value", "display", "type", "$ref"],
}
EXTENSION_ATTRS = {
    ENT: ["employeeNumber", "costCenter", "department", "organization", "division"],
    s.PLATFORM_USER_SCHEMA: ["setupState", "setupCompletedAt"],
}
ENT_COMPLEX = {"manager": ["value", "displayName", "$ref"]}

SAMPLE_STRINGS = [
    "bjensen",
    "BJensen@Example.com",
    "work",
    "Work",
    "true",
    "True",
    "2011-05-13T04:42:34Z",
    "2011-05-13T06:42:34+02:00",
    "2011-05-13T04:42:34",
    "2020",
    "",
    "é",
    "Employee",
    "701984",
    "pending",
]


@st.composite
def _cased(draw: st.DrawFn, name: str) -> str:
    """The name with a random mix of upper and lower case (names are case-insensitive)."""
    if not draw(st.booleans()):
        return name
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.swapcase() if f else c for c, f in zip(name, flips, strict=True))


@st.composite
def attr_paths(draw: st.DrawFn) -> AttrPath:
    """A top-level attribute path that exists on User (sometimes with a sibling typo)."""
    kind = draw(st.sampled_from(["simple", "complex", "multi", "multisub", "ext", "entmgr"]))
    urn: str | None = None
    sub: str | None = None
    if kind == "simple":
        attr = draw(st.sampled_from(SIMPLE_ATTRS))
        urn = draw(st.sampled_from([None, None, CORE]))
    elif kind == "complex":
        attr = draw(st.sampled_from(sorted(COMPLEX_SUBS)))
        sub = draw(st.sampled_from([None, *COMPLEX_SUBS[attr]]))
    elif kind in ("multi", "multisub"):
        attr = draw(st.sampled_from(sorted(MULTI_SUBS)))
        sub = draw(st.sampled_from(MULTI_SUBS[attr])) if kind == "multisub" else None
    elif kind == "ext":
        urn = draw(st.sampled_from(sorted(EXTENSION_ATTRS)))
        attr = draw(st.sampled_from(EXTENSION_ATTRS[urn]))
    else:
        urn = ENT
        attr = "manager"
        sub = draw(st.sampled_from([None, *ENT_COMPLEX["manager"]]))
    if draw(st.integers(0, 30)) == 0:
        attr = draw(st.sampled_from(["nonexistent", "employeeNumber", "members"]))
    attr = draw(_cased(attr))
    if sub is not None:
        sub = draw(_cased(sub))
    return AttrPath(attr, sub, urn)


values: st.SearchStrategy[Value] = st.one_of(
    st.sampled_from(SAMPLE_STRINGS),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _leaf(paths: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Compare, paths, st.sampled_from(sorted(COMPARE_OPS)), values),
        st.builds(Present, paths),
    )


def _tree(leaf: st.SearchStrategy[Expr], depth: int) -> st.SearchStrategy[Expr]:
    if depth == 0:
        return leaf
    child = st.deferred(lambda: _tree(leaf, depth - 1))
    return st.one_of(
        leaf,
        st.builds(And, child, child),
        st.builds(Or, child, child),
        st.builds(Not, child),
    )


@st.composite
def value_paths(draw: st.DrawFn) -> Expr:
    attr = draw(st.sampled_from(sorted(MULTI_SUBS)))
    subs = [AttrPath(draw(_cased(n))) for n in MULTI_SUBS[attr]]
    inner = draw(_tree(_leaf(st.sampled_from(subs)), 2))
    return ValuePath(AttrPath(draw(_cased(attr))), inner)


def filters(depth: int = 3) -> st.SearchStrategy[Expr]:
    """Valid filters (syntactically) over User attributes, nested at most `depth` levels."""
    return _tree(st.one_of(_leaf(attr_paths()), value_paths()), depth)


Case = Callable[[str], str]


def render_value(value: Value, ascii_only: bool = True, case: Case = str.lower) -> str:
    if value is None or isinstance(value, bool):
        return case(json.dumps(value))
    return json.dumps(value, ensure_ascii=ascii_only)


def render(expr: Expr, case: Case = str.lower, ascii_only: bool = True) -> str:
    """The filter text for an AST, with as few parentheses as precedence allows."""

    def r(e: Expr) -> str:
        if isinstance(e, Compare):
            return f"{e.path} {case(e.op)} {render_value(e.value, ascii_only, case)}"
        if isinstance(e, Present):
            return f"{e.path} {case('pr')}"
        if isinstance(e, ValuePath):
            return f"{e.path}[{r(e.filter)}]"
        if isinstance(e, Not):
            return f"{case('not')} ({r(e.expr)})"
        if isinstance(e, And):
            left = f"({r(e.left)})" if isinstance(e.left, Or) else r(e.left)
            right = f"({r(e.right)})" if isinstance(e.right, (And, Or)) else r(e.right)
            return f"{left} {case('and')} {right}"
        left = r(e.left)
        right = f"({r(e.right)})" if isinstance(e.right, Or) else r(e.right)
        return f"{left} {case('or')} {right}"

    return r(expr)
