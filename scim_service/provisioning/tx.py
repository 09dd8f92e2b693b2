"""Write transactions, retried when PostgreSQL resolves a deadlock by aborting one of them.

Writers lock rows in a consistent order (a group, then the users its foreign keys touch; a
user's groups, then the user), but a user deleted while one of its groups gains it as a member
can still cross; PostgreSQL then aborts one transaction (SQLSTATE 40P01), and retrying it from
the start is correct because nothing it did was committed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from scim_service import errors
from scim_service.logs import get_logger

T = TypeVar("T")
ATTEMPTS = 5

log = get_logger("scim_service.tx")


async def write(conn: asyncpg.Connection, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` in a transaction on `conn`; retry it on deadlock or serialization failure."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with conn.transaction():
                return await work()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            if attempt == ATTEMPTS:
                raise errors.Unavailable(
                    "The resource is busy; retry the request", reason="deadlock"
                ) from exc
            log.info("transaction_retry", attempt=attempt, sqlstate=exc.sqlstate)
            await asyncio.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311 - jitter
    raise AssertionError("unreachable")
