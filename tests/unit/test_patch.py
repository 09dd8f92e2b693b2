"""The PATCH engine (RFC 7644 §3.5.2): users, groups, the bodies Okta and Entra ID send."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_service.errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from scim_service.scim import schema as s
from scim_service.scim.patch import MAX_OPERATIONS, apply_patch
from scim_service.scim.patch_members import GroupPatchPlan, MemberOp, plan_group_patch
from scim_service.scim.resource import check_required, normalize_resource

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PLATFORM = "urn:ietf:params:scim:schemas:extension:secretsplatform:2.0:User"

BARBARA: dict[str, Any] = {
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@home.example", "type": "home"},
    ],
    ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "m-1"}},
}
GROUP: dict[str, Any] = {"displayName": "Tour Guides", "externalId": "g-ext"}


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def patch(*operations: dict[str, Any], attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    return apply_patch(s.USER_TYPE, BARBARA if attrs is None else attrs, body(*operations))


def patch_group(*operations: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(s.GROUP_TYPE, GROUP, body(*operations))


def raises(error: type[ScimError], *operations: dict[str, Any]) -> ScimError:
    with pytest.raises(error) as info:
        patch(*operations)
    return info.value


# --- the message -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        [],
        "x",
        None,
        {},
        {"schemas": [PATCH_OP]},
        {"schemas": [PATCH_OP], "Operations": []},
        {"schemas": [PATCH_OP], "Operations": {"op": "add"}},
        {"schemas": [PATCH_OP], "Operations": ["add"]},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [{}]},
        {"schemas": PATCH_OP, "Operations": [{"op": "remove", "path": "title"}]},
        body({"op": "move", "path": "title", "value": "x"}),
        body({"op": None, "path": "title", "value": "x"}),
        body({"path": "title", "value": "x"}),
    ],
)
def test_a_malformed_message_is_invalid_syntax(raw: Any) -> None:
    """Anything but a PatchOp with a non-empty Operations array of add/remove/replace fails."""
    with pytest.raises(InvalidSyntax):
        apply_patch(s.USER_TYPE, BARBARA, raw)


def test_missing_schemas_is_tolerated_and_member_names_are_case_insensitive() -> None:
    """IdPs always send `schemas`; a client that forgets it is still served."""
    raw = {"operations": [{"OP": "Replace", "PATH": "title", "VALUE": "Boss"}]}
    assert apply_patch(s.USER_TYPE, BARBARA, raw)["title"] == "Boss"


def test_more_than_the_operation_limit_is_invalid_value() -> None:
    """One request cannot carry more than MAX_OPERATIONS operations."""
    ops = [{"op": "replace", "path": "title", "value": "x"}] * (MAX_OPERATIONS + 1)
    with pytest.raises(InvalidValue, match="1000"):
        patch(*ops)
    assert patch(*ops[:MAX_OPERATIONS])["title"] == "x"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "title"},
        {"op": "add", "path": "title", "value": None},
        {"op": "replace", "path": "title"},
        {"op": "add"},
    ],
)
def test_add_and_replace_need_a_value(operation: dict[str, Any]) -> None:
    """RFC 7644 §3.5.2.1: add MUST contain a value; replace needs one too (null unassigns)."""
    raises(InvalidValue, operation)


@pytest.mark.parametrize("path", [None, "", "   "])
def test_remove_without_a_path_is_no_target(path: str | None) -> None:
    """RFC 7644 §3.5.2.2: a remove without a path fails with noTarget."""
    raises(NoTarget, {"op": "remove", "path": path})


def test_a_path_that_is_not_a_string_is_invalid_path() -> None:
    """The path must be a string."""
    raises(InvalidPath, {"op": "replace", "path": 7, "value": "x"})


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "nickname2",
        "name.middle",
        "emails[type eq]",
        'emails[nope eq "x"].value',
        'emails[type eq "work"].nope',
        'name[givenName eq "x"]',
        'emails[primary eq "yes"]',
        f"{ENTERPRISE}:nope",
        "urn:ietf:params:scim:schemas:extension:custom:2.0:User:costCenter",
        "title.sub",
    ],
)
def test_unknown_or_malformed_paths_are_invalid_path(path: str) -> None:
    """RFC 7644 §3.12: invalidPath is for a path that is invalid or names nothing."""
    raises(InvalidPath, {"op": "replace", "path": path, "value": "x"})


@pytest.mark.parametrize(
    "path",
    ["id", "meta", "meta.lastModified", "groups", "schemas", f"{PLATFORM}:setupState", PLATFORM],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_targets_are_mutability_errors(path: str, op: str) -> None:
    """RFC 7644 §3.5.2: a client MUST NOT modify a readOnly attribute."""
    raises(Mutability, {"op": op, "path": path, "value": "x"})


def test_a_read_only_sub_attribute_is_a_mutability_error() -> None:
    """manager.displayName is readOnly in the enterprise extension."""
    raises(Mutability, {"op": "replace", "path": f"{ENTERPRISE}:manager.displayName", "value": "x"})


@pytest.mark.parametrize("path", ["UserName", "USERNAME", f"{s.USER_SCHEMA}:userName"])
def test_paths_are_case_insensitive_and_results_use_the_schema_spelling(path: str) -> None:
    """RFC 7643 §2.1: attribute names are case-insensitive; we store the schema's spelling."""
    result = patch({"op": "replace", "path": path, "value": "barbara"})
    assert result["userName"] == "barbara"
    assert set(result) == set(BARBARA)


def test_sub_attribute_and_filter_names_are_case_insensitive() -> None:
    """`NAME.GIVENNAME` and `EMAILS[TYPE EQ "WORK"].VALUE` reach the same attributes."""
    result = patch(
        {"op": "replace", "path": "NAME.GIVENNAME", "value": "Barb"},
        {"op": "replace", "path": 'EMAILS[TYPE EQ "WORK"].VALUE', "value": "b@corp.example"},
        {"op": "replace", "path": ENTERPRISE.upper() + ":EMPLOYEENUMBER", "value": "8"},
    )
    assert result["name"] == {"givenName": "Barb", "familyName": "Jensen"}
    assert result["emails"][0]["value"] == "b@corp.example"
    assert result[ENTERPRISE]["employeeNumber"] == "8"


@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_the_password_is_accepted_and_never_stored(op: str) -> None:
    """The password is writeOnly and this service never keeps it."""
    assert patch({"op": op, "path": "password", "value": "s3cret!"}) == BARBARA


# --- add --------------------------------------------------------------------------------------


def test_add_sets_a_singular_attribute() -> None:
    """RFC 7644 §3.5.2.1: a singular attribute is set (an existing value is replaced)."""
    assert patch({"op": "add", "path": "nickName", "value": "Babs"})["nickName"] == "Babs"
    assert patch({"op": "add", "path": "displayName", "value": "B"})["displayName"] == "B"


def test_add_merges_a_complex_attribute() -> None:
    """Sub-attributes given are set; the others stay."""
    result = patch({"op": "add", "path": "name", "value": {"middleName": "Jane"}})
    assert result["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}


def test_add_appends_to_a_multi_valued_attribute_without_duplicates() -> None:
    """New values are appended; a value already present is not added twice."""
    phone = {"value": "555-1234", "type": "work"}
    result = patch(
        {"op": "add", "path": "phoneNumbers", "value": [phone]},
        {"op": "add", "path": "phoneNumbers", "value": [phone, {"value": "555-9"}]},
        {"op": "add", "path": "emails", "value": [BARBARA["emails"][1]]},
    )
    assert result["phoneNumbers"] == [phone, {"value": "555-9"}]
    assert result["emails"] == BARBARA["emails"]


def test_add_with_a_filter_and_sub_attribute_sets_every_match() -> None:
    """`emails[type eq "work"].display` sets display on each work email."""
    attrs = {**BARBARA, "emails": [*BARBARA["emails"], {"value": "w2@x.example", "type": "work"}]}
    result = patch(
        {"op": "add", "path": 'emails[type eq "work"].display', "value": "W"}, attrs=attrs
    )
    assert [e.get("display") for e in result["emails"]] == ["W", None, "W"]


@pytest.mark.parametrize("op", ["Add", "Replace"])
def test_a_filter_of_eq_terms_that_matches_nothing_creates_the_element(op: str) -> None:
    """Entra sends Add or Replace `emails[type eq "work"].value` to users without a work email."""
    attrs = {"userName": "u"}
    result = patch({"op": op, "path": 'emails[type eq "work"].value', "value": "u@x"}, attrs=attrs)
    assert result["emails"] == [{"type": "work", "value": "u@x"}]
    result = patch(
        {
            "op": op,
            "path": 'addresses[type eq "work" and country eq "FR"]',
            "value": {"locality": "Paris"},
        },
        attrs=attrs,
    )
    assert result["addresses"] == [{"type": "work", "country": "FR", "locality": "Paris"}]


@pytest.mark.parametrize("op", ["add", "replace"])
def test_a_filter_that_describes_no_element_and_matches_nothing_is_no_target(op: str) -> None:
    """RFC 7644 §3.5.2.3: a value filter with no match is noTarget when nothing can be created."""
    for path in ['emails[value co "nobody"].value', 'emails[type eq "x" or type eq "y"].value']:
        error = raises(NoTarget, {"op": op, "path": path, "value": "n@x"})
        assert "emails" in error.detail


# --- replace ----------------------------------------------------------------------------------


def test_replace_sets_singular_attributes_and_null_unassigns() -> None:
    """RFC 7643 §2.5: null is unassigned."""
    result = patch(
        {"op": "replace", "path": "displayName", "value": "Barbara J."},
        {"op": "replace", "path": "active", "value": None},
    )
    assert result["displayName"] == "Barbara J."
    assert "active" not in result


def test_replace_of_a_complex_attribute_leaves_unnamed_sub_attributes() -> None:
    """RFC 7644 §3.5.2.3: sub-attributes not specified in the value are left unchanged."""
    result = patch(
        {"op": "replace", "path": "name", "value": {"givenName": "Barb", "familyName": None}}
    )
    assert result["name"] == {"givenName": "Barb"}


def test_replace_of_a_multi_valued_attribute_replaces_all_values() -> None:
    """Without a filter, the attribute and all values are replaced; [] unassigns it."""
    result = patch({"op": "replace", "path": "emails", "value": [{"value": "only@x.example"}]})
    assert result["emails"] == [{"value": "only@x.example"}]
    assert "emails" not in patch({"op": "replace", "path": "emails", "value": []})
    one = patch({"op": "replace", "path": "emails", "value": {"value": "one@x.example"}})
    assert one["emails"] == [{"value": "one@x.example"}]


def test_replace_with_a_filter_merges_into_matching_elements() -> None:
    """`emails[type eq "home"]` keeps its type; the value given is merged in."""
    result = patch({"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "h@x"}})
    assert result["emails"][1] == {"value": "h@x", "type": "home"}
    assert result["emails"][0] == BARBARA["emails"][0]


def test_replace_of_a_filtered_sub_attribute_with_null_removes_it() -> None:
    """Null unassigns the sub-attribute of the matching elements only."""
    result = patch({"op": "replace", "path": 'emails[type eq "work"].primary', "value": None})
    assert result["emails"][0] == {"value": "bjensen@example.com", "type": "work"}


# --- remove -----------------------------------------------------------------------------------


def test_remove_unassigns_attributes_and_sub_attributes() -> None:
    """RFC 7644 §3.5.2.2; a complex value left empty disappears."""
    result = patch(
        {"op": "remove", "path": "displayName"},
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "name.familyName"},
        {"op": "remove", "path": f"{ENTERPRISE}:manager"},
    )
    assert "displayName" not in result and "name" not in result
    assert result[ENTERPRISE] == {"employeeNumber": "701984"}


def test_remove_with_a_filter_removes_matching_elements_or_their_sub_attribute() -> None:
    """A filter selects elements; with a sub-attribute only that sub-attribute goes."""
    result = patch({"op": "remove", "path": 'emails[type eq "home"]'})
    assert result["emails"] == [BARBARA["emails"][0]]
    result = patch({"op": "remove", "path": 'emails[type eq "work"].primary'})
    assert result["emails"][0] == {"value": "bjensen@example.com", "type": "work"}
    assert "emails" not in patch({"op": "remove", "path": "emails[value pr]"})


def test_remove_that_matches_nothing_changes_nothing() -> None:
    """Removing what is not there succeeds (idempotent)."""
    assert patch({"op": "remove", "path": 'emails[type eq "other"]'}) == BARBARA
    assert patch({"op": "remove", "path": "nickName"}) == BARBARA
    assert patch({"op": "remove", "path": "roles"}) == BARBARA


def test_remove_with_a_value_list_removes_equal_values() -> None:
    """Entra's remove with a value: compared by `value`, case-insensitively for emails."""
    result = patch({"op": "Remove", "path": "emails", "value": [{"value": "BABS@HOME.example"}]})
    assert result["emails"] == [BARBARA["emails"][0]]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": "userName"},
        {"op": "replace", "path": "userName", "value": None},
        {"op": "replace", "value": {"userName": None}},
    ],
)
def test_unassigning_a_required_attribute_is_a_mutability_error(operation: dict[str, Any]) -> None:
    """RFC 7644 §3.5.2.2: a required attribute that would become unassigned → mutability."""
    raises(Mutability, operation)


def test_an_empty_user_name_is_invalid_value() -> None:
    """An empty string is not a userName (the same check as PUT)."""
    raises(InvalidValue, {"op": "replace", "path": "userName", "value": "  "})


# --- path-less add and replace ----------------------------------------------------------------


def test_pathless_replace_takes_plain_dotted_urn_and_filter_keys() -> None:
    """Entra (aadOptscim062020) sends one replace whose keys are paths."""
    result = patch(
        {
            "op": "replace",
            "value": {
                "displayName": "Pvlo",
                'emails[type eq "work"].value': "new@example.com",
                "name.givenName": "Gtfd",
                "name.familyName": "Pkqf",
                "externalId": "Eqpj",
                f"{ENTERPRISE}:employeeNumber": "42",
                f"{ENTERPRISE}:manager": {"value": "m-2"},
            },
        }
    )
    assert result["displayName"] == "Pvlo"
    assert result["emails"][0] == {"value": "new@example.com", "type": "work", "primary": True}
    assert result["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
    assert result["externalId"] == "Eqpj"
    assert result[ENTERPRISE] == {"employeeNumber": "42", "manager": {"value": "m-2"}}


def test_pathless_values_merge_an_extension_object_and_ignore_server_owned_keys() -> None:
    """An extension URN key merges its attributes; id, meta, schemas, groups are ignored."""
    result = patch(
        {
            "op": "add",
            "value": {
                "id": "forged",
                "meta": {"version": "W/1"},
                "schemas": [s.USER_SCHEMA],
                "groups": [{"value": "g"}],
                PLATFORM: {"setupState": "complete"},
                ENTERPRISE: {"department": "Tour Operations"},
                "urn:ietf:params:scim:schemas:extension:custom:2.0:User:x": "ignored",
                "unknownAttribute": 1,
            },
        }
    )
    assert result == {
        **BARBARA,
        ENTERPRISE: {**BARBARA[ENTERPRISE], "department": "Tour Operations"},
    }


@pytest.mark.parametrize("value", ["False", "false", False])
def test_entra_string_booleans_become_booleans(value: Any) -> None:
    """Entra sends "False": stored as false, by path or path-less."""
    assert patch({"op": "Replace", "path": "active", "value": value})["active"] is False
    assert patch({"op": "replace", "value": {"active": value}})["active"] is False


@pytest.mark.parametrize("value", ["x", ["a"], 3, True])
def test_a_pathless_value_must_be_an_object(value: Any) -> None:
    """Without a path, the value holds attributes."""
    raises(InvalidValue, {"op": "replace", "value": value})


@pytest.mark.parametrize(
    ("operation", "fragment"),
    [
        ({"op": "replace", "path": "active", "value": 3}, "active: expected a boolean"),
        ({"op": "replace", "value": {"active": "yes"}}, "active: expected a boolean"),
        ({"op": "add", "path": "emails", "value": "x@y"}, "emails: expected an array"),
        ({"op": "add", "path": "name", "value": ["x"]}, "name: expected an object"),
        ({"op": "add", "path": "name.givenName", "value": 1}, "name.givenName: expected a string"),
        ({"op": "add", "path": 'emails[type eq "work"].primary', "value": "y"}, "emails.primary"),
        (
            {"op": "add", "path": ENTERPRISE, "value": {"employeeNumber": 7}},
            f"{ENTERPRISE}:employeeNumber: expected a string",
        ),
    ],
)
def test_wrong_types_are_invalid_value_naming_the_attribute(
    operation: dict[str, Any], fragment: str
) -> None:
    """The detail names the attribute path, as PUT does."""
    assert fragment in raises(InvalidValue, operation).detail


# --- primary, extensions, atomicity -----------------------------------------------------------


def test_the_value_made_primary_by_an_operation_wins() -> None:
    """RFC 7643 §2.4: at most one primary; the one just set keeps it, the others become false."""
    result = patch({"op": "add", "path": "emails", "value": [{"value": "n@x", "primary": True}]})
    assert [e.get("primary") for e in result["emails"]] == [False, None, True]
    result = patch({"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"})
    assert [e.get("primary") for e in result["emails"]] == [False, True]
    raises(
        InvalidValue,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
        },
    )


def test_the_enterprise_extension_as_a_whole() -> None:
    """A path naming the extension URN adds, merges or removes its attributes."""
    result = patch(
        {
            "op": "replace",
            "path": ENTERPRISE,
            "value": {"costCenter": "4130", "employeeNumber": None},
        }
    )
    assert result[ENTERPRISE] == {"manager": {"value": "m-1"}, "costCenter": "4130"}
    assert ENTERPRISE not in patch({"op": "remove", "path": ENTERPRISE})
    assert ENTERPRISE not in patch({"op": "replace", "path": ENTERPRISE, "value": None})


def test_a_failing_operation_applies_nothing_and_the_input_is_never_mutated() -> None:
    """RFC 7644 §3.5.2: a PATCH is atomic."""
    before = copy.deepcopy(BARBARA)
    with pytest.raises(Mutability) as info:
        patch(
            {"op": "replace", "path": "displayName", "value": "changed"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "id", "value": "x"},
        )
    assert info.value.detail.startswith("Operations[2]: ")
    assert before == BARBARA
    patch({"op": "add", "path": "emails", "value": [{"value": "z@x", "primary": True}]})
    assert before == BARBARA


def test_operations_apply_in_order() -> None:
    """A later operation sees what an earlier one did."""
    result = patch(
        {"op": "add", "path": "emails", "value": [{"value": "n@x", "type": "other"}]},
        {"op": "replace", "path": 'emails[type eq "other"].display', "value": "N"},
        {"op": "remove", "path": 'emails[type ne "other"]'},
    )
    assert result["emails"] == [{"value": "n@x", "type": "other", "display": "N"}]


# --- what the identity providers send ---------------------------------------------------------


def test_entra_user_update_bodies() -> None:
    """Entra's documented user PATCH requests (Replace/Add with filters, manager as a bare id)."""
    attrs = {"userName": "5b50642d@testuser.com", "active": True}
    result = patch(
        {"op": "Add", "path": "displayName", "value": "Grover"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "grover@contoso.com"},
        {"op": "Add", "path": "name.givenName", "value": "Grover"},
        {"op": "Add", "path": "externalId", "value": "0a21f0f2"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updated@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "2819c223"},
        {"op": "Replace", "path": "active", "value": "False"},
        attrs=attrs,
    )
    assert result == {
        "userName": "5b50642d@testuser.com",
        "active": False,
        "displayName": "Grover",
        "emails": [{"type": "work", "value": "updated@contoso.com"}],
        "name": {"givenName": "Grover", "familyName": "updatedFamilyName"},
        "externalId": "0a21f0f2",
        ENTERPRISE: {"manager": {"value": "2819c223"}},
    }


def test_okta_user_bodies() -> None:
    """Okta deactivates and changes passwords with path-less replace."""
    result = patch(
        {"op": "replace", "value": {"active": False}},
        {"op": "replace", "value": {"password": "p4ss"}},
    )
    assert result == {**BARBARA, "active": False}


def test_group_attributes_and_okta_rename() -> None:
    """Okta renames with `{"id": ..., "displayName": ...}`; the id is ignored."""
    assert patch_group(
        {"op": "replace", "value": {"id": "abf4dd94", "displayName": "Test SCIMv2"}}
    ) == {
        "displayName": "Test SCIMv2",
        "externalId": "g-ext",
    }
    assert patch_group({"op": "Replace", "path": "externalId", "value": "e2"})["externalId"] == "e2"
    assert "externalId" not in patch_group({"op": "remove", "path": "externalId"})
    with pytest.raises(Mutability):
        patch_group({"op": "remove", "path": "displayName"})
    with pytest.raises(InvalidPath):
        patch_group({"op": "replace", "path": "userName", "value": "x"})


def test_apply_patch_leaves_group_members_to_the_plan() -> None:
    """Member operations, even malformed ones, are not applied (nor rejected) by apply_patch."""
    result = patch_group(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": 'members[display eq "x"]'},
        {"op": "replace", "value": {"members": "junk", "displayName": "New"}},
    )
    assert result == {"displayName": "New", "externalId": "g-ext"}


# --- scim2-tester: every path its patch:add/replace/remove checks send ------------------------

TESTER_VALUES: dict[str, Any] = {
    "externalId": "ext-1",
    "name": {"formatted": "f", "familyName": "F", "givenName": "G", "middleName": "M",
             "honorificPrefix": "Ms", "honorificSuffix": "III"},
    "displayName": "d",
    "nickName": "n",
    "profileUrl": "https://p.test",
    "title": "t",
    "userType": "u",
    "preferredLanguage": "fr",
    "locale": "fr-FR",
    "timezone": "Europe/Paris",
    "active": False,
    "emails": [{"value": "a@b.com", "display": "d", "type": "work", "primary": True}],
    "phoneNumbers": [{"value": "0123456789", "display": "d", "type": "mobile", "primary": False}],
    "ims": [{"value": "im", "display": "d", "type": "xmpp", "primary": True}],
    "photos": [{"value": "https://photo.test", "display": "d", "type": "photo", "primary": True}],
    "addresses": [{"formatted": "f", "streetAddress": "s", "locality": "l", "region": "r",
                   "postalCode": "p", "country": "FR", "type": "work", "primary": True}],
    "entitlements": [{"value": "e", "display": "d", "type": "t", "primary": True}],
    "roles": [{"value": "r", "display": "d", "type": "t", "primary": False}],
    "x509Certificates": [{"value": "AAEC", "display": "d", "type": "t", "primary": True}],
    ENTERPRISE: {"employeeNumber": "1", "costCenter": "c", "organization": "o", "division": "d",
                 "department": "dp", "manager": {"value": "m", "$ref": "https://x.test/Users/m"}},
    f"{ENTERPRISE}:employeeNumber": "2",
    f"{ENTERPRISE}:costCenter": "c2",
    f"{ENTERPRISE}:organization": "o2",
    f"{ENTERPRISE}:division": "d2",
    f"{ENTERPRISE}:department": "dp2",
    f"{ENTERPRISE}:manager": {"value": "m2", "$ref": "https://x.test/Users/m2"},
}  # fmt: skip


def _get(attrs: dict[str, Any], path: str) -> Any:
    if path.startswith(ENTERPRISE):
        ext = attrs.get(ENTERPRISE)
        return ext if path == ENTERPRISE else (ext or {}).get(path[len(ENTERPRISE) + 1 :])
    return attrs.get(path)


@pytest.mark.parametrize("path", [*TESTER_VALUES, "password"])
def test_scim2_tester_round_trips(path: str) -> None:
    """Add to a minimal user, replace, then remove: each path reads back what was written."""
    value = TESTER_VALUES.get(path, "s3cret")
    minimal = {"userName": "tester"}
    added = patch({"op": "add", "path": path, "value": value}, attrs=minimal)
    replaced = patch({"op": "replace", "path": path, "value": value}, attrs=minimal)
    removed = patch({"op": "remove", "path": path}, attrs=added)
    expected = None if path == "password" else value
    assert _get(added, path) == _get(replaced, path) == expected
    assert _get(removed, path) is None
    assert patch({"op": "replace", "path": "userName", "value": "other"}, attrs=minimal) == {
        "userName": "other"
    }


# --- groups: the membership plan --------------------------------------------------------------


def plan(*operations: dict[str, Any]) -> GroupPatchPlan:
    return plan_group_patch(body(*operations))


def test_member_forms_of_all_three_idps() -> None:
    """Okta, Entra and JumpCloud member operations become ordered add/remove/replace steps."""
    result = plan(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "u1", "display": "test.user@okta.local"}],
        },
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "u2"}, {"value": "u2"}]},
        {"op": "add", "value": {"members": [{"value": "u3"}]}},
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "remove", "path": 'members[value eq "u2" or value eq "u3"]'},
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u4"}]},
        {"op": "remove", "path": "members"},
        {"op": "replace", "path": "members", "value": [{"value": "u5"}, {"value": "u6"}]},
        {"op": "replace", "value": {"members": [{"value": "u7"}]}},
        {"op": "replace", "path": "members", "value": []},
    )
    assert result.members == (
        MemberOp("add", ("u1",)),
        MemberOp("add", ("u2",)),
        MemberOp("add", ("u3",)),
        MemberOp("remove", ("u1",)),
        MemberOp("remove", ("u2", "u3")),
        MemberOp("remove", ("u4",)),
        MemberOp("remove_all"),
        MemberOp("replace", ("u5", "u6")),
        MemberOp("replace", ("u7",)),
        MemberOp("remove_all"),
    )
    assert result.operations == ()
    assert result.apply(GROUP) == GROUP


def test_the_plan_keeps_attribute_operations_for_apply() -> None:
    """Okta's rename with members in the same object: displayName applied, id ignored."""
    result = plan(
        {
            "op": "replace",
            "value": {"id": "abf4dd94", "displayName": "Renamed", "members": [{"value": "u1"}]},
        },
        {"op": "Replace", "path": "externalId", "value": "e9"},
    )
    assert result.members == (MemberOp("replace", ("u1",)),)
    assert result.apply(GROUP) == {"displayName": "Renamed", "externalId": "e9"}
    assert GROUP == {"displayName": "Tour Guides", "externalId": "g-ext"}
    failing = plan(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "displayName", "value": 5},
    )
    with pytest.raises(InvalidValue, match=r"^Operations\[1\]: displayName: expected a string"):
        failing.apply(GROUP)


@pytest.mark.parametrize(
    "path",
    [
        'members[display eq "x"]',
        'members[value ne "x"]',
        'members[value eq "x" and type eq "User"]',
        'members[value eq ""]',
        "members[value eq 5]",
        "members[value pr]",
        'members[not (value eq "x")]',
    ],
)
def test_member_filters_other_than_value_eq_or_are_invalid_path(path: str) -> None:
    """Only `value eq "<id>"` terms joined by `or` select members without reading the list."""
    with pytest.raises(InvalidPath, match="members"):
        plan({"op": "remove", "path": path})


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": 'members[value eq "u1"].display', "value": "x"},
        {"op": "remove", "path": 'members[value eq "u1"].display'},
        {"op": "add", "path": "members.value", "value": "x"},
        {"op": "replace", "path": 'members[value eq "u1"]', "value": {"value": "u2"}},
    ],
)
def test_member_sub_attributes_are_not_modifiable(operation: dict[str, Any]) -> None:
    """RFC 7644 §3.5.2: members' value/$ref/type are immutable and display readOnly."""
    with pytest.raises(Mutability):
        plan(operation)


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ({"op": "add", "path": "members", "value": [{"display": "no id"}]}, InvalidValue),
        ({"op": "add", "path": "members", "value": ["u1"]}, InvalidValue),
        ({"op": "add", "path": "members", "value": [{"value": "  "}]}, InvalidValue),
        ({"op": "add", "path": "members", "value": [{"value": 7}]}, InvalidValue),
        ({"op": "add", "path": "members"}, InvalidValue),
        ({"op": "remove"}, NoTarget),
        ({"op": "replace", "value": "members"}, InvalidValue),
        ({"op": "add", "path": "members.nope", "value": "x"}, InvalidPath),
        ({"op": "copy", "path": "members"}, InvalidSyntax),
    ],
)
def test_malformed_member_operations(operation: dict[str, Any], error: type[ScimError]) -> None:
    """Member ids must be non-empty strings in objects; the envelope rules apply as for users."""
    with pytest.raises(error):
        plan(operation)


def test_member_paths_are_case_insensitive() -> None:
    """`Members`, `MEMBERS[VALUE EQ "x"]` and the URN-qualified name all name members."""
    result = plan(
        {"op": "add", "path": "Members", "value": {"value": "u1"}},
        {"op": "remove", "path": 'MEMBERS[VALUE EQ "u1"]'},
        {"op": "remove", "path": f"{s.GROUP_SCHEMA}:members"},
    )
    assert result.members == (
        MemberOp("add", ("u1",)),
        MemberOp("remove", ("u1",)),
        MemberOp("remove_all"),
    )


# --- whatever the input: a dict or a ScimError ------------------------------------------------

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_known = [
    "userName", "name", "name.givenName", "NAME.familyname", "emails", "emails.value",
    'emails[type eq "work"]', 'emails[type eq "work"].value', "emails[primary eq true].primary",
    'emails[value co "x" or not (type pr)].display', "addresses[type eq \"home\"].country",
    "active", "password", "id", "meta.created", "groups", "schemas", ENTERPRISE,
    f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value", PLATFORM, f"{PLATFORM}:setupState",
    "members", 'members[value eq "u1"]', 'members[value eq "u1" or value eq "u2"].display',
    "displayName", "externalId", "emails[", "x[y eq 1]]", "urn:a:b", "emails[type eq \"a\"].nope",
]  # fmt: skip
_paths = st.none() | st.sampled_from(_known) | st.text(max_size=24)
_keys = st.sampled_from(_known) | st.text(max_size=8)
_values = (
    _json
    | st.dictionaries(_keys, _json, max_size=4)
    | st.lists(
        st.fixed_dictionaries({"value": _json}, optional={"type": _json, "primary": _json}),
        max_size=3,
    )
)
_ops = st.sampled_from(["add", "Add", "remove", "REPLACE", "replace", "move", ""]) | _json
_operation = st.fixed_dictionaries({"op": _ops}, optional={"path": _paths, "value": _values})
_bodies = (
    st.fixed_dictionaries(
        {"Operations": st.lists(_operation, min_size=1, max_size=4) | _json},
        optional={"schemas": st.just([PATCH_OP]) | _json},
    )
    | _json
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_bodies)
def test_any_body_gives_a_dict_or_a_scim_error(raw: Any) -> None:
    """No input makes the engine raise anything but a ScimError, mutate its input or store junk."""
    for rtype, attrs in ((s.USER_TYPE, BARBARA), (s.GROUP_TYPE, GROUP)):
        before = copy.deepcopy(attrs)
        try:
            result = apply_patch(rtype, attrs, raw)
        except ScimError:
            pass
        else:
            assert normalize_resource(rtype, result) == result  # valid stored attrs
            check_required(rtype, result)
        assert attrs == before
    with contextlib.suppress(ScimError):
        planned = plan_group_patch(raw)
        assert all(isinstance(op.ids, tuple) for op in planned.members)
        assert planned.apply(GROUP).get("displayName")
