"""Back-off arithmetic: pure, with the clock passed in."""

from datetime import UTC, datetime, timedelta

from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from smtpconfig.retry import RetryPolicy, retry_delay, retry_next_attempt, retry_policy

POLICY = RetryPolicy(
    first_delay=timedelta(seconds=60),
    max_delay=timedelta(hours=1),
    max_age=timedelta(days=3),
)
CREATED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_delay_doubles_from_the_first_delay_up_to_the_cap():
    delays = [retry_delay(attempts=n, policy=POLICY).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(attempts=10_000, policy=POLICY) == timedelta(hours=1)


def test_next_attempt_never_passes_the_maximum_age():
    now = CREATED + timedelta(days=3) - timedelta(minutes=5)
    assert retry_next_attempt(attempts=20, created_at=CREATED, now=now, policy=POLICY) == (
        CREATED + timedelta(days=3)
    )


def test_after_the_maximum_age_it_gives_up():
    now = CREATED + timedelta(days=3)
    assert retry_next_attempt(attempts=1, created_at=CREATED, now=now, policy=POLICY) is None


def test_policy_reads_the_settings_at_call_time():
    with override_settings(
        MAILADMIN={"RETRY_FIRST_DELAY": 5, "RETRY_MAX_DELAY": 50, "RETRY_MAX_AGE": 500}
    ):
        assert retry_policy() == RetryPolicy(
            timedelta(seconds=5), timedelta(seconds=50), timedelta(seconds=500)
        )
    with override_settings(MAILADMIN={}):
        # The documented defaults.
        assert retry_policy() == POLICY


@given(attempts=st.integers(min_value=1, max_value=200), age=st.integers(0, 4 * 24 * 3600))
def test_next_attempt_is_after_now_and_within_the_age(attempts, age):
    now = CREATED + timedelta(seconds=age)
    when = retry_next_attempt(attempts=attempts, created_at=CREATED, now=now, policy=POLICY)
    if now >= CREATED + POLICY.max_age:
        assert when is None
    else:
        assert now < when <= CREATED + POLICY.max_age
        assert when - now <= POLICY.max_delay
