"""`attributes` / `excludedAttributes` with a value filter (issue 25): exactly the matching
sub-values are returned or dropped."""

from __future__ import annotations

from typing import Any

import pytest

from scim_service.errors import InvalidFilter
from scim_service.scim import schema as s
from scim_service.scim.projection import apply_projection, parse_projection

USER: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "1",
    "userName": "ann",
    "name": {"givenName": "Ann", "familyName": "Lee"},
    "emails": [
        {"value": "ann@work.example", "type": "work", "primary": True},
        {"value": "ann@home.example", "type": "home"},
    ],
}


def project(attributes: str | None = None, excluded: str | None = None) -> dict[str, Any]:
    return apply_projection(USER, parse_projection(s.USER_TYPE, attributes, excluded))


def test_attributes_with_a_filter_keep_only_matching_elements() -> None:
    """emails[type eq "work"] returns the work email only (and the always-returned id)."""
    out = project('emails[type eq "work"]')
    assert out == {
        "schemas": USER["schemas"],
        "id": "1",
        "emails": [{"value": "ann@work.example", "type": "work", "primary": True}],
    }


def test_a_sub_attribute_after_the_filter_and_other_names() -> None:
    out = project('userName,emails[type eq "work"].value')
    assert out["userName"] == "ann" and out["emails"] == [{"value": "ann@work.example"}]
    # Two selectors on one attribute: each element keeps what any matching selector asks for.
    out = project('emails[type eq "work"],emails.type')
    assert out["emails"] == [USER["emails"][0], {"type": "home"}]
    # A comma inside the filter's string does not split the list.
    out = project('name.givenName,emails[value eq "a,b"]')
    assert out == {"schemas": USER["schemas"], "id": "1", "name": {"givenName": "Ann"}}


def test_excluded_attributes_with_a_filter_drop_only_matching_elements() -> None:
    assert project(excluded='emails[type eq "work"]')["emails"] == [USER["emails"][1]]
    assert project(excluded='emails[type eq "work"].primary')["emails"] == [
        {"value": "ann@work.example", "type": "work"},
        USER["emails"][1],
    ]
    assert "emails" not in project(excluded="emails[value pr]")
    assert USER["emails"][0]["primary"] is True  # the resource itself is not changed


def test_no_match_means_the_attribute_is_absent() -> None:
    assert "emails" not in project('emails[type eq "other"]')


@pytest.mark.parametrize(
    "bad", ["emails[type eq]", "emails[nosuch eq 1]", 'userName[value eq "x"]', "emails[type"]
)
def test_a_bad_filter_is_invalid_filter(bad: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_projection(s.USER_TYPE, bad, None)
    with pytest.raises(InvalidFilter):
        parse_projection(s.USER_TYPE, None, bad)


def test_a_filtered_member_list_still_reads_members() -> None:
    """A group projection naming members with a filter needs the member rows; one excluding
    only some members does too."""
    include = parse_projection(s.GROUP_TYPE, 'members[value eq "x"]', None)
    exclude = parse_projection(s.GROUP_TYPE, None, 'members[value eq "x"]')
    assert not include.excludes("members") and not exclude.excludes("members")
    assert parse_projection(s.GROUP_TYPE, None, "members").excludes("members")
