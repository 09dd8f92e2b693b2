"""One static bearer token, checked the way the scim2-server peer checks its own (a set
lookup): an authenticated request gets a client object, anything else Django's anonymous user,
which django-scim2's SCIMAuthCheckMiddleware answers with 401."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser


class _Client:
    is_authenticated = True
    is_anonymous = False


CLIENT = _Client()
ANONYMOUS = AnonymousUser()


class BearerTokenMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.tokens = {settings.BENCH_TOKEN} if settings.BENCH_TOKEN else set()

    def __call__(self, request: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and token in self.tokens
        request.user = CLIENT if ok else ANONYMOUS
        return self.get_response(request)
