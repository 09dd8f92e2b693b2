"""The in-memory filter evaluator (RFC 7644 §3.4.2.2 comparison rules) over User resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_service.errors import InvalidFilter, InvalidPath
from scim_service.scim import evaluate
from scim_service.scim import schema as s
from scim_service.scim.filter import Expr, Not, parse_filter, parse_patch_path
from tests.unit.filter_strategies import SAMPLE_STRINGS, filters

ENT = s.ENTERPRISE_USER_SCHEMA
PLATFORM = s.PLATFORM_USER_SCHEMA

# The output representation: core attributes at the top, extensions under their URN.
BJENSEN: dict[str, Any] = {
    "schemas": [s.USER_SCHEMA, ENT, PLATFORM],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "BJensen-EXT",
    "userName": "bjensen@example.com",
    "name": {
        "formatted": "Ms. Barbara J Jensen III",
        "familyName": "Jensen",
        "givenName": "Barbara",
    },
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "title": "Tour Guide",
    "userType": "Employee",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
    "ims": [{"value": "babs@xmpp.example.com", "type": "xmpp"}],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "primary": True,
        }
    ],
    "groups": [
        {
            "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
            "display": "Tour Guides",
            "type": "direct",
        }
    ],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
    ENT: {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
            "value": "26118915-6090-4610-87e4-49d8ca9f808d",
            "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
            "displayName": "John Smith",
        },
    },
    PLATFORM: {"setupState": "complete", "setupCompletedAt": "2011-05-14T09:00:00Z"},
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff591"',
        "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
    },
}

# Freshly provisioned: only what an IdP must send, plus the server's meta.
SPARSE: dict[str, Any] = {
    "schemas": [s.USER_SCHEMA],
    "id": "c3a2b1d0-0000-4000-8000-000000000001",
    "userName": "Alice",
    "emails": [],
    "meta": {
        "resourceType": "User",
        "created": "2024-02-29T23:59:59.123456+00:00",
        "lastModified": "2024-03-01T01:00:00+01:00",
        "version": 'W/"1"',
        "location": "https://example.com/v2/Users/c3a2b1d0-0000-4000-8000-000000000001",
    },
}


def match(text: str, resource: dict[str, Any]) -> bool:
    return evaluate.matches(s.USER_TYPE, parse_filter(text), resource)


# filter, matches BJENSEN, matches SPARSE
CASES: list[tuple[str, bool, bool]] = [
    # equality; case-insensitive unless caseExact (RFC 7643 §2.1, §3.1 for id and externalId)
    ('userName eq "bjensen@example.com"', True, False),
    ('userName eq "BJENSEN@Example.COM"', True, False),
    ('USERNAME Eq "alice"', False, True),
    ('title eq "tour guide"', True, False),
    ('id eq "2819c223-7f76-453a-919d-413861904646"', True, False),
    ('id eq "2819C223-7F76-453A-919D-413861904646"', False, False),
    ('externalId eq "BJensen-EXT"', True, False),
    ('externalId eq "bjensen-ext"', False, False),
    ('meta.resourceType eq "User"', True, True),
    ('meta.resourceType eq "user"', False, False),
    ('meta.location co "/Users/"', True, True),
    # co / sw / ew
    ('name.familyName co "ENS"', True, False),
    ('name.familyName sw "jen"', True, False),
    ('name.familyName ew "SEN"', True, False),
    ('name.familyName sw "Jensen"', True, False),
    ('name.familyName co ""', True, False),
    ('externalId co "ext"', False, False),
    ('externalId ew "EXT"', True, False),
    ('userName sw "a"', False, True),
    # gt/ge/lt/le on strings: code-point order, case-folded unless caseExact
    ('userName gt "B"', True, False),
    ('userName lt "b"', False, True),
    ('userName ge "ALICE"', True, True),
    ('userName le "alice"', False, True),
    ('userName gt "alice"', True, False),
    ('externalId gt "a"', False, False),  # "B" (U+0042) < "a" (U+0061)
    ('externalId lt "a"', True, False),
    ('title gt "tour guidf"', False, False),
    ('title lt "tour guidf"', True, False),
    # dateTimes: chronological, whatever the offset; no offset means UTC
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
    ('meta.lastModified eq "2011-05-13T06:42:34+02:00"', True, False),
    ('meta.lastModified lt "2011-05-13T04:42:34.001Z"', True, False),
    ('meta.lastModified le "2011-05-13T04:42:34"', True, False),
    ('meta.lastModified gt "2024-03-01T00:00:00Z"', False, False),  # 01:00+01:00 is 00:00Z
    ('meta.lastModified ge "2024-03-01T00:00:00Z"', False, True),
    ('meta.created lt "2024-02-29T23:59:59.2Z"', True, True),
    ('meta.created gt "2024-02-29T23:59:59.123455Z"', False, True),
    ('meta.lastModified ne "2011-05-13T04:42:34Z"', False, True),
    (f'{PLATFORM}:setupCompletedAt gt "2011-05-13T00:00:00Z"', True, False),
    # booleans: eq and ne only; a "True" string is read as the boolean
    ("active eq true", True, False),
    ("active eq TRUE", True, False),
    ('active eq "True"', True, False),
    ("active eq false", False, False),
    ("active ne true", False, True),
    ("active ne false", True, True),
    ("emails.primary eq true", True, False),
    ("emails[primary eq true]", True, False),
    ("emails[not (primary eq true)]", True, False),
    # pr
    ("title pr", True, False),
    ("name pr", True, False),
    ("name.middleName pr", False, False),
    ("emails pr", True, False),
    ("emails.type pr", True, False),
    ("userName pr", True, True),
    ("meta pr", True, True),
    (f"{ENT}:manager pr", True, False),
    (f"{ENT}:manager.value pr", True, False),
    (f"{ENT}:employeeNumber pr", True, False),
    # ne and not on absent attributes: absent is "not equal"
    ('title ne "Tour Guide"', False, True),
    ('title ne "Intern"', True, True),
    ('not (title eq "Intern")', True, True),
    ('not (title eq "Tour Guide")', False, True),
    ("not (title pr)", False, True),
    ('emails.type ne "work"', False, True),
    ('emails ne "x@y"', True, True),
    # multi-valued: any element matches
    ('emails.value eq "babs@jensen.org"', True, False),
    ('emails.type eq "home"', True, False),
    ('emails co "jensen.org"', True, False),
    ('emails co "EXAMPLE.com"', True, False),
    ('emails eq "bjensen@example.com"', True, False),
    ('emails.value ew ".org"', True, False),
    ('groups.display eq "tour guides"', True, False),
    ('groups.$ref co "/Groups/"', True, False),
    ('ims[type eq "xmpp" and value co "@xmpp."]', True, False),
    # value paths: the conditions hold for the same element
    ('emails[type eq "work" and value co "@example.com"]', True, False),
    ('emails[type eq "home" and value co "@example.com"]', False, False),
    ('emails.type eq "home" and emails.value co "@example.com"', True, False),
    ('emails[type eq "work" or type eq "other"]', True, False),
    ('addresses[type eq "work" and postalCode sw "916"]', True, False),
    ('addresses[TYPE EQ "WORK"]', True, False),
    ("groups[$ref pr]", True, False),
    # a value path with a sub-attribute (Entra): the same element matches both
    ('emails[type eq "work"].value eq "BJensen@example.com"', True, False),
    ('emails[type eq "work"].value eq "babs@jensen.org"', False, False),
    ('emails[type eq "home"].value ew ".org"', True, False),
    ('emails[type eq "work"].value pr', True, False),
    ('emails[type eq "other"].value pr', False, False),
    ('emails[type eq "work"].value ne "babs@jensen.org"', True, True),
    ('emails[type eq "work"].value ne "bjensen@example.com"', False, True),
    ('emails[type eq "work"].value eq null', False, True),
    ('emails[type eq "other"].value eq null', True, True),
    ('emails[type eq "work"].primary eq true', True, False),
    ('emails[type eq "home"].primary eq true', False, False),
    ('addresses[type eq "work"].postalCode sw "916"', True, False),
    ('groups[display eq "Tour Guides"].type eq "direct"', True, False),
    # eq null is "absent", ne null is "present"
    ("title eq null", False, True),
    ("title ne null", True, False),
    ("emails eq null", False, True),
    ("addresses eq null", False, True),
    ("name eq null", False, True),
    ("emails[display eq null]", True, False),
    # the RFC 7644 §3.4.2.2 examples, on realistic data
    ('userName sw "J"', False, False),
    (f'{s.USER_SCHEMA}:userName sw "B"', True, False),
    ('title pr and userType eq "Employee"', True, False),
    ('title pr or userType eq "Intern"', True, False),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        True,
        False,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
        True,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True, False),
    (
        'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]',
        True,
        False,
    ),
    # URN-qualified extension attributes
    (f'{ENT}:employeeNumber eq "701984"', True, False),
    (f'{ENT.upper()}:EMPLOYEENUMBER eq "701984"', True, False),
    (f'{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"', True, False),
    (f'{ENT}:manager.displayName co "smith"', True, False),
    (f'{PLATFORM}:setupState eq "complete"', True, False),
    (f'{PLATFORM}:setupState eq "Complete"', False, False),  # caseExact
    # precedence
    ('userName eq "alice" or title pr and active eq false', False, True),
    ('(userName eq "alice" or title pr) and active eq false', False, False),
    # unicode and escapes
    ('name.givenName eq "BARBARA"', True, False),
    ('name.givenName eq "Barb\\u0061ra"', True, False),
]


@pytest.mark.parametrize(("text", "bjensen", "sparse"), CASES, ids=[c[0] for c in CASES])
def test_matches(text: str, bjensen: bool, sparse: bool) -> None:
    """Each filter matches the full and the sparse user exactly as RFC 7644 §3.4.2.2 says."""
    assert match(text, BJENSEN) is bjensen
    assert match(text, SPARSE) is sparse


INVALID: list[tuple[str, str]] = [
    ('nonexistent eq "x"', "Unknown attribute"),
    ('name.nonexistent eq "x"', "Unknown sub-attribute"),
    ('userName.value eq "x"', "no sub-attribute"),
    ('employeeNumber eq "701984"', "Unknown attribute"),  # extension attributes need the URN
    (f'{ENT}:userName eq "x"', "Unknown attribute"),
    ('urn:example:unknown:userName eq "x"', "Unknown attribute"),
    ('emails[nonexistent eq "x"]', "Unknown sub-attribute"),
    ('name[givenName eq "x"]', "not a multi-valued complex"),
    ('userName[value eq "x"]', "not a multi-valued complex"),
    ("active gt true", "only eq and ne"),
    ("active co true", "only eq and ne"),
    ('active eq "yes"', "boolean"),
    ("active eq 1", "boolean"),
    ("emails[primary ge false]", "only eq and ne"),
    ("userName eq 5", "string"),
    ("userName eq true", "string"),
    ("userName gt 1.5", "string"),
    ("userName co null", "null"),
    ('meta.created co "2020"', "co, sw and ew do not apply"),
    ('meta.created sw "2011-05-13T04:42:34Z"', "co, sw and ew do not apply"),
    ('meta.lastModified gt "yesterday"', "RFC 3339"),
    ('meta.lastModified gt "2011-05-13"', "RFC 3339"),
    ('meta.lastModified gt "2011-13-13T04:42:34Z"', "RFC 3339"),
    ("meta.lastModified gt 1305261754", "RFC 3339"),
    ('name eq "Barbara"', "complex"),
    ('meta eq "x"', "complex"),
    ('addresses eq "x"', "complex"),
    ('x509Certificates co "MIID"', "binary"),
    # the filter is judged whole, not just the part the data reaches
    ('userName eq "nobody" and nonexistent eq "x"', "Unknown attribute"),
    ("title pr or active gt true", "only eq and ne"),
    ('not (userName pr) and emails[nonexistent eq "x"]', "Unknown sub-attribute"),
]


@pytest.mark.parametrize(("text", "detail"), INVALID, ids=[c[0] for c in INVALID])
@pytest.mark.parametrize("resource", [BJENSEN, SPARSE, {}], ids=["bjensen", "sparse", "empty"])
def test_invalid_filters(text: str, detail: str, resource: dict[str, Any]) -> None:
    """Unknown attributes and type mismatches raise InvalidFilter, whatever the resource holds
    and wherever `and`/`or` would short-circuit."""
    with pytest.raises(InvalidFilter) as info:
        match(text, resource)
    assert detail.lower() in info.value.detail.lower()


@pytest.mark.parametrize(
    ("resource", "text", "expected"),
    [
        ({"emails": [{"type": "work"}]}, "emails pr", True),  # an element without `value`
        ({"emails": [{"type": "work"}]}, "emails eq null", False),
        ({"emails": [{"type": "work"}]}, "emails.value pr", False),
        ({"emails": [{}, {"value": None}]}, "emails pr", False),
        ({"emails": [{"value": ""}]}, "emails pr", False),
        ({"name": {"givenName": None, "familyName": ""}}, "name pr", False),
        ({"name": {"givenName": None, "familyName": ""}}, "name eq null", True),
        ({"name": {"givenName": "B"}}, "name pr", True),
        ({"title": ""}, "title pr", False),
        ({"title": ""}, "title eq null", True),
        ({"active": False}, "active pr", True),
        ({ENT: {"manager": {"value": ""}}}, f"{ENT}:manager pr", False),
    ],
)
def test_present_means_a_non_empty_node(
    resource: dict[str, Any], text: str, expected: bool
) -> None:
    """`pr` (and so `eq null`) looks for a non-empty value or a complex value with a non-empty
    node (RFC 7644 §3.4.2.2), not just for the key."""
    assert match(text, resource) is expected


def test_group_resource_type() -> None:
    """The evaluator works for Groups too: members, displayName; User attributes are unknown."""
    group = {
        "schemas": [s.GROUP_SCHEMA],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"}],
        "meta": {"resourceType": "Group", "lastModified": "2011-05-13T04:42:34Z"},
    }
    ok = parse_filter('members[value eq "2819c223-7f76-453a-919d-413861904646"]')
    assert evaluate.matches(s.GROUP_TYPE, ok, group)
    assert evaluate.matches(s.GROUP_TYPE, parse_filter('displayName eq "tour guides"'), group)
    assert not evaluate.matches(s.GROUP_TYPE, parse_filter('members.display eq "x"'), group)
    with pytest.raises(InvalidFilter):
        evaluate.matches(s.GROUP_TYPE, parse_filter('userName eq "x"'), group)


# --- matches_element (PATCH value filters) --------------------------------------------------


def _attr(parent: s.Schema | s.Attr, name: str) -> s.Attr:
    found = parent.attr(name) if isinstance(parent, s.Schema) else parent.sub(name)
    assert found is not None
    return found


EMAILS = _attr(s.USER, "emails")


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ('emails[type eq "work"]', [0]),
        ('emails[TYPE eq "WORK"]', [0]),
        ('emails[type ne "work"]', [1, 2]),
        ("emails[primary eq true]", [0]),
        ("emails[not (primary eq true)]", [1, 2]),
        ("emails[display pr]", [2]),
        ("emails[display eq null]", [0, 1]),
        ('emails[value ew ".org" or type eq "other"]', [1, 2]),
    ],
)
def test_matches_element(path: str, selected: list[int]) -> None:
    """A PATCH path's value filter selects the elements it describes."""
    elements: list[dict[str, Any]] = [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "b@example.net", "type": "other", "display": "Other"},
    ]
    parsed = parse_patch_path(path)
    assert parsed.filter is not None
    got = [
        i
        for i, e in enumerate(elements)
        if evaluate.matches_element(EMAILS, parsed.filter, e, InvalidPath)
    ]
    assert got == selected


@pytest.mark.parametrize(
    "path",
    ['emails[nonexistent eq "x"]', "emails[primary gt true]", "emails[value eq 5]"],
)
@pytest.mark.parametrize("element", [{}, {"value": "x", "type": "work"}])
def test_matches_element_errors(path: str, element: dict[str, Any]) -> None:
    """Invalid value filters raise the error class the caller names, even on empty elements."""
    parsed = parse_patch_path(path)
    assert parsed.filter is not None
    with pytest.raises(InvalidPath):
        evaluate.matches_element(EMAILS, parsed.filter, element, InvalidPath)
    with pytest.raises(InvalidFilter):
        evaluate.matches_element(EMAILS, parsed.filter, element)


# --- the public helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-05-13T04:42:34Z", datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)),
        ("2011-05-13t04:42:34z", datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)),
        ("2011-05-13T04:42:34", datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)),
        ("2011-05-13 04:42:34+00:00", datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)),
        (
            "2011-05-13T06:42:34.5+02:00",
            datetime(2011, 5, 13, 6, 42, 34, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2011-05-13T04:42:34.123456789Z", datetime(2011, 5, 13, 4, 42, 34, 123456, tzinfo=UTC)),
        ("2011-05-13", None),
        ("2011-W19", None),
        ("20110513T044234Z", None),
        ("2011-05-13T04:42:34+24:00", None),
        ("2011-02-30T00:00:00Z", None),
        ("", None),
        ("2011-05-13T04:42:34Z\n", None),
    ],
)
def test_parse_datetime(text: str, expected: datetime | None) -> None:
    """xsd:dateTime / RFC 3339 strings become aware datetimes; anything else is None."""
    assert evaluate.parse_datetime(text) == expected


def test_compare_scalar_tolerates_odd_stored_values() -> None:
    """A stored value of the wrong type never matches and never raises."""
    last_modified = _attr(s.META, "lastModified")
    active = _attr(s.USER, "active")
    user_name = _attr(s.USER, "userName")
    when = evaluate.check_comparable(last_modified, "gt", "2011-05-13T04:42:34Z")
    odd: Any
    for odd in (5, ["2012-01-01T00:00:00Z"], {"a": 1}, "garbage", True):
        assert evaluate.compare_scalar(last_modified, odd, "gt", when) is False
    for odd in (1, "yes", [True], {}):
        assert evaluate.compare_scalar(active, odd, "eq", True) is False
    for odd in (5, None, ["bjensen"], {"value": "bjensen"}):
        assert evaluate.compare_scalar(user_name, odd, "eq", "bjensen") is False
    naive = datetime(2012, 1, 1)  # a naive stored value is read as UTC
    assert evaluate.compare_scalar(last_modified, naive, "gt", when) is True


# --- property tests ---------------------------------------------------------------------------

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(SAMPLE_STRINGS),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)
strings = st.one_of(st.sampled_from(SAMPLE_STRINGS), st.text(max_size=10))
maybe = st.one_of(strings, strings, strings, odd_values)  # mostly well-typed, sometimes not
timestamps = st.one_of(
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]
        )
    ).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["2011-05-13T04:42:34Z", "garbage", ""]),
)


def _element(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=keys)


_multi = _element(
    {
        "value": maybe,
        "type": st.sampled_from(["work", "home", "Work", "other", "xmpp"]),
        "primary": st.one_of(st.booleans(), st.sampled_from(["True", "false", "1"])),
        "display": maybe,
        "$ref": strings,
    }
)

users = st.fixed_dictionaries(
    {"schemas": st.just([s.USER_SCHEMA]), "id": strings, "userName": maybe},
    optional={
        "externalId": maybe,
        "displayName": maybe,
        "title": maybe,
        "userType": maybe,
        "locale": maybe,
        "profileUrl": maybe,
        "active": st.one_of(st.booleans(), st.sampled_from(["True", "false", "yes"]), odd_values),
        "name": st.one_of(
            _element({"givenName": maybe, "familyName": maybe, "formatted": maybe}), odd_values
        ),
        "emails": st.one_of(st.lists(_multi, max_size=3), odd_values),
        "phoneNumbers": st.lists(_multi, max_size=2),
        "ims": st.lists(_multi, max_size=2),
        "roles": st.lists(_multi, max_size=2),
        "x509Certificates": st.lists(_multi, max_size=1),
        "groups": st.lists(_multi, max_size=2),
        "addresses": st.lists(
            _element({"streetAddress": maybe, "postalCode": maybe, "type": strings}), max_size=2
        ),
        "meta": st.one_of(
            _element(
                {
                    "created": timestamps,
                    "lastModified": st.one_of(timestamps, odd_values),
                    "resourceType": st.just("User"),
                    "version": strings,
                    "location": strings,
                }
            ),
            odd_values,
        ),
        ENT: st.one_of(
            _element(
                {
                    "employeeNumber": maybe,
                    "department": maybe,
                    "manager": _element({"value": maybe, "displayName": maybe}),
                }
            ),
            odd_values,
        ),
        PLATFORM: _element({"setupState": strings, "setupCompletedAt": timestamps}),
    },
)


def _outcome(expr: Expr, resource: dict[str, Any]) -> bool | None:
    """True/False, or None when the filter is invalid (InvalidFilter)."""
    try:
        return evaluate.matches(s.USER_TYPE, expr, resource)
    except InvalidFilter:
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters(), users)
def test_matches_raises_only_invalid_filter(expr: Expr, resource: dict[str, Any]) -> None:
    """On any User-shaped resource, matches returns a bool or raises InvalidFilter; validity
    depends on the filter alone, and `not` is exactly the negation."""
    got = _outcome(expr, resource)
    assert got is None or isinstance(got, bool)
    assert (_outcome(expr, {}) is None) is (got is None)
    negated = _outcome(Not(expr), resource)
    assert negated is (None if got is None else not got)


@settings(max_examples=100, deadline=None)
@given(users, st.sampled_from(["userName", "title", "displayName", "externalId"]), strings)
def test_ne_is_not_eq(resource: dict[str, Any], attr: str, value: str) -> None:
    """`x ne v` is `not (x eq v)`, present or absent, and matches the folded comparison."""
    quoted = parse_filter(f"{attr} eq {json.dumps(value)}")
    ne = parse_filter(f"{attr} ne {json.dumps(value)}")
    assert evaluate.matches(s.USER_TYPE, ne, resource) is not evaluate.matches(
        s.USER_TYPE, quoted, resource
    )
    stored = resource.get(attr)
    if isinstance(stored, str):
        fold = (lambda x: x) if attr == "externalId" else str.lower
        assert evaluate.matches(s.USER_TYPE, quoted, resource) is (fold(stored) == fold(value))
