"""A fixed-window counter in Django's cache, for actions a user may repeat only so often."""

from django.core.cache import cache

from smtpconfig.conf import mailadmin_setting


def rate_limit_hit(*, key: str, limit: int, period: int) -> bool:
    """Count one more use of ``key``; True when it goes over ``limit`` within ``period`` s.

    The window starts with the first use. Over the limit, the caller refuses the action;
    the refused tries count too, so hammering does not shorten the wait.
    """
    cache_key = f"ratelimit:{key}"
    if cache.add(cache_key, 1, timeout=period):
        return limit < 1
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The window expired between add() and incr(): this use opens a new one.
        cache.add(cache_key, 1, timeout=period)
        count = 1
    return count > limit


def test_action_rate_limited(*, user, action: str) -> bool:
    """True when ``user`` used "Test connection"/"Send test mail" too often just now."""
    return rate_limit_hit(
        key=f"test-action:{action}:{user.pk}",
        limit=mailadmin_setting("TEST_ACTION_LIMIT"),
        period=mailadmin_setting("TEST_ACTION_PERIOD"),
    )
