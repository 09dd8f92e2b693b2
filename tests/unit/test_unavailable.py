"""Which driver errors are a 503 with Retry-After (an IdP retries those, never a 500)."""

from __future__ import annotations

import asyncpg
import pytest

from scim_service import errors
from scim_service.store.db import as_unavailable


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.ReadOnlySQLTransactionError("read-only"),  # 25006: a failover in progress
        asyncpg.TooManyConnectionsError("too many"),  # class 53
        asyncpg.DiskFullError("disk full"),
        asyncpg.AdminShutdownError("shutting down"),  # 57P01
        asyncpg.CannotConnectNowError("starting"),  # 57P03
        asyncpg.InvalidPasswordError("password authentication failed"),  # 28P01: a rotation
        asyncpg.InvalidAuthorizationSpecificationError("no such role"),  # 28000
        asyncpg.LockNotAvailableError("lock timeout"),
        asyncpg.QueryCanceledError("statement timeout"),
        ConnectionRefusedError(),
    ],
)
def test_cannot_work_now_is_a_503_with_retry_after(exc: BaseException) -> None:
    found = as_unavailable(exc)
    assert isinstance(found, errors.Unavailable)
    assert found.retry_after is not None and found.retry_after > 0
    assert "asyncpg" not in str(found) and "password" not in str(found)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate"),
        asyncpg.UndefinedColumnError("no such column"),
        ValueError("x"),
    ],
)
def test_a_bug_is_not_disguised_as_an_outage(exc: BaseException) -> None:
    assert as_unavailable(exc) is None
