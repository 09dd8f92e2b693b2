"""SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): text → AST.

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    attrExp   =/ valuePath subAttr SP ("pr" / compareOp SP compValue)   ; an extension, below
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    logExp    = FILTER SP ("and" / "or") SP FILTER
    compValue = false / null / true / number / string
    attrPath  = [URI ":"] ATTRNAME *1subAttr

Precedence: `not` binds tightest, then `and`, then `or`; parentheses group. Operators and the
literals true/false/null are case-insensitive.

A value path followed by a sub-attribute (`emails[type eq "work"].value eq "ann@x.com"`) is not
in RFC 7644's filter grammar (only in PATCH paths, §3.5.2), but Entra ID sends it when an admin
picks `emails[type eq "work"].value` as the matching attribute. It means "some element matching
the value filter has that sub-attribute matching the comparison", so the parser rewrites it
into the equivalent RFC form: `emails[type eq "work" and value eq "ann@x.com"]`; `ne` and
`eq null` become the negation of the positive match, as everywhere else (an element-less
resource is "not equal"). The SQL compiler and the evaluator therefore need nothing new.

Every failure raises `InvalidFilter` (or
`InvalidPath` for PATCH paths); nothing else ever escapes the parser, whatever the input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import msgspec

from scim_service.errors import InvalidFilter, InvalidPath, ScimError

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 24
MAX_TERMS = 200

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"]
COMPARE_OPS: frozenset[str] = frozenset(("eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"))
Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class AttrPath:
    """`[urn:]attr[.sub]`; `urn` is the schema URN when the client qualified the name."""

    attr: str
    sub: str | None = None
    urn: str | None = None

    def __str__(self) -> str:
        name = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{name}.{self.sub}" if self.sub else name


@dataclass(frozen=True, slots=True)
class Compare:
    path: AttrPath
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not:
    expr: Expr


@dataclass(frozen=True, slots=True)
class ValuePath:
    """`emails[type eq "work" and value co "@x"]`: some element of `path` matches `filter`,
    whose attribute paths are relative to the element."""

    path: AttrPath
    filter: Expr


Expr = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH `path`: `attr`, `attr.sub`, `urn:attr`, `attr[filter]` or `attr[filter].sub`.

    `urn_only` marks a path that names a whole extension schema (its attributes as a whole).
    """

    path: AttrPath
    filter: Expr | None = None
    sub: str | None = None
    urn_only: bool = False


# --- tokenizer --------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<lbracket>\[)
  | (?P<rbracket>\])
  | (?P<string>"(?:[^"\\\x00-\x1f]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_$.:-]))
  | (?P<word>[A-Za-z$][A-Za-z0-9_$.:/-]*)
  | (?P<subattr>\.\$?[A-Za-z][A-Za-z0-9_-]*)
    """,
    re.VERBOSE,
)

_ATTRNAME = r"\$?[A-Za-z][A-Za-z0-9_-]*"
# Matched with `fullmatch`: `$` would also accept a trailing newline ("userName\n").
_ATTR_RE = re.compile(
    rf"(?:(?P<urn>urn:[A-Za-z0-9.:_/-]+):)?(?P<attr>{_ATTRNAME})(?:\.(?P<sub>{_ATTRNAME}))?", re.I
)
_SUB_RE = re.compile(_ATTRNAME)

_Tok = tuple[str, str, int]  # kind, text, position


def _tokenize(text: str, error: type[ScimError]) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise error(_bad_char(text, pos))
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    return out


def _bad_char(text: str, pos: int) -> str:
    """The detail for text the tokenizer cannot read at `pos`."""
    char = text[pos]
    if char == '"':
        if "\n" in text[pos:] or any(ord(c) < 0x20 for c in text[pos:]):
            return f"Invalid string at position {pos}: control characters must be escaped"
        return f"Unterminated string starting at position {pos}"
    if char == "." and pos > 0 and text[pos - 1] == "]":
        return f"Expected a sub-attribute name after '.' at position {pos}"
    if char in "0123456789-":
        return f"Invalid number at position {pos} (RFC 7159 JSON number syntax)"
    return f"Unexpected character {char!r} at position {pos}"


def parse_attr_path(text: str, error: type[ScimError] = InvalidFilter) -> AttrPath:
    """Parse `[urn:]attr[.sub]`; raise `error` for anything else."""
    m = _ATTR_RE.fullmatch(text)
    if m is None:
        raise error(f"Invalid attribute path {text!r}")
    urn = m.group("urn")
    attr = m.group("attr")
    sub = m.group("sub")
    if attr.startswith("$") and urn is None and sub is None and attr.lower() != "$ref":
        raise error(f"Invalid attribute path {text!r}")
    return AttrPath(attr, sub, urn)


class _Parser:
    def __init__(self, text: str, error: type[ScimError]) -> None:
        self.text = text
        self.error = error
        self.toks = _tokenize(text, error)
        self.i = 0
        self.depth = 0
        self.terms = 0

    # helpers
    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def peek_word(self) -> str | None:
        tok = self.peek()
        return tok[1].lower() if tok is not None and tok[0] == "word" else None

    def take(self, kind: str, what: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(f"Unexpected end of filter: expected {what}")
        if tok[0] != kind:
            raise self.error(f"Expected {what} at position {tok[2]}, found {tok[1]!r}")
        self.i += 1
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"Filter is nested more than {MAX_DEPTH} levels deep")

    # grammar
    def parse_or(self) -> Expr:
        left = self.parse_and()
        while self.peek_word() == "or":
            self.i += 1
            left = Or(left, self.parse_and())
        return left

    def parse_and(self) -> Expr:
        left = self.parse_not()
        while self.peek_word() == "and":
            self.i += 1
            left = And(left, self.parse_not())
        return left

    def parse_not(self) -> Expr:
        if self.peek_word() == "not":
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            if nxt is not None and nxt[0] == "lparen":
                self.i += 1
                self.enter()
                self.i += 1
                inner = self.parse_or()
                self.take("rparen", "')'")
                self.depth -= 1
                return Not(inner)
        return self.parse_atom()

    def parse_atom(self) -> Expr:
        tok = self.peek()
        if tok is None:
            raise self.error("Unexpected end of filter: expected an attribute or '('")
        if tok[0] == "lparen":
            self.i += 1
            self.enter()
            inner = self.parse_or()
            self.take("rparen", "')'")
            self.depth -= 1
            return inner
        if tok[0] != "word":
            raise self.error(f"Expected an attribute at position {tok[2]}, found {tok[1]!r}")
        self.i += 1
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(f"Filter has more than {MAX_TERMS} terms")
        path = parse_attr_path(tok[1], self.error)
        nxt = self.peek()
        if nxt is not None and nxt[0] == "lbracket":
            if path.sub is not None:
                raise self.error(f"A value filter cannot follow a sub-attribute ({tok[1]!r})")
            self.i += 1
            self.enter()
            inner = self.parse_or()
            close = self.take("rbracket", "']'")
            self.depth -= 1
            _check_relative(inner, self.error)
            after = self.peek()
            if after is not None and after[0] == "subattr" and after[2] == close[2] + 1:
                self.i += 1
                sub = parse_attr_path(after[1][1:], self.error)
                return _sub_of_value_path(path, inner, self.parse_comparison(sub, after))
            return ValuePath(path, inner)
        if tok[1].lower() == "not" and (nxt is None or nxt[0] != "word"):
            raise self.error(f"'not' at position {tok[2]} must be followed by '(' FILTER ')'")
        return self.parse_comparison(path, tok)

    def parse_comparison(self, path: AttrPath, tok: _Tok) -> Compare | Present:
        """`pr` or `compareOp compValue` after the attribute path read from `tok`."""
        op_tok = self.take("word", "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)")
        op = op_tok[1].lower()
        if op == "pr":
            after = self.peek()
            if after is not None and after[0] in ("string", "number"):
                raise self.error(f"'pr' takes no value ({after[1]!r} at position {after[2]})")
            if after is not None and after[1].lower() in ("true", "false", "null"):
                raise self.error(f"'pr' takes no value ({after[1]!r} at position {after[2]})")
            return Present(path)
        if op not in COMPARE_OPS:
            if tok[1].lower() == "not":
                raise self.error(f"'not' at position {tok[2]} must be followed by '(' FILTER ')'")
            raise self.error(
                f"Unknown operator {op_tok[1]!r} at position {op_tok[2]} "
                "(expected eq, ne, co, sw, ew, gt, ge, lt, le or pr)"
            )
        return Compare(path, op, self.parse_value())  # type: ignore[arg-type]

    def parse_value(self) -> Value:
        tok = self.peek()
        if tok is None:
            raise self.error("Unexpected end of filter: expected a value")
        self.i += 1
        kind, text, pos = tok
        if kind == "string":
            try:
                return str(msgspec.json.decode(text))
            except msgspec.DecodeError:
                raise self.error(f"Invalid string literal at position {pos}") from None
        if kind == "number":
            try:
                number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:  # more digits than int() accepts (sys.get_int_max_str_digits)
                raise self.error(f"Number out of range at position {pos}") from None
            if isinstance(number, float) and not math.isfinite(number):
                raise self.error(f"Number out of range at position {pos}")
            return number
        if kind == "word":
            low = text.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            if low == "null":
                return None
        raise self.error(
            f"Expected a value (a quoted string, number, true, false or null) at position {pos}, "
            f"found {text!r}"
        )


def _sub_of_value_path(path: AttrPath, inner: Expr, term: Compare | Present) -> Expr:
    """`attr[inner].sub <term>` as the RFC form: one element matches `inner` and `term`.

    `ne` and `eq null` negate the positive match (`x ne v` is `not (x eq v)`, `x eq null` is
    `not (x pr)`), as they do for a multi-valued attribute outside brackets.
    """
    if isinstance(term, Compare) and term.value is None and term.op in ("eq", "ne"):
        present = ValuePath(path, And(inner, Present(term.path)))
        return Not(present) if term.op == "eq" else present
    if isinstance(term, Compare) and term.op == "ne":
        return Not(ValuePath(path, And(inner, Compare(term.path, "eq", term.value))))
    return ValuePath(path, And(inner, term))


def _check_relative(expr: Expr, error: type[ScimError]) -> None:
    """Inside `attr[...]`, paths name sub-attributes: no URNs, no dots, no nested brackets."""
    if isinstance(expr, (Compare, Present)):
        if expr.path.urn is not None or expr.path.sub is not None:
            raise error(f"Inside a value filter, {expr.path} must be a plain sub-attribute name")
    elif isinstance(expr, (And, Or)):
        _check_relative(expr.left, error)
        _check_relative(expr.right, error)
    elif isinstance(expr, Not):
        _check_relative(expr.expr, error)
    else:
        raise error("Value filters cannot be nested")


def parse_filter(text: str) -> Expr:
    """Parse a filter; raise InvalidFilter (never anything else) for any malformed input."""
    if not isinstance(text, str):
        raise InvalidFilter("The filter must be a string")
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"The filter is longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise InvalidFilter("The filter is empty")
    try:
        p = _Parser(text, InvalidFilter)
        expr = p.parse_or()
        tok = p.peek()
        if tok is not None:
            raise InvalidFilter(f"Unexpected {tok[1]!r} at position {tok[2]}")
    except RecursionError:
        raise InvalidFilter("The filter is too deeply nested") from None
    return expr


def parse_patch_path(text: str, schema_urns: tuple[str, ...] = ()) -> PatchPath:
    """Parse a PATCH `path`; raise InvalidPath for anything malformed.

    `schema_urns` are the resource's extension URNs: a path equal to one of them names that
    whole extension (e.g. replace all enterprise attributes at once).
    """
    if not isinstance(text, str):
        raise InvalidPath("The path must be a string")
    stripped = text.strip()
    if not stripped:
        raise InvalidPath("The path is empty")
    if len(stripped) > MAX_FILTER_LENGTH:
        raise InvalidPath(f"The path is longer than {MAX_FILTER_LENGTH} characters")
    for urn in schema_urns:
        if stripped.lower() == urn.lower():
            return PatchPath(AttrPath(urn), urn_only=True)
    bracket = stripped.find("[")
    if bracket < 0:
        return PatchPath(parse_attr_path(stripped, InvalidPath))
    head = parse_attr_path(stripped[:bracket], InvalidPath)
    if head.sub is not None:
        raise InvalidPath(f"A value filter cannot follow a sub-attribute in {text!r}")
    close = stripped.rfind("]")
    if close < bracket:
        raise InvalidPath(f"Unbalanced '[' in path {text!r}")
    inner_text = stripped[bracket + 1 : close]
    tail = stripped[close + 1 :]
    sub: str | None = None
    if tail:
        if not tail.startswith(".") or not _SUB_RE.fullmatch(tail[1:]):
            raise InvalidPath(f"Unexpected {tail!r} after the value filter in {text!r}")
        sub = tail[1:]
    try:
        if not inner_text.strip():
            raise InvalidPath(f"Empty value filter in path {text!r}")
        p = _Parser(inner_text, InvalidPath)
        inner = p.parse_or()
        if p.peek() is not None:
            raise InvalidPath(f"Unexpected {p.peek()[1]!r} in the value filter of {text!r}")  # type: ignore[index]
        _check_relative(inner, InvalidPath)
    except RecursionError:
        raise InvalidPath("The path filter is too deeply nested") from None
    return PatchPath(head, inner, sub)
