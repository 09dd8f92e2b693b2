"""The SCIM filter and PATCH path parser (RFC 7644 §3.4.2.2, §3.5.2).

The valid-filter generator and renderer its round-trip properties use live in
filter_strategies.py (the evaluator's property tests use them too).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_service.errors import InvalidFilter, InvalidPath
from scim_service.scim import schema as s
from scim_service.scim.filter import (
    COMPARE_OPS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_TERMS,
    And,
    AttrPath,
    Compare,
    Expr,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
    parse_attr_path,
    parse_filter,
    parse_patch_path,
)
from tests.unit.filter_strategies import CORE, ENT, Case, filters, render, value_paths


def p(attr: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(attr, sub, urn)


def eq(path: AttrPath, value: Value) -> Compare:
    return Compare(path, "eq", value)


# --- RFC 7644 §3.4.2.2: every example filter --------------------------------------------------

RFC_EXAMPLES: list[tuple[str, Expr]] = [
    ('userName Eq "john"', eq(p("userName"), "john")),
    ('Username eq "john"', eq(p("Username"), "john")),
    ('userName eq "bjensen"', eq(p("userName"), "bjensen")),
    ('name.familyName co "O\'Malley"', Compare(p("name", "familyName"), "co", "O'Malley")),
    ('userName sw "J"', Compare(p("userName"), "sw", "J")),
    (
        f'{CORE}:userName sw "J"',
        Compare(p("userName", urn=CORE), "sw", "J"),
    ),
    ("title pr", Present(p("title"))),
    (
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified ge "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "ge", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified lt "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "lt", "2011-05-13T04:42:34Z"),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34Z"',
        Compare(p("meta", "lastModified"), "le", "2011-05-13T04:42:34Z"),
    ),
    (
        'title pr and userType eq "Employee"',
        And(Present(p("title")), eq(p("userType"), "Employee")),
    ),
    (
        'title pr or userType eq "Intern"',
        Or(Present(p("title")), eq(p("userType"), "Intern")),
    ),
    (
        f'schemas eq "{ENT}"',
        eq(p("schemas"), ENT),
    ),
    (
        'userType eq "Employee" and (emails co "example.com" or\n  emails.value co "example.org")',
        And(
            eq(p("userType"), "Employee"),
            Or(
                Compare(p("emails"), "co", "example.com"),
                Compare(p("emails", "value"), "co", "example.org"),
            ),
        ),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or\n'
        '  emails.value co "example.org")',
        And(
            Compare(p("userType"), "ne", "Employee"),
            Not(
                Or(
                    Compare(p("emails"), "co", "example.com"),
                    Compare(p("emails", "value"), "co", "example.org"),
                )
            ),
        ),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        And(eq(p("userType"), "Employee"), eq(p("emails", "type"), "work")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and\n  value co "@example.com"]',
        And(
            eq(p("userType"), "Employee"),
            ValuePath(
                p("emails"),
                And(eq(p("type"), "work"), Compare(p("value"), "co", "@example.com")),
            ),
        ),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or\n'
        '  ims[type eq "xmpp" and value co "@foo.com"]',
        Or(
            ValuePath(
                p("emails"),
                And(eq(p("type"), "work"), Compare(p("value"), "co", "@example.com")),
            ),
            ValuePath(
                p("ims"),
                And(eq(p("type"), "xmpp"), Compare(p("value"), "co", "@foo.com")),
            ),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES, ids=[t for t, _ in RFC_EXAMPLES])
def test_rfc_examples(text: str, expected: Expr) -> None:
    """Every example filter of RFC 7644 §3.4.2.2 parses to the AST it means."""
    assert parse_filter(text) == expected


@pytest.mark.parametrize("op", sorted(COMPARE_OPS))
def test_every_compare_operator(op: str) -> None:
    """Each of the nine comparison operators gives a Compare with that operator."""
    assert parse_filter(f'title {op} "x"') == Compare(p("title"), op, "x")  # type: ignore[arg-type]


# --- precedence and grouping ------------------------------------------------------------------

A, B, C, D = (Present(p(n)) for n in ("a", "b", "c", "d"))

PRECEDENCE: list[tuple[str, Expr]] = [
    ("a pr or b pr and c pr", Or(A, And(B, C))),
    ("a pr and b pr or c pr", Or(And(A, B), C)),
    ("a pr and b pr or c pr and d pr", Or(And(A, B), And(C, D))),
    ("(a pr or b pr) and c pr", And(Or(A, B), C)),
    ("a pr and (b pr or c pr)", And(A, Or(B, C))),
    ("a pr or b pr or c pr", Or(Or(A, B), C)),
    ("a pr and b pr and c pr", And(And(A, B), C)),
    ("a pr and (b pr and c pr)", And(A, And(B, C))),
    ("not (a pr) and b pr", And(Not(A), B)),
    ("not (a pr) or b pr and c pr", Or(Not(A), And(B, C))),
    ("a pr and not (b pr or c pr)", And(A, Not(Or(B, C)))),
    ("not (not (a pr))", Not(Not(A))),
    ("not(a pr)", Not(A)),
    ("((a pr))", A),
    ("(a pr)and(b pr)", And(A, B)),
    ("  a pr\tand\nb pr  ", And(A, B)),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence(text: str, expected: Expr) -> None:
    """`not` binds tighter than `and`, `and` than `or`; both are left-associative."""
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('title EQ "x"', eq(p("title"), "x")),
        ('title Co "x"', Compare(p("title"), "co", "x")),
        ("title PR", Present(p("title"))),
        ("a PR AND b pr OR c Pr", Or(And(A, B), C)),
        ("NOT (a pr)", Not(A)),
        ("Not (a pr) aNd b pr", And(Not(A), B)),
        ("active eq TRUE", eq(p("active"), True)),
        ("active eq False", eq(p("active"), False)),
        ("title eq NULL", eq(p("title"), None)),
        ("title ne Null", Compare(p("title"), "ne", None)),
    ],
)
def test_operators_and_literals_are_case_insensitive(text: str, expected: Expr) -> None:
    """Operators, and/or/not and true/false/null are case-insensitive; the AST is lower-case."""
    assert parse_filter(text) == expected


def test_attribute_names_keep_their_spelling() -> None:
    """The parser keeps the client's spelling; resolution against the schema folds case."""
    assert parse_filter("USERNAME pr") == Present(p("USERNAME"))


# --- attribute paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'{CORE}:userName eq "x"', eq(p("userName", urn=CORE), "x")),
        (f'{CORE}:name.givenName eq "x"', eq(p("name", "givenName", CORE), "x")),
        (f'{ENT}:manager.value eq "x"', eq(p("manager", "value", ENT), "x")),
        (f'{ENT}:employeeNumber eq "701984"', eq(p("employeeNumber", urn=ENT), "701984")),
        (f"{ENT.upper()}:EMPLOYEENUMBER pr", Present(p("EMPLOYEENUMBER", urn=ENT.upper()))),
        (f'{CORE}:emails[type eq "work"]', ValuePath(p("emails", urn=CORE), eq(p("type"), "work"))),
        ('groups.$ref eq "x"', eq(p("groups", "$ref"), "x")),
        ('members[$ref eq "x"]', ValuePath(p("members"), eq(p("$ref"), "x"))),
        ("x509Certificates pr", Present(p("x509Certificates"))),
        ("snake_case-name pr", Present(p("snake_case-name"))),
    ],
)
def test_attribute_paths(text: str, expected: Expr) -> None:
    """URN-qualified paths split into urn, attribute and sub-attribute."""
    assert parse_filter(text) == expected


def test_attr_path_str_round_trips() -> None:
    """str(AttrPath) gives back the text it was parsed from."""
    for text in ("userName", "name.givenName", f"{ENT}:manager.value", f"{CORE}:userName"):
        assert str(parse_attr_path(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "a.b.c", "1abc", "name.", ".name", "urn:", "a b", "userName\n", "$foo", "na me", "a:b"],
)
def test_parse_attr_path_rejects(text: str) -> None:
    """parse_attr_path accepts exactly `[urn:]attr[.sub]`, not even a trailing newline."""
    with pytest.raises(InvalidFilter):
        parse_attr_path(text)
    with pytest.raises(InvalidPath):
        parse_attr_path(text, InvalidPath)


# --- value paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('emails[type eq "work"]', ValuePath(p("emails"), eq(p("type"), "work"))),
        (
            'emails[type eq "work" or primary eq true]',
            ValuePath(p("emails"), Or(eq(p("type"), "work"), eq(p("primary"), True))),
        ),
        (
            'emails[not (type eq "work") and value pr]',
            ValuePath(p("emails"), And(Not(eq(p("type"), "work")), Present(p("value")))),
        ),
        (
            'emails[(type eq "a" or type eq "b") and value ew ".org"]',
            ValuePath(
                p("emails"),
                And(
                    Or(eq(p("type"), "a"), eq(p("type"), "b")),
                    Compare(p("value"), "ew", ".org"),
                ),
            ),
        ),
        (
            'not (emails[type eq "work"]) and title pr',
            And(Not(ValuePath(p("emails"), eq(p("type"), "work"))), Present(p("title"))),
        ),
        (
            'emails[value eq "a]b"]',
            ValuePath(p("emails"), eq(p("value"), "a]b")),
        ),
    ],
)
def test_value_paths(text: str, expected: Expr) -> None:
    """`attr[filter]` holds and/or/not over the element's sub-attributes."""
    assert parse_filter(text) == expected


WORK = eq(p("type"), "work")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # Entra ID, matching on emails[type eq "work"].value
            'emails[type eq "work"].value eq "ann@contoso.com"',
            ValuePath(p("emails"), And(WORK, eq(p("value"), "ann@contoso.com"))),
        ),
        (
            'emails[type eq "work"].value sw "ann"',
            ValuePath(p("emails"), And(WORK, Compare(p("value"), "sw", "ann"))),
        ),
        (
            'emails[type eq "work"].value pr',
            ValuePath(p("emails"), And(WORK, Present(p("value")))),
        ),
        (  # ne is the negation of the positive match, like `emails.value ne`
            'emails[type eq "work"].value ne "x"',
            Not(ValuePath(p("emails"), And(WORK, eq(p("value"), "x")))),
        ),
        (
            'emails[type eq "work"].value eq null',
            Not(ValuePath(p("emails"), And(WORK, Present(p("value"))))),
        ),
        (
            'emails[type eq "work"].value ne null',
            ValuePath(p("emails"), And(WORK, Present(p("value")))),
        ),
        (
            'emails[type eq "work" or primary eq true].Value EQ "x"',
            ValuePath(p("emails"), And(Or(WORK, eq(p("primary"), True)), eq(p("Value"), "x"))),
        ),
        (
            f'{CORE}:emails[type eq "work"].value eq "x" and active eq true',
            And(
                ValuePath(p("emails", urn=CORE), And(WORK, eq(p("value"), "x"))),
                eq(p("active"), True),
            ),
        ),
        (
            'members[type eq "User"].$ref pr',
            ValuePath(p("members"), And(eq(p("type"), "User"), Present(p("$ref")))),
        ),
        (
            'not (emails[type eq "work"].value co "@x")',
            Not(ValuePath(p("emails"), And(WORK, Compare(p("value"), "co", "@x")))),
        ),
    ],
)
def test_value_path_with_sub_attribute(text: str, expected: Expr) -> None:
    """`attr[filter].sub op value` (Entra sends it; RFC 7644 has it only in PATCH paths) is
    the RFC form `attr[filter and sub op value]`: one element satisfies both."""
    assert parse_filter(text) == expected


# --- literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"caf\u00e9"', "café"),
        ('"café"', "café"),
        (r'"\ud83d\ude00"', "\U0001f600"),
        (r'"a\/b\tc\nd"', "a/b\tc\nd"),
        ('""', ""),
        ('"(not) [a] and or"', "(not) [a] and or"),
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_values(literal: str, value: Value) -> None:
    """compValue follows JSON (RFC 7159): escapes, numbers, true/false/null."""
    parsed = parse_filter(f"title eq {literal}")
    assert isinstance(parsed, Compare)
    assert parsed.value == value
    assert type(parsed.value) is type(value)


# --- malformed filters ------------------------------------------------------------------------

MALFORMED: list[tuple[str, str]] = [
    ("", "empty"),
    ("   \t\n", "empty"),
    ("(", "expected an attribute"),
    ('(userName eq "x"', "expected ')'"),
    ('userName eq "x")', "Unexpected ')'"),
    ('((userName eq "x")', "expected ')'"),
    ("()", "Expected an attribute"),
    ('emails[type eq "work"', "expected ']'"),
    ('emails[type eq "work"))', "Expected ']'"),
    ('emails type eq "work"]', "Unknown operator 'type'"),
    ("userName eq", "expected a value"),
    ("userName eq )", "Expected a value"),
    ("userName eq and title pr", "Expected a value"),
    ("userName", "expected an operator"),
    ('userName "x"', "Expected an operator"),
    ('userName is "x"', "Unknown operator 'is'"),
    ('userName == "x"', "Unexpected character '='"),
    ('userName eq "x" title pr', "Unexpected 'title'"),
    ('userName eq "x" "y"', "Unexpected '\"y\"'"),
    ('userName eq "x" and', "Unexpected end of filter"),
    ('userName eq "x" or or title pr', "Unknown operator"),
    ('title pr "x"', "'pr' takes no value"),
    ("title pr 5", "'pr' takes no value"),
    ("title pr true", "'pr' takes no value"),
    ('not userName eq "x"', "'not'"),
    ("not", "'not'"),
    ('emails[value[type eq "x"]]', "cannot be nested"),
    ('emails[type eq "a" and x[y pr]]', "cannot be nested"),
    ('name.givenName[value eq "x"]', "cannot follow a sub-attribute"),
    ('emails[name.givenName eq "x"]', "plain sub-attribute"),
    (f'emails[{CORE}:type eq "x"]', "plain sub-attribute"),
    ('emails[type eq "work"].', "sub-attribute name after '.'"),
    ('emails[type eq "work"] .value eq "x"', "Unexpected '.value'"),
    ('emails[type eq "work"].value.display eq "x"', "found '.display'"),
    ('emails[type eq "work"].value', "expected an operator"),
    ('emails[type eq "work"].value "x"', "Expected an operator"),
    ('emails[type eq "work"].value pr "x"', "'pr' takes no value"),
    ('emails[type eq "work"].$foo eq "x"', "Invalid attribute path"),
    ('userName eq "abc', "Unterminated string"),
    ('userName eq "a\nb"', "control characters"),
    (r'userName eq "\x41"', "Invalid string literal"),
    (r'userName eq "\ud800"', "Invalid string literal"),
    ("userName eq 01", "Invalid number"),
    ("userName eq 1.", "Invalid number"),
    ("userName eq 5abc", "Invalid number"),
    ("userName eq 1e999", "out of range"),
    ("userName eq bjensen", "Expected a value"),
    ("a.b.c pr", "Invalid attribute path"),
    ("name. pr", "Invalid attribute path"),
    ('userNäme eq "x"', "Unexpected character 'ä'"),
    ("title pr and [", "Expected an attribute"),
    ("]", "Expected an attribute"),
]


@pytest.mark.parametrize(("text", "detail"), MALFORMED, ids=[t for t, _ in MALFORMED])
def test_malformed_filters(text: str, detail: str) -> None:
    """Malformed filters raise InvalidFilter with a detail that says what is wrong."""
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert detail.lower() in info.value.detail.lower()
    assert info.value.to_body()["scimType"] == "invalidFilter"


def test_too_long() -> None:
    """A filter longer than MAX_FILTER_LENGTH is refused before parsing."""
    ok = 'userName eq "' + "x" * (MAX_FILTER_LENGTH - 14) + '"'
    assert len(ok) == MAX_FILTER_LENGTH
    assert isinstance(parse_filter(ok), Compare)
    with pytest.raises(InvalidFilter, match="longer than"):
        parse_filter(ok[:-1] + 'x"')


def test_too_deep() -> None:
    """MAX_DEPTH levels of grouping parse; one more is refused (parens, not, brackets)."""
    assert parse_filter("(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH) == A
    for opener, closer in (("(", ")"), ("not (", ")")):
        text = opener * (MAX_DEPTH + 1) + "a pr" + closer * (MAX_DEPTH + 1)
        with pytest.raises(InvalidFilter, match="nested more than"):
            parse_filter(text)
    with pytest.raises(InvalidFilter, match="nested more than"):
        parse_filter("(" * MAX_DEPTH + 'emails[type eq "x"]' + ")" * MAX_DEPTH)
    with pytest.raises(InvalidFilter):
        parse_filter("(" * 2000)


def test_too_many_terms() -> None:
    """MAX_TERMS comparisons parse; one more is refused."""
    assert isinstance(parse_filter(" or ".join(["a pr"] * MAX_TERMS)), Or)
    with pytest.raises(InvalidFilter, match="more than"):
        parse_filter(" or ".join(["a pr"] * (MAX_TERMS + 1)))


def test_not_a_string() -> None:
    """A non-string filter (e.g. a JSON number in a SearchRequest) is an InvalidFilter."""
    with pytest.raises(InvalidFilter):
        parse_filter(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidPath):
        parse_patch_path(None)  # type: ignore[arg-type]


# --- PATCH paths (RFC 7644 §3.5.2: PATH = attrPath / valuePath [subAttr]) -------------------

PATCH_PATHS: list[tuple[str, PatchPath]] = [
    ("userName", PatchPath(p("userName"))),
    ("name.givenName", PatchPath(p("name", "givenName"))),
    ('emails[type eq "work"]', PatchPath(p("emails"), eq(p("type"), "work"))),
    ('emails[type eq "work"].value', PatchPath(p("emails"), eq(p("type"), "work"), "value")),
    (
        'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
        PatchPath(p("members"), eq(p("value"), "2819c223-7f76-453a-919d-413861904646")),
    ),
    (
        'addresses[type eq "work"].streetAddress',
        PatchPath(p("addresses"), eq(p("type"), "work"), "streetAddress"),
    ),
    (
        'emails[type eq "work" and not (primary eq false)].display',
        PatchPath(p("emails"), And(eq(p("type"), "work"), Not(eq(p("primary"), False))), "display"),
    ),
    ('members[value eq "a]b"].$ref', PatchPath(p("members"), eq(p("value"), "a]b"), "$ref")),
    (f"{CORE}:userName", PatchPath(p("userName", urn=CORE))),
    (f"{CORE}:name.familyName", PatchPath(p("name", "familyName", CORE))),
    (f"{ENT}:employeeNumber", PatchPath(p("employeeNumber", urn=ENT))),
    (f"{ENT}:manager.value", PatchPath(p("manager", "value", ENT))),
    (
        f'{CORE}:emails[type eq "work"].value',
        PatchPath(p("emails", urn=CORE), eq(p("type"), "work"), "value"),
    ),
    ("  userName  ", PatchPath(p("userName"))),
]


@pytest.mark.parametrize(("text", "expected"), PATCH_PATHS, ids=[t for t, _ in PATCH_PATHS])
def test_patch_paths(text: str, expected: PatchPath) -> None:
    """PATCH paths: attrPath, valuePath, valuePath.subAttr, URN-qualified."""
    assert parse_patch_path(text, (ENT,)) == expected


@pytest.mark.parametrize("text", [ENT, ENT.lower(), f"  {ENT} "])
def test_patch_path_whole_extension(text: str) -> None:
    """A path equal to an extension URN in `schema_urns` names that whole extension."""
    parsed = parse_patch_path(text, (ENT, s.PLATFORM_USER_SCHEMA))
    assert parsed == PatchPath(AttrPath(ENT), urn_only=True)


def test_patch_path_urn_not_in_schema_urns() -> None:
    """Without `schema_urns`, a bare URN is read as `urn:attr`, never as urn_only."""
    parsed = parse_patch_path(ENT)
    assert not parsed.urn_only


MALFORMED_PATHS: list[tuple[str, str]] = [
    ("", "empty"),
    ("   ", "empty"),
    ("a.b.c", "Invalid attribute path"),
    ("name.", "Invalid attribute path"),
    ("emails[", "Unbalanced"),
    ('emails[type eq "work"', "Unbalanced"),
    ("emails]", "Invalid attribute path"),
    ("emails[]", "Empty value filter"),
    ("emails[ ]", "Empty value filter"),
    ('[type eq "work"]', "Invalid attribute path"),
    ('emails[type eq "work"]value', "after the value filter"),
    ('emails[type eq "work"].', "after the value filter"),
    ('emails[type eq "work"].value.display', "after the value filter"),
    ('emails[type eq "work"]]', "Unexpected ']'"),
    ('emails[type eq "work"] and title pr', "after the value filter"),
    ("emails[type eq]", "expected a value"),
    ('emails[type xx "work"]', "Unknown operator"),
    ('emails[value[type eq "x"]]', "cannot be nested"),
    ('emails[name.givenName eq "x"]', "plain sub-attribute"),
    ('name.givenName[value eq "x"]', "cannot follow a sub-attribute"),
    ('emails\n[type eq "work"]', "Invalid attribute path"),
    ("user name", "Invalid attribute path"),
    ('userName eq "x"', "Invalid attribute path"),
    ("emails[" + "(" * 40 + "value pr" + ")" * 40 + "]", "nested"),
    ("x" * (MAX_FILTER_LENGTH + 1), "longer than"),
]


@pytest.mark.parametrize(("text", "detail"), MALFORMED_PATHS, ids=[t for t, _ in MALFORMED_PATHS])
def test_malformed_patch_paths(text: str, detail: str) -> None:
    """Malformed PATCH paths raise InvalidPath (never InvalidFilter) with a helpful detail."""
    with pytest.raises(InvalidPath) as info:
        parse_patch_path(text, (ENT,))
    assert detail.lower() in info.value.detail.lower()
    assert info.value.to_body()["scimType"] == "invalidPath"


# --- property tests ---------------------------------------------------------------------------

SOUP = [
    "(",
    ")",
    "[",
    "]",
    '"',
    "\\",
    '"x"',
    '"a\\"b"',
    "eq",
    "EQ",
    "pr",
    "co",
    "gt",
    "and",
    "or",
    "not",
    "not (",
    "true",
    "null",
    "userName",
    "emails",
    "name.givenName",
    ".",
    ":",
    "$ref",
    f"{ENT}:",
    "urn:",
    "1",
    "-",
    "1e",
    "1.5",
    "\\u00",
    "é",
    "\x00",
    "\n",
    " ",
    "  ",
]

fuzz_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="ascii"), max_size=80),
    st.lists(st.sampled_from(SOUP), max_size=40).map("".join),
    st.lists(st.sampled_from(SOUP), max_size=40).map(" ".join),
    st.builds(
        lambda n, s, close: s * n + "a pr" + close * n,
        st.integers(0, 3000),
        st.sampled_from(["(", "not (", "[", "a[", "emails[", "((", "x eq 1 and ("]),
        st.sampled_from([")", "]", "", ")]"]),
    ),
    st.builds(
        lambda n, chunk: chunk * n,
        st.integers(1, 3000),
        st.sampled_from(['"', "\\", "a", "a.", "urn:a:", "1", " or a pr", "[a pr]", "é"]),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_text)
def test_parse_filter_never_raises_anything_else(text: str) -> None:
    """Whatever the text, parse_filter returns an AST or raises InvalidFilter."""
    try:
        expr = parse_filter(text)
    except InvalidFilter as e:
        assert e.detail
    else:
        assert isinstance(expr, (Compare, Present, And, Or, Not, ValuePath))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(fuzz_text, st.builds(lambda a, b: f"emails[{a}]{b}", fuzz_text, fuzz_text)))
def test_parse_patch_path_never_raises_anything_else(text: str) -> None:
    """Whatever the text, parse_patch_path returns a PatchPath or raises InvalidPath."""
    try:
        path = parse_patch_path(text, (ENT,))
    except InvalidPath as e:
        assert e.detail
    else:
        assert isinstance(path, PatchPath)


@settings(max_examples=200, deadline=None)
@given(filters(), st.sampled_from([str.lower, str.upper, str.title]), st.booleans())
def test_round_trip(expr: Expr, case: Case, ascii_only: bool) -> None:
    """render → parse gives the same AST, whatever the case of the keywords; rendering the
    parsed AST again gives the same text (so 1, 1.0 and true stay distinct)."""
    text = render(expr, case, ascii_only)
    parsed = parse_filter(text)
    assert parsed == expr
    assert render(parsed) == render(expr)


@settings(max_examples=60, deadline=None)
@given(value_paths(), st.sampled_from([None, "value", "display", "type"]))
def test_patch_path_round_trip(vp: Expr, sub: str | None) -> None:
    """A rendered valuePath[.subAttr] parses back as a PATCH path with the same parts."""
    assert isinstance(vp, ValuePath)
    text = render(vp) + (f".{sub}" if sub else "")
    assert parse_patch_path(text) == PatchPath(vp.path, vp.filter, sub)
