"""The retry policy: after a failed delivery, when to try again or whether to give up.

Pure (no I/O, no clock of its own): the publisher's lanes and the webhook endpoints both ask it,
and tests/unit/test_retry.py checks it without a database. The schedule follows Standard
Webhooks' convention (growing delays, ±20% jitter, the receiver's `Retry-After` honoured, capped
at `MAX_RETRY_AFTER`); an event is dead-lettered when the receiver refused it for good (HTTP
410, a forbidden address), when its attempts are used up, or when it is older than the maximum
age.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import msgspec

from scim_service.config import Settings
from scim_service.events.sinks.base import MAX_RETRY_AFTER, Outcome

__all__ = ["Decision", "RetryPolicy", "retry_delay"]

Jitter = Callable[[float, float], float]


def retry_delay(
    schedule: Sequence[float],
    attempts: int,
    retry_after: float | None,
    jitter: Jitter = random.uniform,
) -> float:
    """Seconds before the next attempt after `attempts` failed ones (1 = the first failed):
    the schedule's entry (its last one past its end), ±20% jitter, and never sooner than the
    receiver's Retry-After (itself capped at a day)."""
    base = schedule[min(max(attempts - 1, 0), len(schedule) - 1)]
    delay = base * jitter(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


class Decision(msgspec.Struct, frozen=True):
    """What to do with a failed delivery: dead-letter it, or try again after `delay` seconds."""

    dead: bool
    delay: float


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """SCIM_EVENTS_RETRY_SCHEDULE, SCIM_EVENTS_MAX_ATTEMPTS and SCIM_EVENTS_MAX_AGE_HOURS."""

    schedule: tuple[float, ...]
    max_attempts: int
    max_age: timedelta

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            schedule=tuple(settings.events_retry_schedule),
            max_attempts=settings.events_max_attempts,
            max_age=timedelta(hours=settings.events_max_age_hours),
        )

    def decide(
        self,
        outcome: Outcome,
        attempts: int,
        created_at: datetime | None,
        now: datetime,
        jitter: Jitter = random.uniform,
    ) -> Decision:
        """After `attempts` attempts (this failed one included) of an event created at
        `created_at` (None: unknown, never too old)."""
        too_old = created_at is not None and now - created_at > self.max_age
        if outcome.permanent or attempts >= self.max_attempts or too_old:
            return Decision(True, 0.0)
        return Decision(False, retry_delay(self.schedule, attempts, outcome.retry_after, jitter))
