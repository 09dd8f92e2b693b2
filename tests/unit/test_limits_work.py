"""The PATCH work estimate: operations x values of the targeted attribute x filter terms."""

from __future__ import annotations

import pytest

from scim_service.errors import TooMany
from scim_service.scim.limits import MAX_PATCH_WORK, offload_patch, patch_work

ATTRS = {
    "userName": "u",
    "emails": [{"value": f"e{i}@x.com"} for i in range(100)],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "x"},
}


def test_work_counts_the_targeted_attribute_only() -> None:
    assert patch_work(ATTRS, [("title", "x")]) == 1
    assert patch_work(ATTRS, [('emails[value eq "e1@x.com"].display', "d")]) == 100
    assert patch_work(ATTRS, [('EMAILS[type eq "work"]', {"display": "d"})]) == 100
    assert patch_work(ATTRS, [("urn:ietf:params:scim:schemas:core:2.0:User:emails", [])]) == 100


def test_filter_terms_and_sent_values_multiply() -> None:
    two_terms = 'emails[value eq "a" or value eq "b"].display'
    assert patch_work(ATTRS, [(two_terms, "d")]) == 200
    assert patch_work(ATTRS, [("emails", [{"value": "n"}] * 10)]) == 110


def test_pathless_values_count_per_key() -> None:
    assert patch_work(ATTRS, [(None, {"title": "x", "emails": [{"value": "n"}]})]) == 1 + 101


def test_over_the_limit_is_too_many() -> None:
    ops = [('emails[value eq "e1@x.com"].display', "d")] * (MAX_PATCH_WORK // 100 + 1)
    with pytest.raises(TooMany, match=str(MAX_PATCH_WORK)):
        patch_work(ATTRS, ops)


def test_only_big_patches_go_to_a_thread() -> None:
    assert not offload_patch(5, 5)
    assert offload_patch(200, 20_000)
