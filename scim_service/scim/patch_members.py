"""Group PATCH (RFC 7644 §3.5.2) split into attribute operations and membership operations.

Members live in a join table and a group may have 50,000 of them, so membership operations are
planned without the current member list: each is add(ids), remove(ids), remove_all or
replace(ids), in request order, for the storage layer to run (it checks that the ids are users).
Everything else (displayName, externalId) stays a PATCH operation for `GroupPatchPlan.apply`.

Forms accepted, from Okta, Entra ID and JumpCloud:
- add: `path: "members"` with a list of `{"value": id, ...}` (one object is taken as a list of
  one), or no path and `{"members": [...]}` in the value.
- remove: `members[value eq "id"]`, several `value eq` terms joined by `or`; `path: "members"`
  with a value list (Entra); `path: "members"` alone removes every member (§3.5.2.2). An empty
  value list removes nothing.
- replace: `path: "members"` (or no path and `{"members": [...]}`): the exact new member set;
  empty or null removes every member. Okta's `{"id": ..., "displayName": ...}` keeps only
  displayName (the id is ignored).

Rejected: a member filter other than `value eq "<id>"` terms joined by `or` is `invalidPath`.
A member's sub-attributes cannot be changed in place, whether by a sub-attribute path
(`members[value eq "x"].display`) or by add/replace on a filtered path: `value`, `$ref` and
`type` are immutable and `display` is readOnly (RFC 7643 §4.2), and "a client MUST NOT modify an
attribute that has mutability readOnly or immutable" (§3.5.2), so these are `mutability`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from msgspec import UNSET

from scim_service.errors import InvalidPath, InvalidValue, Mutability, ScimError
from scim_service.scim import schema as s
from scim_service.scim.filter import Compare, Expr, Or, PatchPath, parse_patch_path
from scim_service.scim.limits import check_values
from scim_service.scim.patch import (
    Operation,
    apply_operations,
    is_members,
    json_type,
    member,
    parse_operations,
)

MemberOpKind = Literal["add", "remove", "remove_all", "replace"]


@dataclass(frozen=True, slots=True)
class MemberOp:
    """One membership change; `ids` are member `value`s (empty for remove_all)."""

    kind: MemberOpKind
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupPatchPlan:
    """A group PATCH: attribute operations, and membership operations to run in order."""

    operations: tuple[Operation, ...]
    members: tuple[MemberOp, ...]

    def apply(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The group's new stored attrs (displayName, externalId); `attrs` is not mutated."""
        return apply_operations(s.GROUP_TYPE, attrs, self.operations)


def plan_group_patch(body: Any) -> GroupPatchPlan:
    """Split a group PatchOp body; raise a ScimError for any malformed member operation."""
    rest: list[Operation] = []
    members: list[MemberOp] = []
    for operation in parse_operations(body):
        try:
            if operation.path is None:
                other = _split_object(operation, members)
                if other:
                    rest.append(Operation(operation.op, None, other, operation.index))
                continue
            pp = parse_patch_path(operation.path)
            if _is_members_path(pp):
                members.extend(_member_ops(operation.op, pp, operation.value))
            else:
                rest.append(operation)
        except ScimError as exc:
            raise type(exc)(f"Operations[{operation.index}]: {exc.detail}") from None
    check_values("members", sum(len(m.ids) for m in members), members=True)
    return GroupPatchPlan(tuple(rest), tuple(members))


def _split_object(operation: Operation, members: list[MemberOp]) -> dict[str, Any]:
    """A path-less add/replace: member keys become member operations; the rest is returned."""
    value = operation.value
    if not isinstance(value, dict):
        raise InvalidValue(
            f"Without a path, the value of {operation.op} must be an object of attributes, "
            f"got {json_type(value)}"
        )
    rest: dict[str, Any] = {}
    for key, raw in value.items():
        pp = _members_key(key)
        if pp is None:
            rest[key] = raw
        elif raw is not None or operation.op == "replace":
            members.extend(_member_ops(operation.op, pp, raw))
    return rest


def _members_key(key: Any) -> PatchPath | None:
    if not isinstance(key, str):
        return None
    try:
        pp = parse_patch_path(key)
    except InvalidPath:
        return None
    return pp if _is_members_path(pp) else None


def _is_members_path(pp: PatchPath) -> bool:
    head = pp.path
    found = s.resolve(s.GROUP_TYPE, f"{head.urn}:{head.attr}" if head.urn else head.attr)
    return found is not None and is_members(s.GROUP_TYPE, found[1])


def _member_ops(op: str, pp: PatchPath, value: Any) -> list[MemberOp]:
    ids = _filter_ids(pp.filter) if pp.filter is not None else ()
    sub_name = pp.path.sub or pp.sub
    if sub_name is not None:
        members = s.GROUP.attr("members")
        sub = members.sub(sub_name) if members is not None else None
        if sub is None:
            raise InvalidPath(f"members has no sub-attribute {sub_name!r}")
        raise Mutability(
            f"members.{sub.name} is {sub.mutability}: change membership by adding or removing "
            "members (RFC 7644 §3.5.2)"
        )
    if pp.filter is not None:
        if op != "remove":
            raise Mutability(
                "A member cannot be modified in place (its sub-attributes are immutable or "
                'readOnly): remove it with members[value eq "<id>"] and add with path members'
            )
        return [MemberOp("remove", ids)]
    if op == "remove" and (value is UNSET or value is None):
        return [MemberOp("remove_all")]
    if op == "replace" and value is None:
        return [MemberOp("remove_all")]
    ids = _ids(value)
    if op == "replace":
        return [MemberOp("replace", ids) if ids else MemberOp("remove_all")]
    kind: MemberOpKind = "add" if op == "add" else "remove"
    return [MemberOp(kind, ids)] if ids else []


def _ids(value: Any) -> tuple[str, ...]:
    """The `value` of each member object, in order, without duplicates."""
    out: dict[str, None] = {}
    for n, item in enumerate(value if isinstance(value, list) else [value]):
        if not isinstance(item, dict):
            raise InvalidValue(
                f"members[{n}]: expected an object with the member's id as 'value', "
                f"got {json_type(item)}"
            )
        ident = member(item, "value")
        if not isinstance(ident, str) or not ident.strip():
            raise InvalidValue(f"members[{n}].value: expected the member's id, a non-empty string")
        out[ident] = None
    return tuple(out)


def _filter_ids(expr: Expr) -> tuple[str, ...]:
    if isinstance(expr, Or):
        return tuple(dict.fromkeys(_filter_ids(expr.left) + _filter_ids(expr.right)))
    if (
        isinstance(expr, Compare)
        and expr.op == "eq"
        and expr.path.attr.lower() == "value"
        and expr.path.sub is None
        and expr.path.urn is None
        and isinstance(expr.value, str)
        and expr.value.strip()
    ):
        return (expr.value,)
    raise InvalidPath(
        'A members filter can only select members by id: members[value eq "<id>"], '
        "or several such terms joined by or"
    )
