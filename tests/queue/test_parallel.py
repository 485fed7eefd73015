"""Parallel connections per server (``max_connections``) and the fast record of accepted messages.

The drain's threads use their own database connections, so these tests commit for real
(``transaction=True``) instead of running inside the test's transaction.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction

from smtpconfig.delivery import (
    message_envelope,
    message_record_accepted,
    message_record_attempt,
    outbox_claim,
    outbox_drain,
)
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient, SendCounter
from smtpconfig.replies import Outcome
from smtpconfig.transport import RecipientResult, SendResult
from tests.queue.factory import queued_message, queued_messages

pytestmark = pytest.mark.django_db(transaction=True)

Status = OutgoingMessage.Status


def workers_of(messages):
    details = MessageEvent.objects.filter(
        message__in=messages, kind=MessageEvent.Kind.ATTEMPT
    ).values_list("detail", flat=True)
    return {line for detail in details for line in detail.splitlines() if "worker" in line}


def test_four_connections_deliver_every_message_exactly_once(sink, make_server):
    server = make_server(sink=sink, max_connections=4)
    messages = queued_messages(server=server, count=40)
    report = outbox_drain()
    assert (report.claimed, report.sent, report.requeued) == (40, 40, 0)
    received_ids = [item.message["Message-ID"] for item in sink.received]
    assert sorted(received_ids) == sorted(message.message_id for message in messages)
    assert set(OutgoingMessage.objects.values_list("status", "attempts")) == {(Status.SENT, 1)}
    assert set(Recipient.objects.values_list("status", flat=True)) == {Recipient.Status.SENT}
    # Several connections, each claiming for itself under its own worker name.
    assert sink.handler.sessions > 1
    assert len(workers_of(messages)) > 1


def test_four_connections_stay_under_the_limit_together(sink, make_server):
    server = make_server(sink=sink, max_connections=4, limit_period="hour", limit_count=10)
    queued_messages(server=server, count=30)
    report = outbox_drain()
    assert len(sink.received) == 10
    assert report.sent == 10 and report.limit_deferred == 20
    assert OutgoingMessage.objects.filter(status=Status.SENT).count() == 10
    waiting = OutgoingMessage.objects.filter(status=Status.DEFERRED)
    assert waiting.count() == 20
    assert all("Send limit reached" in message.last_error for message in waiting)
    assert sum(SendCounter.objects.values_list("count", flat=True)) == 10


def test_inside_a_transaction_the_drain_keeps_to_one_connection(sink, make_server):
    server = make_server(sink=sink, max_connections=4)
    queued_messages(server=server, count=12)
    with transaction.atomic():
        report = outbox_drain()
    assert report.sent == 12 and len(sink.received) == 12
    assert sink.handler.sessions == 1


def test_a_refusal_among_accepted_messages_is_recorded_on_its_own(sink, make_server):
    server = make_server(sink=sink, max_connections=1)
    messages = queued_messages(server=server, count=6)
    sink.handler.rcpt_replies["member3@members.example"] = "550 5.1.1 No such user"
    report = outbox_drain()
    assert (report.sent, report.failed) == (5, 1)
    refused = OutgoingMessage.objects.get(pk=messages[3].pk)
    assert refused.status == Status.FAILED and "550" in refused.last_error
    assert refused.recipients.get().status == Recipient.Status.REFUSED


def test_the_fast_record_writes_what_one_attempt_writes(make_server):
    server = make_server()
    one, fast = queued_messages(server=server, count=2)
    now = one.created_at + timedelta(seconds=5)
    _server, claimed, _report = outbox_claim(
        server_id=server.pk, worker="host:1:abc", now=now, batch_size=2
    )
    by_pk = {message.pk: message for message in claimed}

    def accepted(message):
        address = message.recipients.get().email
        return SendResult(
            Outcome.ACCEPTED, 250, "", [RecipientResult(address, Outcome.ACCEPTED, 250, "")]
        )

    message_record_attempt(message=by_pk[one.pk], result=accepted(one), retry=True, now=now)
    message_record_accepted(server=server, message=by_pk[fast.pk], result=accepted(fast), now=now)

    def written(message):
        message = OutgoingMessage.objects.get(pk=message.pk)
        recipient = message.recipients.get()
        events = [(event.kind, event.detail) for event in message.events.exclude(kind="recorded")]
        return (
            message.status,
            message.attempts,
            message.last_error,
            message.claimed_by,
            message.lease_expires_at,
            message.next_attempt_at,
            message.sent_at,
            (recipient.status, recipient.reply, recipient.delivered_to == recipient.email),
            events,
        )

    assert written(one) == written(fast)
    assert written(one)[0] == Status.SENT and written(one)[-1][0][0] == MessageEvent.Kind.ATTEMPT
    assert sum(SendCounter.objects.values_list("count", flat=True)) == 2


@pytest.mark.parametrize("test_mode", [False, True])
def test_the_fast_record_matches_for_several_recipients_and_test_mode(make_server, test_mode):
    server = make_server(limit_period="day", limit_count=100)
    to = ("a@m.example", "b@m.example")
    one = queued_message(server=server, to=to, bcc=("c@m.example",))
    fast = queued_message(server=server, to=to, bcc=("c@m.example",))
    if test_mode:
        Recipient.objects.update(status=Recipient.Status.REDIRECTED, delivered_to="qa@club.example")
    now = one.created_at + timedelta(seconds=5)
    _server, claimed, _report = outbox_claim(
        server_id=server.pk, worker="host:1:abc", now=now, batch_size=2
    )
    by_pk = {message.pk: message for message in claimed}
    envelope = message_envelope(message=by_pk[one.pk])
    result = SendResult(
        Outcome.ACCEPTED,
        250,
        "",
        [RecipientResult(address, Outcome.ACCEPTED, 250, "") for address in envelope],
    )
    message_record_attempt(message=by_pk[one.pk], result=result, retry=True, now=now)
    message_record_accepted(server=server, message=by_pk[fast.pk], result=result, now=now)

    def written(message):
        message = OutgoingMessage.objects.get(pk=message.pk)
        rows = list(message.recipients.values_list("email", "status", "reply", "delivered_to"))
        events = list(message.events.values_list("kind", "detail"))
        return message.status, message.attempts, message.sent_at, rows, events

    assert written(one) == written(fast)
    counted = sum(SendCounter.objects.values_list("count", flat=True))
    assert counted == 2 * len(envelope) == (2 if test_mode else 6)


def test_the_drain_leaves_the_connection_flushing_as_before(sink, make_server):
    server = make_server(sink=sink)
    queued_messages(server=server, count=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "PRAGMA synchronous" if connection.vendor == "sqlite" else "SHOW synchronous_commit"
        )
        before = cursor.fetchone()[0]
    assert outbox_drain().sent == 2
    with connection.cursor() as cursor:
        cursor.execute(
            "PRAGMA synchronous" if connection.vendor == "sqlite" else "SHOW synchronous_commit"
        )
        assert cursor.fetchone()[0] == before
