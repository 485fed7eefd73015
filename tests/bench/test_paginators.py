"""Admin lists of the outbox and the blacklist count at most a capped number of rows."""

import pytest

from blacklist.models import BlacklistEntry
from core import paginators
from core.paginators import CappedCountPaginator, CountAtLeast
from tests.queue.factory import queued_message
from tests.signin import client_sign_in_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@club.example", "pw")
    return client_sign_in_verified(client, user)


@pytest.fixture
def cap_of_three(monkeypatch):
    monkeypatch.setattr(paginators, "COUNT_CAP", 3)


def entries(count):
    BlacklistEntry.objects.bulk_create(
        BlacklistEntry(email=f"gone{number}@old.example") for number in range(count)
    )


def test_below_the_cap_the_count_is_exact(cap_of_three):
    entries(3)
    paginator = CappedCountPaginator(BlacklistEntry.objects.all(), 2)
    assert paginator.count == 3
    assert not isinstance(paginator.count, CountAtLeast)
    assert paginator.num_pages == 2


def test_above_the_cap_the_count_stops_and_says_more_than(cap_of_three):
    entries(5)
    paginator = CappedCountPaginator(BlacklistEntry.objects.all(), 2)
    assert paginator.count == 3
    assert str(paginator.count) == "more than 3"
    assert [entry.email for entry in paginator.page(2)] == ["gone2@old.example"]


def test_blacklist_list_says_more_than_and_still_filters(cap_of_three, admin_client):
    entries(5)
    response = admin_client.get("/admin/blacklist/blacklistentry/")
    assert response.status_code == 200
    assert "more than 3" in response.text
    response = admin_client.get("/admin/blacklist/blacklistentry/?q=gone4")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert "gone4@old.example" in response.text and "gone3@old.example" not in response.text


def test_outbox_list_says_more_than_and_still_filters(cap_of_three, admin_client, make_server):
    server = make_server()
    for number in range(4):
        queued_message(server=server, to=(f"member{number}@members.example",))
    response = admin_client.get("/admin/smtpconfig/outgoingmessage/")
    assert response.status_code == 200
    assert "more than 3" in response.text
    response = admin_client.get("/admin/smtpconfig/outgoingmessage/?q=member2@members.example")
    assert response.context["cl"].result_count == 1
    response = admin_client.get("/admin/smtpconfig/outgoingmessage/?status__exact=sent")
    assert response.context["cl"].result_count == 0
