"""A result is recorded while the server reads the next message's envelope, and that
message's data waits for the record: a worker that dies, or a record that fails, leaves at
most one accepted message unrecorded.

The drain commits its results (and parallel connections use their own database connections),
so these tests commit for real (``transaction=True``); a failing record is a real database
refusal (a trigger).
"""

import time
from datetime import timedelta

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from django.core import mail
from django.db import DatabaseError, connection
from django.utils import timezone, translation

from smtpconfig.delivery import outbox_drain, outbox_release_expired
from smtpconfig.esp import EspConnection
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from smtpconfig.replies import Outcome
from smtpconfig.transport import MessageWithheld, SmtpConnection
from tests.queue.factory import DOTTED_RAW as RAW
from tests.queue.factory import queued_messages
from tests.refusals import database_refuses

pytestmark = pytest.mark.django_db(transaction=True)

Status = OutgoingMessage.Status


def send(connection, **kwargs):
    return connection.send(
        envelope_from="office@club.example", recipients=["member@members.example"], **kwargs
    )


def test_the_message_waits_for_before_data(sink, make_server):
    connection = SmtpConnection(make_server(sink=sink))
    connection.open()
    received_during_the_wait = []

    def wait():
        time.sleep(0.2)  # the server has the envelope, not the message
        received_during_the_wait.append(len(sink.received))

    result = send(connection, raw=RAW, before_data=wait)
    connection.close()
    assert result.outcome == Outcome.ACCEPTED
    assert received_during_the_wait == [0]
    # The server got the lines as they were (a leading dot doubled on the wire, then undone).
    assert [item.content for item in sink.received] == [RAW]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_before_data_runs_while_the_server_reads_the_first_command(sink, make_server, pipelining):
    sink.handler.pipelining = pipelining
    connection = SmtpConnection(make_server(sink=sink))
    connection.open()
    server_had_the_command = []

    def before_data():
        # Called before the command was written, this would wait in vain.
        deadline = time.monotonic() + 5
        while not sink.handler.after_mail and time.monotonic() < deadline:
            time.sleep(0.01)
        server_had_the_command.append(bool(sink.handler.after_mail))

    assert send(connection, raw=RAW, before_data=before_data).outcome == Outcome.ACCEPTED
    assert server_had_the_command == [True]
    # A refused envelope gets the call too: it is when the result before it is recorded.
    sink.handler.rcpt_replies["member@members.example"] = "550 5.1.1 No such user"
    calls = []
    result = send(connection, raw=RAW, before_data=lambda: calls.append(1))
    connection.close()
    assert result.outcome == Outcome.PERMANENT and calls == [1]


def test_a_failing_before_data_leaves_nothing_delivered(sink, make_server):
    connection = SmtpConnection(make_server(sink=sink))
    connection.open()

    def refuse():
        raise RuntimeError("the database went away")

    with pytest.raises(MessageWithheld) as raised:
        send(connection, raw=RAW, before_data=refuse)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert not connection.is_open
    time.sleep(0.2)
    assert sink.received == []
    # The next message opens a fresh session and goes through.
    connection.open()
    assert send(connection, raw=RAW).outcome == Outcome.ACCEPTED
    connection.close()
    assert len(sink.received) == 1


def test_a_service_is_not_called_when_before_data_fails(make_server):
    mail.outbox = []
    server = make_server(transport="postmark", host="")
    connection = EspConnection(server, backend=AnymailTestBackend())
    connection.open()

    def refuse():
        raise RuntimeError("the database went away")

    with pytest.raises(MessageWithheld):
        send(connection, raw=RAW, before_data=refuse)
    assert mail.outbox == []
    calls = []
    assert send(connection, raw=RAW, before_data=lambda: calls.append(1)).outcome == (
        Outcome.ACCEPTED
    )
    assert calls == [1] and len(mail.outbox) == 1


def record_refused_for(message):
    """The database refuses to mark ``message`` sent, as a full disk or a lost server would."""
    return database_refuses(
        table=OutgoingMessage._meta.db_table,
        operation="UPDATE OF status",
        when=f"NEW.id = {message.pk} AND NEW.status = 'sent'",
        message="record refused",
    )


def test_a_failed_record_stops_the_batch_before_the_next_message_ends(sink, make_server):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=5)
    with record_refused_for(messages[1]), pytest.raises(DatabaseError, match="record refused"):
        outbox_drain()
    # Messages 0 and 1 were accepted; 2's envelope was on the wire, its data never went.
    assert [item.message["Message-ID"] for item in sink.received] == [
        message.message_id for message in messages[:2]
    ]
    states = dict(OutgoingMessage.objects.values_list("pk", "status"))
    assert states[messages[0].pk] == Status.SENT
    # The unrecorded one keeps its lease (and nothing of its record was half-written); the
    # others went back to the queue untouched.
    assert states[messages[1].pk] == Status.SENDING
    assert messages[1].recipients.get().status == Recipient.Status.PENDING
    assert not messages[1].events.filter(kind=MessageEvent.Kind.ATTEMPT).exists()
    assert [states[message.pk] for message in messages[2:]] == [Status.QUEUED] * 3
    assert OutgoingMessage.objects.get(pk=messages[2].pk).attempts == 0

    # When its lease runs out it is sent again: the only message that arrives twice.
    released = outbox_release_expired(now=timezone.now() + timedelta(days=1))
    assert released == 1
    report = outbox_drain()
    assert report.sent == 4
    arrivals = [item.message["Message-ID"] for item in sink.received]
    assert sorted(arrivals) == sorted(
        [message.message_id for message in messages] + [messages[1].message_id]
    )
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {Status.SENT}


def test_the_result_before_a_message_that_asks_the_server_nothing_is_recorded(
    smtp_sink, make_server
):
    # An internationalised address to a server without SMTPUTF8 fails before a command is
    # written; the result held for the message before it is still recorded, and the batch
    # goes on with the message after it, in the same session.
    ascii_only = smtp_sink(smtputf8=False)
    server = make_server(sink=ascii_only)
    first, second, third = queued_messages(server=server, count=3)
    second.recipients.update(email="zoë@members.example")
    report = outbox_drain()
    assert (report.sent, report.failed, report.requeued) == (2, 1, 0)
    assert ascii_only.handler.sessions == 1
    states = dict(OutgoingMessage.objects.values_list("pk", "status"))
    assert [states[message.pk] for message in (first, second, third)] == [
        Status.SENT,
        Status.FAILED,
        Status.SENT,
    ]
    assert len(ascii_only.received) == 2


def test_every_result_is_recorded_when_the_drain_returns(sink, make_server):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=30)
    sink.handler.rcpt_replies["member7@members.example"] = "550 5.1.1 No such user"
    report = outbox_drain(batch_size=8)
    assert (report.sent, report.failed) == (29, 1)
    states = dict(OutgoingMessage.objects.values_list("pk", "status"))
    assert states[messages[7].pk] == Status.FAILED
    assert sum(status == Status.SENT for status in states.values()) == 29


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL's sessions")
def test_the_drain_leaves_no_database_session_behind(sink, make_server):
    def sessions():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    server = make_server(sink=sink)
    queued_messages(server=server, count=12)
    before = sessions()
    assert outbox_drain(batch_size=5).sent == 12
    # Closed sessions leave pg_stat_activity as soon as their backend exits.
    deadline = time.monotonic() + 5
    while sessions() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions() == before


def test_the_attempt_lines_follow_the_language_of_the_drain(sink, make_server):
    server = make_server(sink=sink)
    (english,) = queued_messages(server=server, count=1)
    with translation.override("en"):
        assert outbox_drain().sent == 1
    (french,) = queued_messages(server=server, count=1)
    with translation.override("fr"):
        assert outbox_drain().sent == 1

    def attempt(message):
        return message.events.get(kind=MessageEvent.Kind.ATTEMPT).detail

    assert "1 recipient(s) accepted." in attempt(english)
    assert "1 destinataire(s) accepté(s)." in attempt(french)


def test_parallel_connections_write_in_the_language_of_the_drain(sink, make_server):
    server = make_server(sink=sink, max_connections=3)
    messages = queued_messages(server=server, count=6)
    with translation.override("fr"):
        assert outbox_drain().sent == 6
    details = MessageEvent.objects.filter(message__in=messages, kind=MessageEvent.Kind.ATTEMPT)
    assert all("destinataire(s) accepté(s)" in event.detail for event in details)
