"""The server list shows each limited server's use of its window and when the next fits."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import override

from smtpconfig.limits import counter_add
from tests.servers.test_admin import LIST_URL, row_of

pytestmark = pytest.mark.django_db


def limited(make_server, name, *, used, count=10, at=None):
    server = make_server(name=name, limit_period="hour", limit_count=count)
    counter_add(server=server, count=used, at=at or timezone.now() - timedelta(minutes=10))
    return server


def test_a_full_server_shows_used_over_limit_and_when_the_next_fits(admin_client, make_server):
    sent_at = timezone.now() - timedelta(minutes=10)
    limited(make_server, "Full", used=10, at=sent_at)
    # The minute bucket of the sends leaves the window one hour and one bucket after it began.
    bucket = sent_at.replace(second=0, microsecond=0)
    fits_at = bucket + timedelta(hours=1, minutes=1)

    row = row_of(admin_client.get(LIST_URL).content.decode(), "Full")

    assert "10 / 10" in row
    with override("en"):
        shown = date_format(timezone.localtime(fits_at), "SHORT_DATETIME_FORMAT")
    assert f"the next message fits at {shown}" in row


def test_a_server_with_room_fits_now_and_one_without_limit_shows_no_use(admin_client, make_server):
    limited(make_server, "Room", used=3)
    make_server(name="Open")

    page = admin_client.get(LIST_URL).content.decode()

    assert "3 / 10" in row_of(page, "Room")
    assert "the next message fits now" in row_of(page, "Room")
    open_row = row_of(page, "Open")
    assert "/ " not in open_row.split("No send limit")[1].split("</td>")[1]
    assert "fits" not in open_row


def test_a_reset_starts_the_window_again_on_the_list(admin_client, make_server):
    server = limited(make_server, "Full", used=10)
    admin_client.post(LIST_URL, {"action": "reset_limit", "_selected_action": [server.pk]})

    row = row_of(admin_client.get(LIST_URL).content.decode(), "Full")

    assert "0 / 10" in row
    assert "the next message fits now" in row


def test_a_limited_server_costs_one_query_whatever_its_history(admin_client, make_server):
    def queries_for_list():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST_URL).status_code == 200
        return len(captured)

    first = limited(make_server, "First", used=1)
    queries_for_list()  # the first request of a session also reads what later ones cache
    one_server = queries_for_list()
    # A week of history for the first server and a second limited server.
    for hours in range(1, 24 * 7, 3):
        counter_add(server=first, count=1, at=timezone.now() - timedelta(hours=hours))
    limited(make_server, "Second", used=1)

    assert queries_for_list() == one_server + 1


def test_the_change_list_still_links_each_server(admin_client, make_server):
    server = limited(make_server, "Full", used=10)
    page = admin_client.get(LIST_URL).content.decode()
    assert reverse("admin:smtpconfig_smtpserver_change", args=[server.pk]) in page
