"""Send limits: accepted recipients over a rolling window since the last manual reset.

Accepted recipients are counted in ``SendCounter`` buckets. A bucket spans a sixtieth of the
server's period (one minute for an hourly limit, 24 minutes for a daily one, 2 h 48 for a
weekly one), so a check sums at most 61 rows whatever the history, and a recipient stops
counting at most one bucket later than it exactly would: the limit is never exceeded and
capacity comes back within 1/60 of the period of the exact time. A bucket never starts
before the last reset, so "Reset limit" starts an empty window at once.

A server without a limit counts the same way as an hourly one (the dashboard shows its last
hour). Changing a server's period keeps the buckets already written: for one window a
bucket of the old size may be counted by its start only, and a longer period sums the
smaller buckets it inherited. Reset the limit after changing the period to start clean.

The pure functions take ``now`` and plain values; ``limit_usage``, ``limit_in_flight``,
``server_usage`` and ``counter_add`` are the ones that touch the database.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import F
from django.utils import timezone

from smtpconfig.models import OutgoingMessage, Recipient, SendCounter, SmtpServer

# The recipient rows a server is still to be given: what a message costs against a limit.
ENVELOPE_STATUSES = (
    Recipient.Status.PENDING,
    Recipient.Status.DEFERRED,
    Recipient.Status.REDIRECTED,
)

PERIODS = {
    SmtpServer.LimitPeriod.HOUR: timedelta(hours=1),
    SmtpServer.LimitPeriod.DAY: timedelta(days=1),
    SmtpServer.LimitPeriod.WEEK: timedelta(weeks=1),
}
BUCKETS_PER_PERIOD = 60
# Servers without a limit still count (the dashboard shows their last hour), in buckets of
# an hourly limit.
UNLIMITED_WINDOW = timedelta(hours=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def limit_period_length(period: str) -> timedelta | None:
    """The window of a limit period, ``None`` for no limit."""
    return PERIODS.get(period)


def limit_bucket_size(period: str) -> timedelta:
    length = limit_period_length(period)
    return (length or UNLIMITED_WINDOW) / BUCKETS_PER_PERIOD


def limit_bucket_for(*, at: datetime, period: str, reset_at: datetime | None) -> datetime:
    """The bucket a recipient accepted at ``at`` is counted in (never before the reset)."""
    size = limit_bucket_size(period)
    start = at - (at - _EPOCH) % size
    if reset_at is not None and reset_at > start:
        return reset_at
    return start


def limit_window_start(*, now: datetime, period: str, reset_at: datetime | None) -> datetime:
    """Where the current window starts: one period ago, or the last reset if later."""
    length = limit_period_length(period) or UNLIMITED_WINDOW
    start = now - length
    if reset_at is not None and reset_at > start:
        return reset_at
    return start


def limit_counts_from(*, now: datetime, period: str) -> datetime:
    """Buckets starting strictly after this time count at ``now`` (reset aside).

    A bucket counts while any part of it lies in the window, hence one bucket's size more.
    """
    length = limit_period_length(period) or UNLIMITED_WINDOW
    return now - length - limit_bucket_size(period)


def limit_counts(
    *, buckets: list[tuple[datetime, int]], now: datetime, period: str, reset_at: datetime | None
) -> list[tuple[datetime, int]]:
    """The ``(bucket, count)`` pairs that count at ``now``, oldest first."""
    after = limit_counts_from(now=now, period=period)
    return sorted(
        (bucket, count)
        for bucket, count in buckets
        if bucket > after and (reset_at is None or bucket >= reset_at)
    )


def limit_next_fit(
    *,
    counted: list[tuple[datetime, int]],
    in_flight: int,
    needed: int,
    limit: int,
    now: datetime,
    period: str,
) -> datetime | None:
    """The earliest time ``needed`` more recipients fit, or ``None`` if they never can.

    ``counted`` are the buckets counting now (oldest first); ``in_flight`` recipients are
    being sent and are assumed accepted now, so they free up last.
    """
    if needed > limit:
        return None
    used = sum(count for _bucket, count in counted) + in_flight
    if used + needed <= limit:
        return now
    length = limit_period_length(period)
    size = limit_bucket_size(period)
    for bucket, count in counted:
        used -= count
        if used + needed <= limit:
            return bucket + length + size
    # Only in-flight recipients are left: they free up one full window after now.
    return limit_bucket_for(at=now, period=period, reset_at=None) + length + size


def envelope_address(row: Recipient) -> str:
    """The address a recipient row is delivered to (the test address when redirected)."""
    if row.status == Recipient.Status.REDIRECTED:
        return row.delivered_to or row.email
    return row.email


def envelope_addresses(rows: list[Recipient]) -> list[str]:
    """The distinct addresses (ignoring case) still to deliver among ``rows``, in order."""
    addresses: dict[str, str] = {}
    for row in rows:
        if row.status in ENVELOPE_STATUSES:
            address = envelope_address(row)
            addresses.setdefault(address.lower(), address)
    return list(addresses.values())


@dataclass(frozen=True)
class Usage:
    """A server's use of its limit at one moment (``limit`` is ``None`` without a limit)."""

    used: int
    limit: int | None
    window_start: datetime
    next_fit_at: datetime | None
    counted: list[tuple[datetime, int]]
    in_flight: int

    def fits(self, needed: int) -> bool:
        return self.limit is None or self.used + needed <= self.limit

    def next_fit_for(self, needed: int, *, now: datetime, period: str) -> datetime | None:
        if self.limit is None:
            return now
        return limit_next_fit(
            counted=self.counted,
            in_flight=self.in_flight,
            needed=needed,
            limit=self.limit,
            now=now,
            period=period,
        )


def limit_usage(*, server: SmtpServer, now: datetime, in_flight: int = 0) -> Usage:
    """Read the counting buckets of ``server`` (at most 61 rows) and sum them."""
    period, reset_at = server.limit_period, server.limit_reset_at
    rows = SendCounter.objects.filter(
        server=server, bucket__gt=limit_counts_from(now=now, period=period)
    )
    if reset_at is not None:
        rows = rows.filter(bucket__gte=reset_at)
    counted = limit_counts(
        buckets=list(rows.values_list("bucket", "count")),
        now=now,
        period=period,
        reset_at=reset_at,
    )
    limit = server.limit_count if limit_period_length(period) else None
    next_fit_at = now
    if limit is not None:
        next_fit_at = limit_next_fit(
            counted=counted, in_flight=in_flight, needed=1, limit=limit, now=now, period=period
        )
    return Usage(
        used=sum(count for _bucket, count in counted) + in_flight,
        limit=limit,
        window_start=limit_window_start(now=now, period=period, reset_at=reset_at),
        next_fit_at=next_fit_at,
        counted=counted,
        in_flight=in_flight,
    )


def counter_add(*, server: SmtpServer, count: int, at: datetime) -> None:
    """Count ``count`` accepted recipients for ``server`` at ``at`` (inside the caller's
    transaction, so the count and the message's status commit together)."""
    if count <= 0:
        return
    bucket = limit_bucket_for(at=at, period=server.limit_period, reset_at=server.limit_reset_at)
    # get_or_create survives a concurrent insert of the same bucket (it retries the get).
    counter, _created = SendCounter.objects.get_or_create(server=server, bucket=bucket)
    SendCounter.objects.filter(pk=counter.pk).update(count=F("count") + count)


def limit_in_flight(*, server: SmtpServer, count_recipients: bool = True) -> tuple[int, int]:
    """Recipients of ``server``'s messages being sent now, and how many workers send them.

    Bounded by the batches in flight, not by the history. Counting them as used is what
    keeps concurrent workers under the limit together: a claim sees the others' claims.
    ``count_recipients=False`` skips reading them (0 is returned): a server without a limit
    only needs the workers, and its parallel connections would otherwise each read the
    others' batches under the server's lock.
    """
    workers = (
        OutgoingMessage.objects.filter(server=server, status=OutgoingMessage.Status.SENDING)
        .values("claimed_by")
        .distinct()
        .count()
    )
    if not count_recipients:
        return 0, workers
    rows = Recipient.objects.filter(
        message__server=server,
        message__status=OutgoingMessage.Status.SENDING,
        status__in=ENVELOPE_STATUSES,
    ).only("message_id", "status", "email", "delivered_to")
    per_message: dict[int, list[Recipient]] = {}
    for row in rows:
        per_message.setdefault(row.message_id, []).append(row)
    recipients = sum(len(envelope_addresses(group)) for group in per_message.values())
    return recipients, workers


def server_usage(*, server: SmtpServer, now: datetime | None = None) -> Usage:
    """ "Used / limit in the current window" and when the next message fits, for the admin.

    ``used`` counts accepted recipients since the window start plus those being sent now;
    ``limit`` is ``None`` for a server without a limit; ``next_fit_at`` is ``now`` when a
    one-recipient message fits at once.
    """
    now = now or timezone.now()
    in_flight, _workers = limit_in_flight(server=server)
    return limit_usage(server=server, now=now, in_flight=in_flight)
