"""A call is recorded whole or not at all: a row the database refuses leaves nothing of it.

The rows are written by composed statements (``core.inserts``); these tests commit for real
(``transaction=True``) and the refusal is the database's own (a trigger on the last table
written, so the messages and recipients before it were already inserted).
"""

import pytest
from django.core.mail import send_mail, send_mass_mail
from django.db import DatabaseError

from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from tests.refusals import database_refuses

pytestmark = pytest.mark.django_db(transaction=True)


def events_refused():
    return database_refuses(
        table=MessageEvent._meta.db_table, operation="INSERT", message="event refused"
    )


def one_message() -> int:
    return send_mail("Tee times", "Body", "info@club.example", ["a@golf.example"])


def mass_mailing() -> int:
    return send_mass_mail(
        [
            (f"News {n}", "Body", "info@club.example", [f"a{n}@golf.example", f"b{n}@golf.example"])
            for n in range(5)
        ]
    )


@pytest.mark.parametrize("send", [one_message, mass_mailing], ids=["send_mail", "send_mass_mail"])
def test_a_refused_row_leaves_nothing_of_the_call_and_asks_no_drain(servers, broker, send):
    with events_refused(), pytest.raises(DatabaseError, match="event refused"):
        send()
    assert not OutgoingMessage.objects.exists()
    assert not Recipient.objects.exists()
    assert not MessageEvent.objects.exists()
    assert broker.queue_size() == 0

    # The connection is left usable, and the same call is recorded whole once it is taken.
    sent = send()
    assert OutgoingMessage.objects.count() == sent
    assert MessageEvent.objects.count() == sent
    assert Recipient.objects.count() == (1 if sent == 1 else 2 * sent)
    assert broker.queue_size() == 1


def test_in_direct_mode_a_refused_row_sends_nothing(servers, direct, club_sink):
    with events_refused(), pytest.raises(DatabaseError, match="event refused"):
        mass_mailing()
    assert club_sink.received == []
    assert not OutgoingMessage.objects.exists()
    assert mass_mailing() == 5
    assert len(club_sink.received) == 5
