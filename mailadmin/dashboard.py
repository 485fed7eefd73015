"""What the dashboard shows: server usage, queue counts, the last 14 days, a forecast.

Every query is bounded by an index (status, created_at) or by the limit counters, never a scan
of the whole history; the pure parts (forecast, chart geometry) take plain values.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from smtpconfig.limits import Usage, limit_period_length, limit_usage
from smtpconfig.models import OutgoingMessage, Recipient, SmtpServer

PENDING_STATUSES = [
    OutgoingMessage.Status.QUEUED,
    OutgoingMessage.Status.DEFERRED,
    OutgoingMessage.Status.SENDING,
]
ATTENTION_STATUSES = [*PENDING_STATUSES, OutgoingMessage.Status.FAILED]
CHART_STATUSES = [
    OutgoingMessage.Status.SENT,
    OutgoingMessage.Status.FAILED,
    OutgoingMessage.Status.SUPPRESSED,
]


@dataclass(frozen=True)
class ServerPanel:
    server: SmtpServer
    usage: Usage
    pending_recipients: int
    paused: bool
    forecast: datetime | None

    @property
    def percent(self) -> int:
        if not self.usage.limit:
            return 0
        return min(100, round(100 * self.usage.used / self.usage.limit))


def queue_forecast(
    *,
    pending: int,
    limit: int | None,
    period: timedelta | None,
    used: int,
    next_fit_at: datetime | None,
    now: datetime,
) -> datetime | None:
    """When ``pending`` recipients will all have been sent, given the server's limit.

    Without a limit: now. With one: what fits in the current window goes now, the rest one
    full window at a time from when the next recipient fits. ``None`` when nothing can ever
    fit (a message larger than the limit).
    """
    if pending <= 0 or limit is None or period is None:
        return now
    room = max(0, limit - used)
    if pending <= room:
        return now
    if next_fit_at is None:
        return None
    windows_after = math.ceil((pending - room) / limit) - 1
    return max(now, next_fit_at) + windows_after * period


def dashboard_servers(*, now: datetime | None = None) -> list[ServerPanel]:
    now = now or timezone.now()
    pending = dict(
        Recipient.objects.filter(
            message__status__in=PENDING_STATUSES,
            status__in=[Recipient.Status.PENDING, Recipient.Status.DEFERRED],
        )
        .values("message__server")
        .annotate(total=Count("id"))
        .values_list("message__server", "total")
    )
    panels = []
    for server in SmtpServer.objects.order_by("-is_default", "name"):
        usage = limit_usage(server=server, now=now)
        waiting = pending.get(server.pk, 0)
        panels.append(
            ServerPanel(
                server=server,
                usage=usage,
                pending_recipients=waiting,
                paused=bool(server.paused_until and server.paused_until > now),
                forecast=queue_forecast(
                    pending=waiting,
                    limit=usage.limit,
                    period=limit_period_length(server.limit_period),
                    used=usage.used,
                    next_fit_at=usage.next_fit_at,
                    now=now,
                ),
            )
        )
    return panels


def dashboard_queue_counts() -> dict[str, int]:
    """Messages waiting or needing attention, by status (index on status)."""
    counts = dict(
        OutgoingMessage.objects.filter(status__in=ATTENTION_STATUSES)
        .values("status")
        .annotate(total=Count("id"))
        .values_list("status", "total")
    )
    return {status: counts.get(status, 0) for status in ATTENTION_STATUSES}


def dashboard_failed(*, limit: int = 10) -> list[OutgoingMessage]:
    return list(
        OutgoingMessage.objects.filter(status=OutgoingMessage.Status.FAILED)
        .select_related("server")
        .order_by("-updated_at")[:limit]
    )


@dataclass(frozen=True)
class Day:
    day: date
    sent: int
    failed: int
    suppressed: int


def dashboard_days(*, days: int = 14, now: datetime | None = None) -> list[Day]:
    """Sent, failed and suppressed messages per day over the last ``days`` days (oldest first)."""
    now = timezone.localtime(now or timezone.now())
    first = now.date() - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        OutgoingMessage.objects.filter(created_at__gte=start, status__in=CHART_STATUSES)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(
            sent=Count("id", filter=Q(status=OutgoingMessage.Status.SENT)),
            failed=Count("id", filter=Q(status=OutgoingMessage.Status.FAILED)),
            suppressed=Count("id", filter=Q(status=OutgoingMessage.Status.SUPPRESSED)),
        )
    )
    by_day = {row["day"]: row for row in rows}
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day, {})
        result.append(
            Day(day, row.get("sent") or 0, row.get("failed") or 0, row.get("suppressed") or 0)
        )
    return result


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    kind: str
    value: int
    day: date


def chart_bars(
    days: list[Day], *, width: int = 560, height: int = 160, gap: int = 4
) -> tuple[list[Bar], int]:
    """Stacked bars for an SVG chart; returns the bars and the scale's top value."""
    top = max([d.sent + d.failed + d.suppressed for d in days] + [1])
    slot = width / max(1, len(days))
    bars = []
    for index, day in enumerate(days):
        base = float(height)
        for kind in ("sent", "failed", "suppressed"):
            value = getattr(day, kind)
            bar_height = height * value / top
            base -= bar_height
            if value:
                bars.append(Bar(index * slot + gap / 2, base, bar_height, kind, value, day.day))
    return bars, top
