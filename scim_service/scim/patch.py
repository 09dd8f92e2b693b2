"""SCIM PATCH (RFC 7644 §3.5.2): a PatchOp body and stored attrs → new stored attrs.

Pure: no HTTP, no database. `apply_patch` works on a deep copy and returns it only when every
operation succeeded, so a failing request changes nothing (§3.5.2: "A PATCH request, regardless
of the number of operations, SHALL be treated as atomic"). The result goes through the PUT
normalisation (`normalize_resource`) and `check_required`, so it is always valid stored attrs.

Decisions (each cites the rule it follows or bends):
- Envelope errors (body not an object, `schemas` without the PatchOp URN, no or empty
  `Operations`, an operation that is not an object, an unknown `op`) are `invalidSyntax`: "did
  not conform to the request schema" (§3.12). A missing `schemas` is tolerated. `op` and member
  names are case-insensitive (Entra sends "Replace"; RFC 7643 §2.1). More than MAX_OPERATIONS
  operations is `invalidValue`.
- add without a value, or with null, and replace without a value are `invalidValue` ("a
  required value was missing", §3.12; §3.5.2.1 "MUST contain a value"). replace with null
  unassigns (RFC 7643 §2.5). remove without a path is `noTarget` (§3.5.2.2).
- An explicit path naming no attribute is `invalidPath` (§3.12: "invalid or malformed"); a
  path to a readOnly attribute (id, meta, groups, setupState) is `mutability` (§3.5.2); so is
  removing or unassigning a required attribute (§3.5.2.2). The password is writeOnly and never
  stored: accepted and discarded, as PUT does.
- A path-less add/replace carries "a set of attributes" (§3.5.2.1, §3.5.2.3): each key is a
  path (plain, dotted `name.givenName`, URN-qualified, an extension URN with an object, even
  Entra's `emails[type eq "work"].value`); unknown, readOnly and server-owned keys (Okta's
  `id`) are ignored, as in PUT.
- Complex values merge: sub-attributes not given are left unchanged (§3.5.2.3), null ones are
  unassigned by replace. A filtered path merges into each matching element.
- A value filter that matches nothing: add and replace create the element the filter
  describes when it is `eq` terms joined by `and` (`emails[type eq "work"].value` → a new
  `{"type": "work", "value": ...}`), because Entra sends Add or Replace on users without a
  work email; any other filter keeps §3.5.2.3's `noTarget`. remove with no match changes
  nothing (idempotent; §3.5.2.2 asks no error).
- A value set to `primary: true` by an operation wins; the others become false (RFC 7643
  §2.4: at most one primary).
- remove with a `value` on a multi-valued attribute (Entra) removes the elements equal to the
  given ones, by `value` when given (with the attribute's case rules).
- Group `members` are not handled here: those operations are skipped (see patch_members).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from msgspec import UNSET

from scim_service.errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from scim_service.scim import schema as s
from scim_service.scim.evaluate import (
    check_comparable,
    check_element,
    compare_scalar,
    matches_element,
    resolve_sub,
)
from scim_service.scim.filter import And, Compare, Expr, parse_patch_path
from scim_service.scim.limits import MAX_OPERATIONS as MAX_OPERATIONS
from scim_service.scim.limits import check_object, check_operations
from scim_service.scim.resource import (
    SERVER_OWNED,
    check_required,
    normalize_resource,
    normalize_scalar,
    normalize_value,
)

OpName = Literal["add", "remove", "replace"]
_OPS: dict[str, OpName] = {"add": "add", "remove": "remove", "replace": "replace"}


@dataclass(frozen=True, slots=True)
class Operation:
    """One PATCH operation; `value` is `msgspec.UNSET` when the client sent none; `index` is
    its position in the request's `Operations`, for error messages."""

    op: OpName
    path: str | None
    value: Any = UNSET
    index: int = 0


def member(obj: dict[Any, Any], name: str) -> Any:
    """A member of a JSON object by case-insensitive name (RFC 7643 §2.1), else UNSET."""
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return UNSET


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number")


# --- the message --------------------------------------------------------------------------


def parse_operations(body: Any) -> list[Operation]:
    """Check the PatchOp envelope (§3.5.2) and decode its operations, in order."""
    if not isinstance(body, dict):
        raise InvalidSyntax(f"The PATCH body must be a JSON object, got {json_type(body)}")
    schemas = member(body, "schemas")
    if schemas is not UNSET and schemas is not None:
        wanted = s.PATCH_OP.lower()
        if not isinstance(schemas, list) or not any(
            isinstance(x, str) and x.lower() == wanted for x in schemas
        ):
            raise InvalidSyntax(f"'schemas' must contain {s.PATCH_OP!r}")
    raw = member(body, "operations")
    if not isinstance(raw, list) or not raw:
        raise InvalidSyntax("The PATCH body needs 'Operations', an array of one or more operations")
    check_operations(len(raw))  # before decoding any of them
    operations = [_operation(n, item) for n, item in enumerate(raw)]
    # A path-less add/replace is one operation per attribute it sets (each key is resolved).
    check_operations(
        sum(len(o.value) if o.path is None and isinstance(o.value, dict) else 1 for o in operations)
    )
    return operations


def _operation(n: int, raw: Any) -> Operation:
    where = f"Operations[{n}]"
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"{where}: an operation must be an object, got {json_type(raw)}")
    name = member(raw, "op")
    op = _OPS.get(name.lower()) if isinstance(name, str) else None
    if op is None:
        raise InvalidSyntax(f"{where}: 'op' must be add, remove or replace")
    path = member(raw, "path")
    if path is UNSET or path is None or (isinstance(path, str) and not path.strip()):
        path = None
    elif not isinstance(path, str):
        raise InvalidPath(f"{where}: 'path' must be a string, got {json_type(path)}")
    value = member(raw, "value")
    if op == "remove" and path is None:
        raise NoTarget(f"{where}: a remove operation needs a path (RFC 7644 §3.5.2.2)")
    if (op == "add" and (value is UNSET or value is None)) or (op == "replace" and value is UNSET):
        raise InvalidValue(f"{where}: an {op} operation needs a value (RFC 7644 §3.5.2)")
    return Operation(op, path, value, n)


# --- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    text: str  # the path as the client wrote it, for messages
    label: str  # the attribute under the schema's spelling: `name`, `urn:...:User:manager`
    ext: s.Schema | None  # the extension holding the attribute; None for the core schema
    attr: s.Attr | None  # None: the whole extension `ext`
    sub: s.Attr | None = None
    filter: Expr | None = None


def is_members(rtype: s.ResourceType, attr: s.Attr) -> bool:
    return rtype.schema.id == s.GROUP_SCHEMA and attr.name == "members"


def _resolve(rtype: s.ResourceType, text: str, *, strict: bool) -> _Target | None:
    """The target of a path; None when the operation is to be skipped.

    strict (an explicit `path`): unknown → invalidPath, readOnly → mutability. Not strict (a
    key of a path-less value): unknown and readOnly keys are ignored, as PUT ignores them.
    """
    try:
        pp = parse_patch_path(text, tuple(ext.id for ext, _ in rtype.extensions))
    except InvalidPath:
        if strict:
            raise
        return None
    head = pp.path
    if pp.urn_only:  # a whole extension; one whose attributes are all readOnly is readOnly
        ext = rtype.extension(head.attr)
        if ext is not None and all(a.read_only for a in ext.attributes):
            if not strict:
                return None
            raise Mutability(
                f"{ext.id} is readOnly (all its attributes are): it cannot be modified"
            )
        return None if ext is None else _Target(text, ext.id, ext, None)
    found = s.resolve(rtype, f"{head.urn}:{head.attr}" if head.urn else head.attr)
    if found is None:
        if not strict:
            return None
        if head.urn is None and head.attr.lower() == "schemas":
            raise Mutability("'schemas' is set by the service provider; it cannot be patched")
        raise InvalidPath(f"{text!r} is not an attribute of the {rtype.id} resource type")
    schema, attr = found
    if is_members(rtype, attr):
        return None  # group membership: planned by patch_members, never applied here
    ext = None if schema is rtype.schema else schema
    label = attr.name if ext is None else f"{ext.id}:{attr.name}"
    sub_name = head.sub or pp.sub
    sub = attr.sub(sub_name) if sub_name is not None and attr.type == "complex" else None
    if sub_name is not None and sub is None:
        if not strict:
            return None
        raise InvalidPath(f"{label} has no sub-attribute {sub_name!r}")
    if pp.filter is not None:
        if not (attr.multi_valued and attr.type == "complex"):
            raise InvalidPath(f"{label} is not multi-valued: a value filter does not apply to it")
        check_element(attr, pp.filter, InvalidPath)
    if attr.read_only or (sub is not None and sub.read_only):
        if not strict:
            return None
        name = f"{label}.{sub.name}" if sub is not None else label
        raise Mutability(f"{name} is readOnly (RFC 7643 §2.2): it cannot be modified")
    if attr.mutability == "writeOnly":
        return None  # the password: accepted and discarded, never stored
    return _Target(text, label, ext, attr, sub, pp.filter)


def _template(attr: s.Attr, expr: Expr | None) -> dict[str, Any] | None:
    """The element a filter of `eq` terms joined by `and` describes; None for any other filter."""
    if expr is None:
        return {}
    if isinstance(expr, And):
        left, right = _template(attr, expr.left), _template(attr, expr.right)
        if left is None or right is None or any(left.get(k, v) != v for k, v in right.items()):
            return None
        return {**left, **right}
    if isinstance(expr, Compare) and expr.op == "eq" and expr.value is not None:
        sub = resolve_sub(attr, expr.path, InvalidPath)
        if sub.read_only:
            return None
        return {sub.name: normalize_scalar(sub, expr.value, f"{attr.name}.{sub.name}")}
    return None


# --- applying --------------------------------------------------------------------------------


def _holder(result: dict[str, Any], ext: s.Schema | None, create: bool) -> dict[str, Any] | None:
    if ext is None:
        return result
    holder = result.get(ext.id)
    if isinstance(holder, dict):
        return holder
    if not create:
        return None
    holder = result[ext.id] = {}
    return holder


def _store(holder: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == {} or value == []:
        holder.pop(name, None)
    else:
        holder[name] = value


def _elements(holder: dict[str, Any], attr: s.Attr) -> list[dict[str, Any]]:
    items = holder.get(attr.name)
    return [dict(i) for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _merge(attr: s.Attr, current: dict[str, Any], value: Any, op: OpName, label: str) -> Any:
    """Sub-attributes given replace or add; those not given are left unchanged (§3.5.2.3)."""
    if isinstance(value, str) and attr.sub("value") is not None:
        value = {"value": value}  # Entra sends the manager as a bare id
    if not isinstance(value, dict):
        raise InvalidValue(f"{label}: expected an object, got {json_type(value)}")
    out = dict(current)
    for key, raw in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None or sub.read_only:
            continue  # unknown and readOnly sub-attributes are ignored, as in PUT
        if raw is None:
            if op == "replace":
                out.pop(sub.name, None)
        else:
            out[sub.name] = normalize_scalar(sub, raw, f"{label}.{sub.name}")
    return out


def _primary(attr: s.Attr, items: list[dict[str, Any]], touched: Sequence[int], label: str) -> None:
    """The value this operation made primary wins; the others become false (RFC 7643 §2.4)."""
    if attr.sub("primary") is None:
        return
    winners = sorted({i for i in touched if items[i].get("primary") is True})
    if len(winners) > 1:
        raise InvalidValue(f"{label}: at most one value may have primary set to true")
    for i, item in enumerate(items):
        if winners and i != winners[0] and item.get("primary") is True:
            items[i] = {**item, "primary": False}


def _key(item: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(item.items()))


def _without(attr: s.Attr, items: list[dict[str, Any]], value: Any, label: str) -> list[Any]:
    """Entra's remove with a value: drop the elements equal to those given (by `value`)."""
    criteria: list[list[tuple[s.Attr, Any]]] = []
    for n, given in enumerate(value if isinstance(value, list) else [value]):
        if isinstance(given, str):
            given = {"value": given}
        if not isinstance(given, dict):
            raise InvalidValue(f"{label}[{n}]: expected an object naming the value to remove")
        terms = [
            (sub, check_comparable(sub, "eq", raw, InvalidValue))
            for key, raw in given.items()
            if raw is not None and (sub := attr.sub(key) if isinstance(key, str) else None)
        ]
        by_value = [t for t in terms if t[0].name == "value"]
        if terms:
            criteria.append(by_value or terms)

    def selected(item: dict[str, Any]) -> bool:
        return any(
            all(compare_scalar(sub, item.get(sub.name), "eq", v) for sub, v in terms)
            for terms in criteria
        )

    return [item for item in items if not selected(item)]


def _unassign_required(t: _Target) -> None:
    if t.attr is not None and t.attr.required:
        raise Mutability(f"{t.label} is required: it cannot be removed (RFC 7644 §3.5.2.2)")


def _apply_attr(op: OpName, t: _Target, value: Any, result: dict[str, Any]) -> None:
    """`attr`: set, merge, append, replace or remove the whole attribute."""
    attr = t.attr
    assert attr is not None
    holder = _holder(result, t.ext, create=op != "remove" and value is not None)
    if op == "remove" or value is None:
        _unassign_required(t)
        if holder is None:
            return
        if op == "remove" and attr.multi_valued and value is not UNSET and value is not None:
            _store(holder, attr.name, _without(attr, _elements(holder, attr), value, t.label))
        else:
            holder.pop(attr.name, None)
        return
    assert holder is not None
    if attr.type == "complex" and not attr.multi_valued:
        current = holder.get(attr.name)
        merged = _merge(attr, current if isinstance(current, dict) else {}, value, op, t.label)
        _store(holder, attr.name, merged)
    elif attr.multi_valued and op == "add":
        # §3.5.2.1: add appends; a value already present is not added twice.
        added = normalize_value(attr, [value] if isinstance(value, dict) else value, t.label)
        items = _elements(holder, attr)
        index = {_key(item): i for i, item in enumerate(items)}
        touched = []
        for item in added or []:
            if _key(item) not in index:
                index[_key(item)] = len(items)
                items.append(item)
            touched.append(index[_key(item)])
        _primary(attr, items, touched, t.label)
        _store(holder, attr.name, items)
    else:
        if attr.multi_valued and isinstance(value, dict):
            value = [value]  # one value where an array is expected
        _store(holder, attr.name, normalize_value(attr, value, t.label))


def _apply_sub(op: OpName, t: _Target, value: Any, result: dict[str, Any]) -> None:
    """`attr.sub` of a singular complex attribute (`name.givenName`, `...:manager.value`)."""
    attr, sub = t.attr, t.sub
    assert attr is not None and sub is not None
    holder = _holder(result, t.ext, create=op != "remove" and value is not None)
    if holder is None:
        return
    current = holder.get(attr.name)
    out = dict(current) if isinstance(current, dict) else {}
    if op == "remove" or value is None:
        out.pop(sub.name, None)
    else:
        out[sub.name] = normalize_scalar(sub, value, f"{t.label}.{sub.name}")
    _store(holder, attr.name, out)


def _apply_elements(op: OpName, t: _Target, value: Any, result: dict[str, Any]) -> None:
    """`attr[filter]`, `attr[filter].sub` and `attr.sub` of a multi-valued complex attribute."""
    attr, sub = t.attr, t.sub
    assert attr is not None
    holder = _holder(result, t.ext, create=op != "remove" and value is not None)
    if holder is None:
        return
    items = _elements(holder, attr)
    hits = [
        i
        for i, item in enumerate(items)
        if t.filter is None or matches_element(attr, t.filter, item, InvalidPath)
    ]
    if op == "remove" or value is None:
        if sub is not None:
            for i in hits:
                items[i].pop(sub.name, None)
        else:
            dropped = set(hits)
            items = [item for i, item in enumerate(items) if i not in dropped]
        _store(holder, attr.name, [item for item in items if item])
        return
    scalar = None if sub is None else normalize_scalar(sub, value, f"{t.label}.{sub.name}")
    if not hits:
        template = _template(attr, t.filter)
        if template is None:  # §3.5.2.3: no match and nothing the filter describes to create
            raise NoTarget(f"{t.text!r} matched no value of {t.label}")
        items.append(template)
        hits = [len(items) - 1]
    for i in hits:
        if sub is not None:
            items[i][sub.name] = scalar
        else:
            items[i] = _merge(attr, items[i], value, op, t.label)
    _primary(attr, items, hits, t.label)
    _store(holder, attr.name, [item for item in items if item])


def _apply_extension(op: OpName, t: _Target, value: Any, result: dict[str, Any]) -> None:
    """A whole extension (`path` = its URN): its attributes are added, replaced or removed."""
    ext = t.ext
    assert ext is not None
    if op == "remove" or value is None:
        result.pop(ext.id, None)
        return
    if not isinstance(value, dict):
        raise InvalidValue(f"{ext.id}: expected an object, got {json_type(value)}")
    for key, raw in value.items():
        attr = ext.attr(key) if isinstance(key, str) else None
        if attr is None or attr.read_only or attr.mutability == "writeOnly":
            continue
        if raw is not None or op == "replace":
            label = f"{ext.id}:{attr.name}"
            _apply(op, _Target(label, label, ext, attr), raw, result)


def _apply(op: OpName, t: _Target, value: Any, result: dict[str, Any]) -> None:
    if t.attr is None:
        _apply_extension(op, t, value, result)
    elif t.filter is not None or (t.sub is not None and t.attr.multi_valued):
        _apply_elements(op, t, value, result)
    elif t.sub is not None:
        _apply_sub(op, t, value, result)
    else:
        _apply_attr(op, t, value, result)


def _apply_object(rtype: s.ResourceType, op: OpName, value: Any, result: dict[str, Any]) -> None:
    """A path-less add/replace: "the target location is assumed to be the resource itself"."""
    if not isinstance(value, dict):
        raise InvalidValue(
            f"Without a path, the value of {op} must be an object of attributes, "
            f"got {json_type(value)}"
        )
    check_object(f"The value of {op}", value)
    for key, raw in value.items():
        if not isinstance(key, str) or key.lower() in SERVER_OWNED:
            continue  # Okta sends the id with a group's new displayName
        if raw is None and op == "add":
            continue
        target = _resolve(rtype, key, strict=False)
        if target is not None:
            _apply(op, target, raw, result)


def apply_operations(
    rtype: s.ResourceType, attrs: dict[str, Any], operations: Sequence[Operation]
) -> dict[str, Any]:
    """Apply decoded operations in order to a copy of `attrs`; return the valid new attrs."""
    result = copy.deepcopy(attrs)
    for operation in operations:
        try:
            if operation.path is None:
                _apply_object(rtype, operation.op, operation.value, result)
            else:
                target = _resolve(rtype, operation.path, strict=True)
                if target is not None:
                    _apply(operation.op, target, operation.value, result)
        except ScimError as exc:
            raise type(exc)(f"Operations[{operation.index}]: {exc.detail}") from None
    out = normalize_resource(rtype, result)
    check_required(rtype, out)
    return out


def apply_patch(rtype: s.ResourceType, attrs: dict[str, Any], body: Any) -> dict[str, Any]:
    """A PatchOp body applied to stored attrs (never mutated): the new attrs, or a ScimError.

    For groups, `members` operations are skipped: `patch_members.plan_group_patch` plans them.
    """
    return apply_operations(rtype, attrs, parse_operations(body))
