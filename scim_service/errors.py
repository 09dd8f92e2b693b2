"""The one error hierarchy of the service.

Every failure a client can cause is one of these classes: one per RFC 7644 §3.12 scimType
(400/409) plus one per HTTP status the protocol uses without a scimType. The storage layer
raises them (after translating driver errors), the SCIM engines raise them, the CLI prints
them, and one HTTP middleware renders them as `application/scim+json` bodies (RFC 7644 §3.12:
`status` is a string). Nothing here knows HTTP or the database.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from scim_service.redact import mask_text

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base class: an HTTP status, an optional scimType and a human detail."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "The request could not be processed"
    retry_after: float | None = None
    """Seconds a client should wait before retrying (rendered as `Retry-After`), or None."""
    owner_org: uuid.UUID | None = None
    """A genuine credential refused (revoked, expired, SCIM off): the organization it belongs
    to, so the activity log files the attempt there (never rendered)."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def to_body(self) -> dict[str, Any]:
        """The RFC 7644 §3.12 error response body."""
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = mask_text(self.detail)  # a detail may echo input: never a secret
        return body


# --- 400 with a scimType (RFC 7644 §3.12, table 9) ---------------------------------------------


class InvalidFilter(ScimError):
    scim_type = "invalidFilter"
    default_detail = "The specified filter syntax was invalid or the comparison is not supported"


class TooMany(ScimError):
    scim_type = "tooMany"
    default_detail = (
        "The specified filter yields more results than the server is willing to process"
    )


class Mutability(ScimError):
    scim_type = "mutability"
    default_detail = "The attempted modification is not compatible with the attribute's mutability"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"
    default_detail = "The request body message structure was invalid"


class InvalidPath(ScimError):
    scim_type = "invalidPath"
    default_detail = "The path attribute was invalid or malformed"


class NoTarget(ScimError):
    scim_type = "noTarget"
    default_detail = "The specified path did not yield an attribute that could be operated on"


class InvalidValue(ScimError):
    scim_type = "invalidValue"
    default_detail = "A required value was missing or the value was not compatible"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"
    default_detail = "The specified SCIM protocol version is not supported"


class Sensitive(ScimError):
    scim_type = "sensitive"
    default_detail = "The request cannot be completed: sensitive information in the request URI"


class BadRequest(ScimError):
    """400 without a scimType (for instance an unsupported media type in an admin request)."""


# --- statuses without a scimType ------------------------------------------------------------


class Unauthorized(ScimError):
    status = 401
    default_detail = "Authentication required: send 'Authorization: Bearer <token>'"

    def __init__(self, detail: str | None = None, *, reason: str = "missing") -> None:
        super().__init__(detail)
        self.reason = reason  # for metrics: missing, malformed, invalid, revoked, expired, admin


class Forbidden(ScimError):
    status = 403
    default_detail = "The operation is not permitted"


class NotFound(ScimError):
    status = 404
    default_detail = "Resource not found"


class MethodNotAllowed(ScimError):
    status = 405
    default_detail = "The HTTP method is not supported on this endpoint"

    def __init__(self, detail: str | None = None, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.allowed = allowed


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"
    default_detail = "One or more attribute values are already in use"


class Conflict(ScimError):
    status = 409
    default_detail = "The request conflicts with the current state of the resource"


class Gone(ScimError):
    """410: what was asked for no longer exists here (an events cursor older than retention);
    `oldest` names where the client can start again, also in the body as `oldest_cursor`."""

    status = 410
    default_detail = "The requested position is no longer available"
    oldest: str | None = None

    def __init__(self, detail: str | None = None, *, oldest: str | None = None) -> None:
        super().__init__(detail)
        self.oldest = oldest

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if self.oldest is not None:
            body["oldest_cursor"] = self.oldest
        return body


class PreconditionFailed(ScimError):
    status = 412
    default_detail = "The resource has changed (ETag mismatch)"


class PayloadTooLarge(ScimError):
    status = 413
    default_detail = "The request body is too large"


class UnsupportedMediaType(ScimError):
    status = 415
    default_detail = "Send 'Content-Type: application/scim+json' (or application/json)"


class TooManyRequests(ScimError):
    """429: this organization (or token) is over its share; retry after `retry_after`."""

    status = 429
    default_detail = "Too many requests; retry later"

    def __init__(self, detail: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# Unavailable.reason of a lock another transaction held past the lock timeout: contention on one
# resource, logged and counted apart from the database being away (http/middleware.py).
LOCK_TIMEOUT = "lock_timeout"


class Unavailable(ScimError):
    """503: the database (or another dependency) cannot serve now. IdPs retry on a 503 that
    carries `Retry-After` (RFC 9110 §15.6.4), so it always does."""

    status = 503
    default_detail = "The service is temporarily unavailable; retry later"

    def __init__(
        self, detail: str | None = None, *, retry_after: float = 2.0, reason: str = "unavailable"
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        # Why, for the log and the metrics (never sent): e.g. "lock_timeout" is contention on
        # one resource, not the database being away (store.db.as_unavailable sets it).
        self.reason = reason


class ClientClosed(ScimError):
    """The client hung up before its request was read in full (nginx's 499 "Client Closed
    Request"). Never sent (nobody is listening): it is what the log line, the metrics and the
    activity log record instead of the database outage a reset socket would otherwise look like."""

    status = 499
    default_detail = "The client closed the connection before its request was complete"


class InternalError(ScimError):
    """A fixed, uninformative 500; the traceback goes to the log, never into the body."""

    status = 500
    default_detail = "Internal server error"
