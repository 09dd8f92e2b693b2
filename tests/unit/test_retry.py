"""The retry policy on its own (events/retry.py): no database, no clock, no randomness unless
asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scim_service.config import Settings
from scim_service.events.retry import Decision, RetryPolicy, retry_delay
from scim_service.events.sinks.base import MAX_RETRY_AFTER, Outcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAILED = Outcome(ok=False, error="HTTP 503")
POLICY = RetryPolicy(schedule=(5.0, 30.0, 120.0), max_attempts=4, max_age=timedelta(hours=1))


def low(a: float, b: float) -> float:
    return a


def high(a: float, b: float) -> float:
    return b


def test_delays_follow_the_schedule_with_jitter_and_stay_on_its_last_entry() -> None:
    """Attempt n waits the schedule's n-th entry ±20%; past the end, its last entry."""
    schedule = (5.0, 30.0, 120.0)
    assert [retry_delay(schedule, n, None, low) for n in (1, 2, 3, 9)] == [4.0, 24.0, 96.0, 96.0]
    assert [retry_delay(schedule, n, None, high) for n in (1, 2, 3)] == [6.0, 36.0, 144.0]
    for n in range(1, 6):
        base = schedule[min(n - 1, 2)]
        assert 0.8 * base <= retry_delay(schedule, n, None) <= 1.2 * base


def test_retry_after_is_honoured_but_capped_at_a_day() -> None:
    """A receiver's Retry-After makes the wait longer, never shorter, and at most a day."""
    assert retry_delay((5.0,), 1, 60.0, high) == 60.0
    assert retry_delay((5.0,), 1, 1.0, high) == 6.0
    assert retry_delay((5.0,), 1, 10 * MAX_RETRY_AFTER, low) == MAX_RETRY_AFTER


def test_decisions_dead_letter_permanent_refusals_used_up_attempts_and_old_events() -> None:
    """A retry while attempts and age remain; a dead letter for HTTP 410, the last attempt, or
    an event older than the maximum age (unknown age: never too old)."""
    fresh = NOW - timedelta(minutes=5)
    assert POLICY.decide(FAILED, 1, fresh, NOW, low) == Decision(False, 4.0)
    assert POLICY.decide(FAILED, 3, None, NOW, low) == Decision(False, 96.0)
    gone = Outcome(ok=False, error="HTTP 410", permanent=True)
    assert POLICY.decide(gone, 1, fresh, NOW) == Decision(True, 0.0)
    assert POLICY.decide(FAILED, 4, fresh, NOW) == Decision(True, 0.0)
    assert POLICY.decide(FAILED, 1, NOW - timedelta(hours=2), NOW) == Decision(True, 0.0)
    later = Outcome(ok=False, error="HTTP 429", retry_after=600.0)
    assert POLICY.decide(later, 1, fresh, NOW, low) == Decision(False, 600.0)


def test_policy_of_the_settings() -> None:
    """The policy reads SCIM_EVENTS_RETRY_SCHEDULE, _MAX_ATTEMPTS and _MAX_AGE_HOURS."""
    policy = RetryPolicy.of(
        Settings(events_retry_schedule=(1.0, 2.0), events_max_attempts=3, events_max_age_hours=2)
    )
    assert policy == RetryPolicy(schedule=(1.0, 2.0), max_attempts=3, max_age=timedelta(hours=2))
