"""SCIM filter AST → parameterised SQL, for one resource table.

Identifiers come only from a per-resource whitelist (`TableSpec`): an attribute path either
maps to a known column/expression or is rejected with `invalidFilter`; every value travels as
a `$n` parameter, and LIKE patterns are escaped. The result agrees with the in-memory
evaluator (`scim/evaluate.py`), which the property tests check:

- strings compare case-insensitively (`lower()` both sides) unless caseExact;
- gt/ge/lt/le order strings by code point (`COLLATE "C"`);
- a multi-valued attribute matches when any element does (`EXISTS` over its elements);
- `ne` and `not (...)` are `(<positive>) IS NOT TRUE`, so an absent attribute is "not equal"
  (SQL's NULL never leaks into a negation).

Index use: `eq` on userName/displayName/externalId/emails hits btree/GIN indexes; `sw` on
them is a byte-order range (`~>=~`/`~<~`, served by the text_pattern_ops indexes even in
generic plans; for emails on the `user_emails` table, one row per value); `co`/`ew` are LIKE
patterns that pg_trgm GIN indexes serve where installed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.scim import schema as s
from scim_service.scim.evaluate import Resolved, check_comparable, resolve, resolve_sub
from scim_service.scim.filter import And, Compare, Expr, Not, Or, Present, ValuePath
from scim_service.scim.query import ListQuery
from scim_service.store.db import fetch_batched

Kind = Literal["text", "text_exact", "bool", "timestamp", "uuid"]

# Appended to a prefix to form the exclusive upper bound of a byte-order range: no valid
# UTF-8 string starting with the prefix sorts at or above prefix || U+10FFFF.
_MAX_CHAR = "\U0010ffff"


def like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Params:
    """Collects query parameters; `add` returns the `$n` placeholder."""

    def __init__(self, initial: list[Any] | None = None) -> None:
        self.values: list[Any] = list(initial or [])

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class Column:
    """A whitelisted SQL expression for one attribute path."""

    sql: str
    kind: Kind
    range_indexed: bool = False  # `sw` as a text_pattern_ops range on lower(sql)


@dataclass(frozen=True, slots=True)
class ElementSub:
    """One sub-attribute of an `ElementTable` row: its SQL expression and comparison kind;
    `join` is the clause its expression needs (added only when the filter names it)."""

    sql: str
    kind: Kind
    join: str = ""


@dataclass(frozen=True)
class ElementTable:
    """A multi-valued attribute stored outside `attrs`, one row per element (a user's
    `groups`, a group's `members`): `source` is the FROM item, `owner` the condition tying a
    row to the resource, `subs` the filterable sub-attributes (others: invalidFilter)."""

    source: str
    owner: str
    subs: dict[str, ElementSub]

    def sub(self, attr: str, name: str) -> ElementSub:
        found = self.subs.get(name)
        if found is None:
            raise InvalidFilter(f"Filtering on {attr}.{name} is not supported")
        return found

    def exists(self, cond: str, subs: list[ElementSub]) -> str:
        joins = " ".join(dict.fromkeys(e.join for e in subs if e.join))
        source = f"{self.source} {joins}" if joins else self.source
        return f"EXISTS (SELECT 1 FROM {source} WHERE {self.owner} AND {cond})"


def membership(
    *, resource: str, side: str, other: str, display: ElementSub, type_: str
) -> ElementTable:
    """The memberships of a user (`groups[...]`) or of a group (`members[...]`) as an element
    table over `group_members gm`: rows whose `side` column is the resource's id (`resource`,
    e.g. `u.id`), `value` the `other` column, `display` and `type` as given."""
    return ElementTable(
        source="group_members gm",
        owner=f"gm.{side} = {resource}",
        subs={
            "value": ElementSub(f"gm.{other}", "uuid"),
            "display": display,
            "type": ElementSub(type_, "text"),
        },
    )


# How a value filter reads one sub-attribute of an element: (SQL expression, kind).
ElementSql = Callable[[s.Attr], tuple[str, Kind]]


@dataclass(frozen=True)
class TableSpec:
    rtype: s.ResourceType
    table: str
    alias: str
    select: str  # the columns a page of results returns
    attrs_sql: str  # the jsonb column of client attributes
    columns: dict[str, Column]
    email_array: str | None = None  # text[] of lower-cased email values (users)
    # A table of (user_id, org_id, value) rows, one per lower-cased email value, with a
    # text_pattern_ops btree on (org_id, value): `emails.value sw` is a range scan on it.
    email_table: str | None = None
    specials: dict[str, ElementTable] = field(default_factory=dict)


def _key(r: Resolved) -> str:
    base = r.attr.name if r.extension is None else f"{r.extension}:{r.attr.name}"
    return f"{base}.{r.sub.name}" if r.sub is not None else base


def _json_path(r: Resolved, attrs_sql: str, *, with_sub: bool = False) -> str:
    """`attrs #> '{...}'` for the attribute (and, with `with_sub`, its sub-attribute)."""
    parts = [r.attr.name] if r.extension is None else [r.extension, r.attr.name]
    if with_sub and r.sub is not None:
        parts.append(r.sub.name)
    # Identifiers inside the path literal come from the schema whitelist, never from input.
    literal = "{" + ",".join('"' + p + '"' for p in parts) + "}"
    return f"{attrs_sql} #> '{literal}'"


def _kind_of(attr: s.Attr) -> Kind:
    if attr.type == "boolean":
        return "bool"
    if attr.type == "dateTime":
        return "timestamp"
    return "text_exact" if attr.case_exact else "text"


def _typed_text(text_sql: str, kind: Kind) -> str:
    """A jsonb `->>`/`#>>` text expression cast to its comparison type."""
    if kind == "bool":
        return f"({text_sql})::boolean"
    if kind == "timestamp":
        return f"({text_sql})::timestamptz"
    return text_sql


class Compiler:
    def __init__(self, spec: TableSpec, params: Params, org: str) -> None:
        self.spec = spec
        self.p = params
        self.org = org  # the placeholder of the organization id

    # --- entry ---------------------------------------------------------------------------
    def compile(self, expr: Expr) -> str:
        if isinstance(expr, And):
            return f"({self.compile(expr.left)} AND {self.compile(expr.right)})"
        if isinstance(expr, Or):
            return f"({self.compile(expr.left)} OR {self.compile(expr.right)})"
        if isinstance(expr, Not):
            return f"(({self.compile(expr.expr)}) IS NOT TRUE)"
        if isinstance(expr, ValuePath):
            return self._value_path(expr)
        r = resolve(self.spec.rtype, expr.path)
        if isinstance(expr, Compare) and expr.value is None:
            # `eq null` means "not present" and `ne null` "present", over all values of a
            # multi-valued attribute (not element by element).
            check_comparable(r.leaf, expr.op, None)
            present = self._attr_expr(r, Present(expr.path))
            return f"(({present}) IS NOT TRUE)" if expr.op == "eq" else present
        if isinstance(expr, Compare) and expr.op == "ne":
            positive = Compare(expr.path, "eq", expr.value)
            return f"(({self._attr_expr(r, positive)}) IS NOT TRUE)"
        return self._attr_expr(r, expr)

    # --- one attribute -------------------------------------------------------------------
    def _attr_expr(self, r: Resolved, expr: Compare | Present) -> str:
        key = _key(r)
        column = self.spec.columns.get(key)
        if column is not None:
            return self._scalar(column.sql, column.kind, expr, r.leaf, column.range_indexed)
        if r.attr.multi_valued and r.attr.type == "complex":
            return self._multi(r, expr)
        if r.attr.type == "complex" and r.sub is None:
            if isinstance(expr, Present):
                return f"({_json_path(r, self.spec.attrs_sql)} IS NOT NULL)"
            raise InvalidFilter(f"{r.attr.name} is complex: compare one of its sub-attributes")
        text = _json_path(r, self.spec.attrs_sql, with_sub=True).replace(" #> ", " #>> ", 1)
        kind = _kind_of(r.leaf)
        return self._scalar(_typed_text(text, kind), kind, expr, r.leaf, False)

    def _multi(self, r: Resolved, expr: Compare | Present) -> str:
        sub = r.sub or r.attr.sub("value")
        if sub is None:
            raise InvalidFilter(f"{r.attr.name}: name a sub-attribute to compare")
        special = self.spec.specials.get(r.attr.name)
        if special is not None:
            elem = special.sub(r.attr.name, sub.name)
            return special.exists(self._scalar(elem.sql, elem.kind, expr, sub, False), [elem])
        if isinstance(expr, Present) and r.sub is None:
            # `emails pr`: any element at all (stored elements are never empty objects).
            arr = _json_path(r, self.spec.attrs_sql)
            return f"(jsonb_typeof({arr}) = 'array' AND jsonb_array_length({arr}) > 0)"
        if (
            r.attr.name == "emails"
            and r.extension is None
            and self.spec.email_array
            and sub.name == "value"
        ):
            return self._emails(expr, sub)
        sql, kind = _json_element(sub)
        return self._exists_elements(r, self._scalar(sql, kind, expr, sub, False))

    def _exists_elements(self, r: Resolved, cond: str) -> str:
        arr = _json_path(r, self.spec.attrs_sql)
        return (
            f"EXISTS (SELECT 1 FROM jsonb_array_elements("
            f"CASE WHEN jsonb_typeof({arr}) = 'array' THEN {arr} END) AS e(v) WHERE {cond})"
        )

    def _value_path(self, vp: ValuePath) -> str:
        r = resolve(self.spec.rtype, vp.path)
        if not (r.attr.multi_valued and r.attr.type == "complex") or r.sub is not None:
            raise InvalidFilter(f"{vp.path} is not a multi-valued complex attribute")
        special = self.spec.specials.get(r.attr.name)
        if special is not None:
            used: list[ElementSub] = []

            def table_sql(sub: s.Attr) -> tuple[str, Kind]:
                elem = special.sub(r.attr.name, sub.name)
                used.append(elem)
                return elem.sql, elem.kind

            cond = self._element(r.attr, vp.filter, table_sql)
            return special.exists(cond, used)
        exists = self._exists_elements(r, self._element(r.attr, vp.filter, _json_element))
        narrow = self._emails_prefilter(r, vp.filter)
        return f"({narrow} AND {exists})" if narrow else exists

    def _emails_prefilter(self, r: Resolved, expr: Expr) -> str | None:
        """For `emails[... and value op "x" ...]` (also Entra's `emails[type eq "work"].value
        eq "x"`, which the parser rewrites so): the element that matches has a value matching
        `op "x"`, so "some email value matches" is a necessary condition, and that one the
        email indexes answer. The element check stays beside it and keeps the result exact."""
        if r.attr.name != "emails" or r.extension is not None or not self.spec.email_array:
            return None
        conjuncts = []
        stack = [expr]
        while stack:
            e = stack.pop()
            if isinstance(e, And):
                stack += [e.right, e.left]
            elif (
                isinstance(e, Compare)
                and isinstance(e.value, str)
                and e.op in _INDEXED_OPS
                and resolve_sub(r.attr, e.path).name == "value"
            ):
                conjuncts.append(e)
        if not conjuncts:
            return None
        best = min(conjuncts, key=lambda c: _INDEXED_OPS.index(c.op))
        value_attr = r.attr.sub("value")
        assert value_attr is not None
        return self._emails(best, value_attr)

    def _element(self, parent: s.Attr, expr: Expr, elem_sql: ElementSql) -> str:
        """A condition on one element of `parent` (inside a value filter)."""
        if isinstance(expr, And):
            left = self._element(parent, expr.left, elem_sql)
            return f"({left} AND {self._element(parent, expr.right, elem_sql)})"
        if isinstance(expr, Or):
            left = self._element(parent, expr.left, elem_sql)
            return f"({left} OR {self._element(parent, expr.right, elem_sql)})"
        if isinstance(expr, Not):
            return f"(({self._element(parent, expr.expr, elem_sql)}) IS NOT TRUE)"
        if isinstance(expr, ValuePath):
            raise InvalidFilter("Value filters cannot be nested")
        sub = resolve_sub(parent, expr.path)
        sql, kind = elem_sql(sub)
        if isinstance(expr, Compare) and expr.op == "ne":
            positive = self._scalar(sql, kind, Compare(expr.path, "eq", expr.value), sub, False)
            return f"(({positive}) IS NOT TRUE)"
        return self._scalar(sql, kind, expr, sub, False)

    # --- emails: GIN over the lower-cased values array, trigram over their join ----------
    def _emails(self, expr: Compare | Present, sub: s.Attr) -> str:
        arr = self.spec.email_array
        assert arr is not None
        if isinstance(expr, Present):
            return f"(cardinality({arr}) > 0)"
        value = check_comparable(sub, expr.op, expr.value)
        if value is None:
            present = f"(cardinality({arr}) > 0)"
            return f"({present} IS NOT TRUE)" if expr.op == "eq" else present
        if expr.op == "eq":
            return f"({arr} @> ARRAY[lower({self.p.add(value)})])"
        if expr.op == "sw" and self.spec.email_table:
            # A byte-order range on the per-value table (an index range scan, like
            # `userName sw`); the LIKE keeps it exact past the range's upper bound.
            lo = f"lower({self.p.add(value)})"
            esc = self.p.add(like_escape(value))
            return (
                f"({self.spec.alias}.id IN (SELECT e.user_id FROM {self.spec.email_table} e "
                f"WHERE e.org_id = {self.org} AND e.value ~>=~ {lo} "
                f"AND e.value ~<~ ({lo} || '{_MAX_CHAR}') AND e.value LIKE lower({esc}) || '%'))"
            )
        if expr.op in ("co", "sw", "ew"):
            esc = self.p.add(like_escape(value))
            pattern = {
                "co": f"'%' || lower({esc}) || '%'",
                "sw": f"lower({esc}) || '%'",
                "ew": f"'%' || lower({esc})",
            }[expr.op]
            # The trigram index narrows the rows; the element check makes it exact.
            return (
                f"(scim_join({arr}) LIKE '%' || lower({esc}) || '%' "
                f"AND EXISTS (SELECT 1 FROM unnest({arr}) AS m(x) WHERE m.x LIKE {pattern}))"
            )
        op = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[expr.op]
        ph = self.p.add(value)
        return (
            f"EXISTS (SELECT 1 FROM unnest({arr}) AS m(x) "
            f'WHERE m.x COLLATE "C" {op} lower({ph}) COLLATE "C")'
        )

    # --- scalar comparison on a typed SQL expression --------------------------------------
    def _scalar(
        self, sql: str, kind: Kind, expr: Compare | Present, attr: s.Attr, range_indexed: bool
    ) -> str:
        if isinstance(expr, Present):
            if kind in ("text", "text_exact"):
                return f"(coalesce({sql}, '') <> '')"
            return f"({sql} IS NOT NULL)"
        value = check_comparable(attr, expr.op, expr.value)
        if value is None:  # `eq null` = absent, `ne null` = present (ne is rewritten to eq)
            present = self._scalar(sql, kind, Present(expr.path), attr, False)
            return f"({present} IS NOT TRUE)"
        op = expr.op
        if kind == "bool":
            return f"({sql} = {self.p.add(value)})"
        if kind == "timestamp":
            assert isinstance(value, datetime)
            return f"({sql} {_SQL_ORDER[op]} {self.p.add(value)})"
        if kind == "uuid":
            if op == "eq":
                # ids are caseExact strings: only the canonical spelling can be equal.
                try:
                    parsed = uuid.UUID(value)
                except ValueError:
                    return "false"
                return f"({sql} = {self.p.add(parsed)})" if str(parsed) == value else "false"
            sql, kind = f"{sql}::text", "text_exact"
        ci = kind == "text"
        col = f"lower({sql})" if ci else sql

        def val(v: str) -> str:
            ph = self.p.add(v)
            return f"lower({ph})" if ci else ph

        if op == "eq":
            return f"({col} = {val(value)})"
        if op == "sw":
            like = f"({col} LIKE {val(like_escape(value))} || '%')"
            if range_indexed and ci:
                lo = val(value)
                return f"({col} ~>=~ {lo} AND {col} ~<~ ({lo} || '{_MAX_CHAR}') AND {like[1:-1]})"
            return like
        if op == "co":
            return f"({col} LIKE '%' || {val(like_escape(value))} || '%')"
        if op == "ew":
            return f"({col} LIKE '%' || {val(like_escape(value))})"
        return f'({col} COLLATE "C" {_SQL_ORDER[op]} {val(value)} COLLATE "C")'


_SQL_ORDER = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# Comparisons on emails.value an index serves, the most selective first.
_INDEXED_OPS = ("eq", "sw", "co", "ew")


def _json_element(sub: s.Attr) -> tuple[str, Kind]:
    """A sub-attribute of a jsonb array element `e.v`."""
    kind = _kind_of(sub)
    return _typed_text(f"e.v ->> '{sub.name}'", kind), kind


def compile_filter(spec: TableSpec, expr: Expr, params: Params, org: str) -> str:
    """SQL for `expr`; `org` is the placeholder already holding the organization id."""
    return Compiler(spec, params, org).compile(expr)


# --- sorting ------------------------------------------------------------------------------------


def sort_expression(spec: TableSpec, sort_by: str) -> str:
    """An ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3), from the same whitelist."""
    from scim_service.scim.filter import parse_attr_path

    try:
        path = parse_attr_path(sort_by.strip(), InvalidValue)
        r = resolve(spec.rtype, path, InvalidValue)
    except InvalidValue as exc:
        raise InvalidValue(f"sortBy: {exc.detail}") from None
    column = spec.columns.get(_key(r))
    if column is not None:
        if column.kind == "text":
            return f'lower({column.sql}) COLLATE "C"'
        return column.sql
    if r.attr.multi_valued and r.attr.type == "complex":
        if r.attr.name in spec.specials:
            raise InvalidValue(f"sortBy: cannot sort by {r.attr.name}")
        sub = r.sub or r.attr.sub("value")
        if sub is None:
            raise InvalidValue(f"sortBy: name a sub-attribute of {r.attr.name}")
        arr = _json_path(r, spec.attrs_sql)
        # RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its primary (else first) value.
        elem = _typed_text(f"e.v ->> '{sub.name}'", _kind_of(sub))
        if _kind_of(sub) == "text":
            elem = f'lower({elem}) COLLATE "C"'
        return (
            f"(SELECT {elem} FROM jsonb_array_elements(CASE WHEN jsonb_typeof({arr}) = 'array' "
            f"THEN {arr} END) WITH ORDINALITY AS e(v, n) "
            f"ORDER BY (e.v ->> 'primary') = 'true' DESC, e.n LIMIT 1)"
        )
    if r.attr.type == "complex" and r.sub is None:
        raise InvalidValue(f"sortBy: {r.attr.name} is complex; name a sub-attribute")
    kind = _kind_of(r.leaf)
    text = _json_path(r, spec.attrs_sql, with_sub=True).replace(" #> ", " #>> ", 1)
    expr = _typed_text(text, kind)
    return f'lower({expr}) COLLATE "C"' if kind == "text" else expr


# --- one page of a search -------------------------------------------------------------------


def where_sql(spec: TableSpec, org_id: uuid.UUID, filter: Expr | None) -> tuple[str, Params]:
    """The WHERE clause selecting an organization's resources matching `filter`."""
    params = Params([org_id])
    where = f"{spec.alias}.org_id = $1"
    if filter is not None:
        where += " AND " + compile_filter(spec, filter, params, "$1")
    return where, params


async def search_page(
    conn: asyncpg.Connection, spec: TableSpec, org_id: uuid.UUID, query: ListQuery
) -> tuple[int, list[asyncpg.Record]]:
    """(totalResults, one page of rows), in a stable order (RFC 7644 §3.4.2.4).

    The statements are assembled from whitelisted fragments only; values are parameters.
    """
    where, params = where_sql(spec, org_id, query.filter)
    a = spec.alias
    stable = f"{a}.created_at, {a}.id"
    if query.sort_by:
        direction = "DESC" if query.descending else "ASC"
        order = f"{sort_expression(spec, query.sort_by)} {direction}, {stable}"
    else:
        order = stable
    frm = f"FROM {spec.table} {a} WHERE {where}"
    total = int(await conn.fetchval(f"SELECT count(*) {frm}", *params.values))
    if query.count == 0 or total <= query.offset:
        return total, []
    off = params.add(query.offset)
    if total <= query.offset + query.count:
        # Every remaining match comes back, so no LIMIT: with one, a misestimated filter
        # (trigram estimates of a `co` value) can make the planner walk the sort index and
        # discard 100,000 rows instead of sorting the ten that match (55 ms instead of 1 ms).
        limit = ""
    else:
        limit = f" LIMIT {params.add(query.count)}"
    sql = f"SELECT {spec.select} {frm} ORDER BY {order}{limit} OFFSET {off}"
    if min(query.count, total - query.offset) > PAGE_BATCH_ABOVE:
        return total, await fetch_batched(conn, sql, params.values, PAGE_BATCH)
    return total, list(await conn.fetch(sql, *params.values))


# Pages of more rows than PAGE_BATCH_ABOVE are read through a cursor, PAGE_BATCH rows per
# round trip: the driver decodes each batch's jsonb on the event loop, and a batch of users
# at every cap (scim/limits.py, about 40 KB each) then costs a few milliseconds, where a
# whole 1,000-row page of them would hold the loop for hundreds. Default pages (100) and
# smaller are one statement, as before.
PAGE_BATCH_ABOVE = 100
PAGE_BATCH = 20
