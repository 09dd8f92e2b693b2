"""django-scim2's user filter parser, with `emails.value` mapped to the user's email column
(its default map has userName, name.givenName/familyName and active only): one line of
configuration, so the peer answers the benchmark's `emails.value sw` filter too."""

from django_scim.filters import UserFilterQuery as DefaultUserFilterQuery


class UserFilterQuery(DefaultUserFilterQuery):
    attr_map = {
        **DefaultUserFilterQuery.attr_map,
        ("emails", "value", None): "email",
    }
