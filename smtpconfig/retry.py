"""Pure back-off arithmetic for temporary delivery failures.

Read from the ``MAILADMIN`` settings (seconds), with these defaults:

- ``RETRY_FIRST_DELAY`` = 60: the wait after the first failed attempt;
- ``RETRY_MAX_DELAY`` = 3600: the wait doubles after each attempt, up to one hour;
- ``RETRY_MAX_AGE`` = 259200 (3 days): a message still undelivered this long after it was
  recorded fails with the last reply the server gave.

Functions of plain values: the caller passes ``now``, so they are tested without a clock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from smtpconfig.conf import mailadmin_setting


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: timedelta
    max_delay: timedelta
    max_age: timedelta


def retry_policy() -> RetryPolicy:
    """The policy from the current settings (read at call time, so ``override_settings`` works)."""
    return RetryPolicy(
        first_delay=timedelta(seconds=mailadmin_setting("RETRY_FIRST_DELAY")),
        max_delay=timedelta(seconds=mailadmin_setting("RETRY_MAX_DELAY")),
        max_age=timedelta(seconds=mailadmin_setting("RETRY_MAX_AGE")),
    )


def retry_delay(*, attempts: int, policy: RetryPolicy) -> timedelta:
    """The wait after ``attempts`` failed attempts: first delay, doubled each time, capped."""
    if attempts < 1:
        return timedelta(0)
    # Cap the exponent: beyond 2**40 every realistic cap is already reached.
    factor = 2 ** min(attempts - 1, 40)
    return min(policy.first_delay * factor, policy.max_delay)


def retry_next_attempt(
    *, attempts: int, created_at: datetime, now: datetime, policy: RetryPolicy
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or ``None`` to give up.

    The last try happens at the maximum age itself, so no message waits past its deadline
    and none gives up before it.
    """
    deadline = created_at + policy.max_age
    if now >= deadline:
        return None
    return min(now + retry_delay(attempts=attempts, policy=policy), deadline)
