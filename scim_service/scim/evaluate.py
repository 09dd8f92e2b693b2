"""Attribute-path resolution against a schema, and filter evaluation in Python.

The SQL compiler (`store/filters.py`) is what answers list queries; this evaluator gives the
same answers in memory. PATCH uses it to pick the elements a value filter selects
(`emails[type eq "work"]`), and the property tests use it as the oracle the SQL must agree with.

Comparison rules (RFC 7644 §3.4.2.2): strings compare case-insensitively unless the attribute
is caseExact; gt/ge/lt/le order strings by code point and dateTimes chronologically; booleans
allow only eq/ne; a multi-valued attribute matches when any of its values does; `ne` and
`not` are the negation of the positive match (an absent attribute is "not equal").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim_service.errors import InvalidFilter, ScimError
from scim_service.scim import schema as s
from scim_service.scim.filter import (
    COMPARE_OPS,
    And,
    AttrPath,
    Expr,
    Not,
    Or,
    Present,
    ValuePath,
)


@dataclass(frozen=True, slots=True)
class Resolved:
    """An attribute path resolved against a resource type."""

    schema: s.Schema
    attr: s.Attr
    sub: s.Attr | None

    @property
    def leaf(self) -> s.Attr:
        return self.sub or self.attr

    @property
    def extension(self) -> str | None:
        """The extension URN the attribute lives under in a resource, or None for core."""
        return None if self.schema.id in (s.USER_SCHEMA, s.GROUP_SCHEMA) else self.schema.id


def resolve(
    rtype: s.ResourceType, path: AttrPath, error: type[ScimError] = InvalidFilter
) -> Resolved:
    """Resolve `[urn:]attr[.sub]` or raise `error` naming the unknown attribute."""
    if path.urn is not None:
        found = s.resolve(rtype, f"{path.urn}:{path.attr}")
    else:
        found = s.resolve(rtype, path.attr)
    if found is None:
        raise error(f"Unknown attribute {path} for resource type {rtype.id}")
    schema, attr = found
    sub = None
    if path.sub is not None:
        if attr.type != "complex":
            raise error(f"Attribute {attr.name} has no sub-attribute {path.sub!r}")
        sub = attr.sub(path.sub)
        if sub is None:
            raise error(f"Unknown sub-attribute {path} for resource type {rtype.id}")
    return Resolved(schema, attr, sub)


def resolve_sub(parent: s.Attr, path: AttrPath, error: type[ScimError] = InvalidFilter) -> s.Attr:
    """Resolve a path inside a value filter (relative to an element of `parent`)."""
    sub = parent.sub(path.attr)
    if sub is None or path.sub is not None or path.urn is not None:
        raise error(f"Unknown sub-attribute {path} of {parent.name}")
    return sub


# --- scalar comparison ------------------------------------------------------------------------

# RFC 7643 §2.3.5: xsd:dateTime, e.g. "2011-05-13T04:42:34Z" (RFC 3339 with an optional offset).
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def parse_datetime(value: str) -> datetime | None:
    """An xsd:dateTime as an aware datetime (no offset means UTC), or None if malformed."""
    if not isinstance(value, str) or not _DATETIME_RE.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:  # beyond microseconds, fractional digits are truncated
        parsed = datetime.fromisoformat(text)
    except ValueError:  # month 13, hour 25, offset +24:00...
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def check_comparable(
    attr: s.Attr, op: str, value: Any, error: type[ScimError] = InvalidFilter
) -> Any:
    """Validate a compValue against the attribute type; return the normalised value."""
    if op == "pr":
        return value
    if op not in COMPARE_OPS:
        raise error(f"Unknown operator {op!r}")
    if value is None:
        if op not in ("eq", "ne"):
            raise error(f"null can only be compared with eq or ne ({attr.name})")
        return None
    if attr.type == "complex":
        raise error(f"{attr.name} is complex: compare one of its sub-attributes")
    if attr.type == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise error(f"{attr.name} is a boolean: compare it with true or false")
        if op not in ("eq", "ne"):
            raise error(f"{attr.name} is a boolean: only eq and ne apply")
        return value
    if attr.type == "dateTime":
        if op in ("co", "sw", "ew"):
            raise error(f"{attr.name} is a dateTime: co, sw and ew do not apply")
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise error(
                f"{attr.name} is a dateTime: compare it with an RFC 3339 string "
                '(e.g. "2011-05-13T04:42:34Z")'
            )
        return parsed
    if attr.type in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise error(f"{attr.name} is a number: compare it with a number")
        if op in ("co", "sw", "ew"):
            raise error(f"{attr.name} is a number: co, sw and ew do not apply")
        return value
    if attr.type == "binary" and op not in ("eq", "ne"):
        raise error(f"{attr.name} is binary: only eq and ne apply")
    if not isinstance(value, str):
        raise error(f"{attr.name} is a string: compare it with a quoted string")
    return value


def _fold(attr: s.Attr, value: str) -> str:
    return value if attr.case_exact else value.lower()


def compare_scalar(attr: s.Attr, actual: Any, op: str, value: Any) -> bool:
    """One stored value against one (already checked) compValue; `ne` is the caller's job."""
    if actual is None or value is None:  # `eq null` is handled by the caller as "absent"
        return False
    if attr.type == "boolean":
        if isinstance(actual, str) and actual.lower() in ("true", "false"):
            actual = actual.lower() == "true"
        return isinstance(actual, bool) and op == "eq" and actual == value
    if attr.type == "dateTime":
        if isinstance(actual, str):
            got = parse_datetime(actual)
        elif isinstance(actual, datetime):
            got = actual if actual.tzinfo is not None else actual.replace(tzinfo=UTC)
        else:
            got = None
        if got is None or not isinstance(value, datetime):
            return False
        want = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return _order(op, got, want)
    if attr.type in ("integer", "decimal"):
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return False
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return _order(op, actual, value)
    if not isinstance(actual, str) or not isinstance(value, str):
        return False
    a, v = _fold(attr, actual), _fold(attr, value)
    if op == "eq":
        return a == v
    if op == "co":
        return v in a
    if op == "sw":
        return a.startswith(v)
    if op == "ew":
        return a.endswith(v)
    return _order(op, a, v)


def _order(op: str, a: Any, b: Any) -> bool:
    if op == "eq":
        return bool(a == b)
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    if op == "le":
        return bool(a <= b)
    return False


def _present(value: Any) -> bool:
    """RFC 7644 §3.4.2.2 `pr`: a non-empty value, or a complex value with a non-empty node."""
    if value is None:
        return False
    if isinstance(value, str):
        return len(value) > 0
    if isinstance(value, list):
        return any(_present(v) for v in value)
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    return True


# --- validation: the whole filter, whatever the resource ---------------------------------------
# A filter is rejected for what it says, not for the data it meets: an unknown attribute or a
# type mismatch raises even where `and`/`or` would short-circuit or an attribute is absent, so
# the evaluator and the SQL compiler reject exactly the same filters.


def _is_multi_complex(attr: s.Attr) -> bool:
    return attr.type == "complex" and attr.multi_valued


def _check(rtype: s.ResourceType, expr: Expr) -> None:
    if isinstance(expr, (And, Or)):
        _check(rtype, expr.left)
        _check(rtype, expr.right)
    elif isinstance(expr, Not):
        _check(rtype, expr.expr)
    elif isinstance(expr, ValuePath):
        r = resolve(rtype, expr.path)
        if not _is_multi_complex(r.attr) or r.sub is not None:
            raise InvalidFilter(f"{expr.path} is not a multi-valued complex attribute")
        check_element(r.attr, expr.filter, InvalidFilter)
    elif isinstance(expr, Present):
        resolve(rtype, expr.path)
    else:
        check_comparable(_leaf_for_compare(resolve(rtype, expr.path)), expr.op, expr.value)


def check_element(parent: s.Attr, expr: Expr, error: type[ScimError]) -> None:
    """Check an element filter (`emails[type eq "work"]`, a PATCH path's filter) against the
    sub-attributes of `parent`: unknown sub-attributes, ill-typed comparisons and nested value
    filters raise `error`, even when nothing is compared."""
    if isinstance(expr, (And, Or)):
        check_element(parent, expr.left, error)
        check_element(parent, expr.right, error)
    elif isinstance(expr, Not):
        check_element(parent, expr.expr, error)
    elif isinstance(expr, ValuePath):
        raise error("Value filters cannot be nested")
    elif isinstance(expr, Present):
        resolve_sub(parent, expr.path, error)
    else:
        check_comparable(resolve_sub(parent, expr.path, error), expr.op, expr.value, error)


# --- evaluation over a resource or an element --------------------------------------------------


def _items(resource: dict[str, Any], r: Resolved) -> list[Any]:
    """The top-level values of the attribute `r` in a resource (its output representation)."""
    container = resource if r.extension is None else resource.get(r.extension)
    top = container.get(r.attr.name) if isinstance(container, dict) else None
    return top if isinstance(top, list) else ([] if top is None else [top])


def _values(resource: dict[str, Any], r: Resolved) -> list[Any]:
    """All values a path designates in a resource, to compare with a compValue."""
    items = _items(resource, r)
    if r.sub is not None:
        return [i.get(r.sub.name) for i in items if isinstance(i, dict)]
    if _is_multi_complex(r.attr):
        # `emails eq "x"` compares the elements' `value` (RFC 7644 §3.4.2.2).
        return [i.get("value") for i in items if isinstance(i, dict)]
    return items


def _leaf_for_compare(r: Resolved) -> s.Attr:
    if r.sub is None and _is_multi_complex(r.attr):
        value = r.attr.sub("value")
        if value is not None:
            return value
    return r.leaf


def _present_at(resource: dict[str, Any], r: Resolved) -> bool:
    """`attr pr`: for a complex attribute without a sub-attribute, any non-empty element."""
    values = _items(resource, r) if r.sub is None else _values(resource, r)
    return any(_present(v) for v in values)


def _eval(rtype: s.ResourceType, expr: Expr, resource: dict[str, Any]) -> bool:
    if isinstance(expr, And):
        return _eval(rtype, expr.left, resource) and _eval(rtype, expr.right, resource)
    if isinstance(expr, Or):
        return _eval(rtype, expr.left, resource) or _eval(rtype, expr.right, resource)
    if isinstance(expr, Not):
        return not _eval(rtype, expr.expr, resource)
    r = resolve(rtype, expr.path)
    if isinstance(expr, ValuePath):
        return any(
            isinstance(i, dict) and _eval_element(r.attr, expr.filter, i)
            for i in _items(resource, r)
        )
    if isinstance(expr, Present):
        return _present_at(resource, r)
    if expr.value is None:  # `x eq null` is `not (x pr)`; `x ne null` is `x pr`
        present = _present_at(resource, r)
        return not present if expr.op == "eq" else present
    leaf = _leaf_for_compare(r)
    value = check_comparable(leaf, expr.op, expr.value)
    values = _values(resource, r)
    if expr.op == "ne":
        return not any(compare_scalar(leaf, v, "eq", value) for v in values)
    return any(compare_scalar(leaf, v, expr.op, value) for v in values)


def _eval_element(parent: s.Attr, expr: Expr, element: dict[str, Any]) -> bool:
    if isinstance(expr, And):
        return _eval_element(parent, expr.left, element) and _eval_element(
            parent, expr.right, element
        )
    if isinstance(expr, Or):
        return _eval_element(parent, expr.left, element) or _eval_element(
            parent, expr.right, element
        )
    if isinstance(expr, Not):
        return not _eval_element(parent, expr.expr, element)
    if isinstance(expr, ValuePath):  # rejected by check_element
        raise InvalidFilter("Value filters cannot be nested")
    sub = resolve_sub(parent, expr.path)
    actual = element.get(sub.name)
    if isinstance(expr, Present) or expr.value is None:
        present = _present(actual)
        if isinstance(expr, Present):
            return present
        return not present if expr.op == "eq" else present
    value = check_comparable(sub, expr.op, expr.value)
    if expr.op == "ne":
        return not compare_scalar(sub, actual, "eq", value)
    return compare_scalar(sub, actual, expr.op, value)


def matches(rtype: s.ResourceType, expr: Expr, resource: dict[str, Any]) -> bool:
    """Whether `resource` (output representation) matches the filter; InvalidFilter if the
    filter is not valid for `rtype`, whatever the resource holds."""
    _check(rtype, expr)
    return _eval(rtype, expr, resource)


def matches_element(
    parent: s.Attr, expr: Expr, element: dict[str, Any], error: type[ScimError] = InvalidFilter
) -> bool:
    """Evaluate a value filter against one element of the multi-valued attribute `parent`.

    PATCH passes `error=InvalidPath` so an unknown sub-attribute in a path filter is reported
    as a path error rather than a filter error. The filter is validated before any element is
    looked at, so an invalid filter fails the same way whatever the element holds.
    """
    check_element(parent, expr, error)
    return _eval_element(parent, expr, element)
