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

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim_service.errors import InvalidFilter, ScimError
from scim_service.scim import schema as s
from scim_service.scim.filter import And, AttrPath, Expr, Not, Or, Present, ValuePath


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


def parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def check_comparable(
    attr: s.Attr, op: str, value: Any, error: type[ScimError] = InvalidFilter
) -> Any:
    """Validate a compValue against the attribute type; return the normalised value."""
    if op in ("pr",):
        return value
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
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise error(f"{attr.name} is a dateTime: compare it with an RFC 3339 string")
        if op in ("co", "sw", "ew"):
            raise error(f"{attr.name} is a dateTime: co, sw and ew do not apply")
        return parse_datetime(value)
    if attr.type in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise error(f"{attr.name} is a number: compare it with a number")
        return value
    if attr.type == "binary" and op not in ("eq", "ne", "pr"):
        raise error(f"{attr.name} is binary: only eq and ne apply")
    if not isinstance(value, str):
        raise error(f"{attr.name} is a string: compare it with a quoted string")
    return value


def _fold(attr: s.Attr, value: str) -> str:
    return value if attr.case_exact else value.lower()


def compare_scalar(attr: s.Attr, actual: Any, op: str, value: Any) -> bool:
    """One stored value against one (already checked) compValue."""
    if actual is None:
        return False
    if value is None:  # `eq null` is handled by the caller as "absent"
        return False
    if attr.type == "boolean":
        if isinstance(actual, str):
            actual = actual.lower() == "true"
        return (actual == value) if op == "eq" else False
    if attr.type == "dateTime":
        got = parse_datetime(actual) if isinstance(actual, str) else actual
        if got is None:
            return False
        return _order(op, got, value)
    if attr.type in ("integer", "decimal"):
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return False
        return _order(op, actual, value)
    if not isinstance(actual, str):
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
    if value is None:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


# --- evaluation over a resource or an element --------------------------------------------------


def _values(resource: dict[str, Any], r: Resolved) -> list[Any]:
    """All values a path designates in a resource (its output representation)."""
    container = resource if r.extension is None else resource.get(r.extension) or {}
    top = container.get(r.attr.name) if isinstance(container, dict) else None
    items = top if isinstance(top, list) else ([] if top is None else [top])
    if r.sub is not None:
        return [i.get(r.sub.name) for i in items if isinstance(i, dict)]
    if r.attr.type == "complex" and r.attr.multi_valued:
        # `emails eq "x"` compares the elements' `value` (RFC 7644 §3.4.2.2).
        return [i.get("value") for i in items if isinstance(i, dict)]
    return items


def _leaf_for_compare(r: Resolved) -> s.Attr:
    if r.sub is None and r.attr.type == "complex" and r.attr.multi_valued:
        value = r.attr.sub("value")
        if value is not None:
            return value
    return r.leaf


def matches(rtype: s.ResourceType, expr: Expr, resource: dict[str, Any]) -> bool:
    if isinstance(expr, And):
        return matches(rtype, expr.left, resource) and matches(rtype, expr.right, resource)
    if isinstance(expr, Or):
        return matches(rtype, expr.left, resource) or matches(rtype, expr.right, resource)
    if isinstance(expr, Not):
        return not matches(rtype, expr.expr, resource)
    if isinstance(expr, ValuePath):
        r = resolve(rtype, expr.path)
        if not (r.attr.type == "complex" and r.attr.multi_valued) or r.sub is not None:
            raise InvalidFilter(f"{expr.path} is not a multi-valued complex attribute")
        container = resource if r.extension is None else resource.get(r.extension) or {}
        items = container.get(r.attr.name) or []
        return any(isinstance(i, dict) and matches_element(r.attr, expr.filter, i) for i in items)
    r = resolve(rtype, expr.path)
    values = _values(resource, r)
    if isinstance(expr, Present):
        return any(_present(v) for v in values)
    leaf = _leaf_for_compare(r)
    value = check_comparable(leaf, expr.op, expr.value)
    if expr.value is None:
        present = any(_present(v) for v in values)
        return not present if expr.op == "eq" else present
    if expr.op == "ne":
        return not any(compare_scalar(leaf, v, "eq", value) for v in values)
    return any(compare_scalar(leaf, v, expr.op, value) for v in values)


def matches_element(
    parent: s.Attr, expr: Expr, element: dict[str, Any], error: type[ScimError] = InvalidFilter
) -> bool:
    """Evaluate a value filter against one element of the multi-valued attribute `parent`.

    PATCH passes `error=InvalidPath` so an unknown sub-attribute in a path filter is reported
    as a path error rather than a filter error.
    """
    if isinstance(expr, And):
        return matches_element(parent, expr.left, element, error) and matches_element(
            parent, expr.right, element, error
        )
    if isinstance(expr, Or):
        return matches_element(parent, expr.left, element, error) or matches_element(
            parent, expr.right, element, error
        )
    if isinstance(expr, Not):
        return not matches_element(parent, expr.expr, element, error)
    if isinstance(expr, ValuePath):
        raise error("Value filters cannot be nested")
    sub = resolve_sub(parent, expr.path, error)
    actual = element.get(sub.name)
    if isinstance(expr, Present):
        return _present(actual)
    value = check_comparable(sub, expr.op, expr.value, error)
    if expr.value is None:
        return (not _present(actual)) if expr.op == "eq" else _present(actual)
    if expr.op == "ne":
        return not compare_scalar(sub, actual, "eq", value)
    return compare_scalar(sub, actual, expr.op, value)
