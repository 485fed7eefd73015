from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailadmin.dashboard import Day, chart_bars, queue_forecast
from smtpconfig.limits import counter_add
from smtpconfig.models import OutgoingMessage, Recipient

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_forecast_without_limit_or_pending_is_now():
    assert (
        queue_forecast(pending=0, limit=10, period=HOUR, used=10, next_fit_at=NOW, now=NOW) == NOW
    )
    assert (
        queue_forecast(pending=500, limit=None, period=None, used=0, next_fit_at=None, now=NOW)
        == NOW
    )


def test_forecast_what_fits_goes_now():
    assert queue_forecast(pending=4, limit=10, period=HOUR, used=6, next_fit_at=NOW, now=NOW) == NOW


def test_forecast_counts_whole_windows_after_the_next_fit():
    next_fit = NOW + timedelta(minutes=20)
    # 10 room now... none: used 10; 25 pending need three windows, the first at next_fit.
    assert (
        queue_forecast(pending=25, limit=10, period=HOUR, used=10, next_fit_at=next_fit, now=NOW)
        == next_fit + 2 * HOUR
    )
    # 5 room now, 15 left: two windows after the next fit: next_fit, next_fit + 1h.
    assert (
        queue_forecast(pending=20, limit=10, period=HOUR, used=5, next_fit_at=next_fit, now=NOW)
        == next_fit + HOUR
    )


def test_forecast_is_none_when_nothing_can_fit():
    assert (
        queue_forecast(pending=20, limit=10, period=HOUR, used=10, next_fit_at=None, now=NOW)
        is None
    )


def test_chart_bars_stack_and_scale_to_the_busiest_day():
    days = [Day(NOW.date(), 6, 2, 2), Day(NOW.date() + timedelta(days=1), 0, 0, 0)]
    bars, top = chart_bars(days, height=100)
    assert top == 10
    assert [(bar.kind, bar.height) for bar in bars] == [
        ("sent", 60.0),
        ("failed", 20.0),
        ("suppressed", 20.0),
    ]
    assert bars[0].y == 40.0 and bars[2].y == 0.0


def viewer(user_model):
    """A staff member who may see servers and the outbox (no second factor needed)."""
    user = user_model.objects.create_user("desk", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_smtpserver", "view_outgoingmessage"])
    )
    return user


def message(server, status, **fields):
    return OutgoingMessage.objects.create(
        server=server,
        status=status,
        message_id=f"<{OutgoingMessage.objects.count()}@test>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        subject=fields.pop("subject", "Hello"),
        raw=b"Subject: Hello\r\n\r\nbody",
        **fields,
    )


@pytest.mark.django_db
def test_dashboard_shows_usage_star_pause_counts_chart_and_failures(
    client, django_user_model, make_server, django_assert_max_num_queries
):
    client.force_login(viewer(django_user_model))
    default = make_server(name="Club relay", is_default=True, limit_period="hour", limit_count=10)
    paused = make_server(
        name="Office 365",
        paused_until=timezone.now() + timedelta(hours=1),
        pause_reason="credentials rejected",
    )
    counter_add(server=default, count=10, at=timezone.now())
    for _ in range(3):
        queued = message(default, OutgoingMessage.Status.QUEUED)
        Recipient.objects.create(message=queued, email="m@member.example")
    message(paused, OutgoingMessage.Status.FAILED, subject="Season opening", last_error="550 nope")
    message(default, OutgoingMessage.Status.SENT)

    with django_assert_max_num_queries(30):
        response = client.get(reverse("admin:index"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Club relay" in page and "★" in page
    assert "10 / 10" in page
    assert "Next message fits at" in page
    assert "credentials rejected" in page
    assert "3 recipients waiting" in page
    assert "?status__exact=queued" in page and "<strong>3</strong>" in page
    assert "Season opening" in page and "550 nope" in page
    assert "<svg" in page and 'class="ma-sent"' in page


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_history(client, django_user_model, make_server):
    client.force_login(viewer(django_user_model))
    server = make_server(is_default=True)
    message(server, OutgoingMessage.Status.SENT)
    client.get(reverse("admin:index"))  # first request of a session creates its rows
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("admin:index"))
    for _ in range(50):
        message(server, OutgoingMessage.Status.FAILED)
        message(server, OutgoingMessage.Status.SENT)
    with CaptureQueriesContext(connection) as large:
        client.get(reverse("admin:index"))
    assert len(large) == len(small)
