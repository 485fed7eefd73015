"""Send-limit arithmetic: pure functions of plain values, checked exhaustively."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpconfig.limits import (
    limit_bucket_for,
    limit_bucket_size,
    limit_counts,
    limit_next_fit,
    limit_period_length,
    limit_window_start,
)

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_bucket_sizes_keep_a_check_under_61_rows():
    assert limit_bucket_size("hour") == timedelta(minutes=1)
    assert limit_bucket_size("day") == timedelta(minutes=24)
    assert limit_bucket_size("week") == timedelta(hours=2, minutes=48)
    assert limit_bucket_size("none") == timedelta(minutes=1)
    assert limit_period_length("none") is None


def test_bucket_starts_at_its_boundary_but_never_before_a_reset():
    at = START + timedelta(minutes=7, seconds=42)
    assert limit_bucket_for(at=at, period="hour", reset_at=None) == START + timedelta(minutes=7)
    reset = START + timedelta(minutes=7, seconds=30)
    assert limit_bucket_for(at=at, period="hour", reset_at=reset) == reset


def test_window_starts_one_period_ago_or_at_the_reset():
    now = START + timedelta(hours=5)
    assert limit_window_start(now=now, period="day", reset_at=None) == now - timedelta(days=1)
    reset = now - timedelta(hours=2)
    assert limit_window_start(now=now, period="day", reset_at=reset) == reset


def test_counts_drop_buckets_outside_the_window_and_before_the_reset():
    buckets = [
        (START, 3),
        (START + timedelta(minutes=30), 2),
        (START + timedelta(minutes=50), 1),
    ]
    now = START + timedelta(minutes=61, seconds=30)
    # START's bucket ended at 9:01, now - 1h is 9:01:30: it no longer counts.
    assert limit_counts(buckets=buckets, now=now, period="hour", reset_at=None) == buckets[1:]
    reset = START + timedelta(minutes=40)
    assert limit_counts(buckets=buckets, now=now, period="hour", reset_at=reset) == buckets[2:]


def test_next_fit_is_now_when_there_is_room():
    now = START + timedelta(minutes=10)
    counted = [(START, 5)]
    assert (
        limit_next_fit(counted=counted, in_flight=0, needed=5, limit=10, now=now, period="hour")
        == now
    )


def test_next_fit_waits_for_enough_old_buckets_to_leave():
    now = START + timedelta(minutes=40)
    counted = [(START, 4), (START + timedelta(minutes=20), 6)]
    one = limit_next_fit(counted=counted, in_flight=0, needed=1, limit=10, now=now, period="hour")
    assert one == START + timedelta(hours=1, minutes=1)
    five = limit_next_fit(counted=counted, in_flight=0, needed=5, limit=10, now=now, period="hour")
    assert five == START + timedelta(hours=1, minutes=21)


def test_next_fit_counts_in_flight_recipients_as_sent_now():
    now = START + timedelta(minutes=40)
    when = limit_next_fit(counted=[], in_flight=10, needed=1, limit=10, now=now, period="hour")
    assert when == START + timedelta(hours=1, minutes=41)


def test_a_message_larger_than_the_limit_never_fits():
    assert (
        limit_next_fit(counted=[], in_flight=0, needed=11, limit=10, now=START, period="day")
        is None
    )


@settings(max_examples=300, deadline=None)
@given(
    period=st.sampled_from(["hour", "day", "week"]),
    limit=st.integers(min_value=1, max_value=30),
    arrivals=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3 * 7 * 24 * 3600), st.integers(1, 5)),
        max_size=60,
    ),
    reset_after=st.one_of(st.none(), st.integers(min_value=0, max_value=3 * 7 * 24 * 3600)),
)
def test_a_sender_that_waits_for_next_fit_never_exceeds_the_limit(
    period, limit, arrivals, reset_after
):
    """Simulate a queue: each message is sent at the time the arithmetic allows it, and the
    exact sliding window (since the reset) never holds more than the limit."""
    length = limit_period_length(period)
    reset_at = START + timedelta(seconds=reset_after) if reset_after is not None else None
    buckets: dict[datetime, int] = {}
    sent: list[tuple[datetime, int]] = []
    for offset, needed in sorted(arrivals):
        if needed > limit:
            continue
        now = START + timedelta(seconds=offset)
        if sent and now < sent[-1][0]:
            now = sent[-1][0]
        active_reset = reset_at if reset_at is not None and reset_at <= now else None
        counted = limit_counts(
            buckets=list(buckets.items()), now=now, period=period, reset_at=active_reset
        )
        when = limit_next_fit(
            counted=counted, in_flight=0, needed=needed, limit=limit, now=now, period=period
        )
        assert when is not None and when >= now
        if reset_at is not None and now < reset_at <= when:
            # The reset happens while this message waits: it goes at the reset.
            when = reset_at
        active_reset = reset_at if reset_at is not None and reset_at <= when else None
        counted = limit_counts(
            buckets=list(buckets.items()), now=when, period=period, reset_at=active_reset
        )
        assert sum(count for _bucket, count in counted) + needed <= limit
        bucket = limit_bucket_for(at=when, period=period, reset_at=active_reset)
        buckets[bucket] = buckets.get(bucket, 0) + needed
        sent.append((when, needed))
        window_start = when - length
        if active_reset is not None:
            window_start = max(window_start, active_reset)
        exact = sum(count for at, count in sent if at > window_start)
        assert exact <= limit


@pytest.mark.parametrize("period", ["hour", "day", "week"])
def test_capacity_comes_back_within_one_bucket_of_the_exact_time(period):
    length = limit_period_length(period)
    sent_at = START + timedelta(seconds=1)
    bucket = limit_bucket_for(at=sent_at, period=period, reset_at=None)
    when = limit_next_fit(
        counted=[(bucket, 1)], in_flight=0, needed=1, limit=1, now=sent_at, period=period
    )
    assert sent_at + length <= when <= sent_at + length + limit_bucket_size(period)
