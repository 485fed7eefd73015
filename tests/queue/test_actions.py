"""Staff actions on queued mail, each recorded with the user who took it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from smtpconfig.delivery import (
    ActionNotAllowed,
    message_cancel,
    message_record_attempt,
    message_resend,
    message_retry_now,
    outbox_drain,
    outbox_wake_limit_deferred,
)
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from smtpconfig.replies import Outcome
from smtpconfig.services import server_reset_limit
from smtpconfig.transport import SendResult
from tests.queue.factory import queued_message

pytestmark = pytest.mark.django_db

Status = OutgoingMessage.Status


def last_event(message):
    return message.events.order_by("-id").first()


def test_resend_puts_a_failed_message_back_in_the_queue(sink, make_server, staff, now):
    server = make_server(sink=sink)
    message = queued_message(server=server)
    refused = SendResult(Outcome.PERMANENT, 550, "5.1.1 No such user")
    message_record_attempt(message=message, result=refused, retry=True, now=now)
    assert message.status == Status.FAILED

    message_resend(message=message, user=staff)
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert message.last_error == ""
    assert message.recipients.get().status == Recipient.Status.PENDING
    event = last_event(message)
    assert (event.kind, event.user) == (MessageEvent.Kind.RESENT, staff)

    outbox_drain(now=now)
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert len(sink.received) == 1


def test_a_resent_message_gets_a_fresh_maximum_age(make_server, staff, now):
    server = make_server()
    message = queued_message(server=server, created_at=now - timedelta(days=10))
    message_record_attempt(
        message=message, result=SendResult(Outcome.PERMANENT, 554, "no"), retry=True, now=now
    )
    message_resend(message=message, user=staff)
    later = now + timedelta(seconds=1)
    temporary = SendResult(Outcome.TEMPORARY, 451, "4.3.0 later")
    message_record_attempt(message=message, result=temporary, retry=True, now=later)
    assert message.status == Status.DEFERRED


def test_cancel_stops_queued_and_deferred_mail(sink, make_server, staff, now):
    server = make_server(sink=sink)
    queued = queued_message(server=server)
    deferred = queued_message(server=server, status=Status.DEFERRED)
    for message in (queued, deferred):
        message_cancel(message=message, user=staff)
        message.refresh_from_db()
        assert message.status == Status.CANCELLED
        event = last_event(message)
        assert (event.kind, event.user) == (MessageEvent.Kind.CANCELLED, staff)
    assert outbox_drain(now=now).claimed == 0
    assert sink.received == []


def test_retry_now_makes_a_deferred_message_due(sink, make_server, staff, now):
    server = make_server(sink=sink)
    message = queued_message(server=server, status=Status.DEFERRED)
    OutgoingMessage.objects.filter(pk=message.pk).update(next_attempt_at=now + timedelta(hours=1))
    message_retry_now(message=message, user=staff, now=now)
    event = last_event(message)
    assert (event.kind, event.user) == (MessageEvent.Kind.RETRY_NOW, staff)
    assert outbox_drain(now=now).sent == 1


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (message_resend, Status.SENT),
        (message_resend, Status.QUEUED),
        (message_cancel, Status.SENT),
        (message_cancel, Status.SENDING),
        (message_cancel, Status.FAILED),
        (message_retry_now, Status.QUEUED),
        (message_retry_now, Status.FAILED),
    ],
)
def test_actions_refuse_messages_in_other_states(make_server, staff, action, status):
    message = queued_message(server=make_server(), status=status)
    with pytest.raises(ActionNotAllowed) as raised:
        action(message=message, user=staff)
    assert raised.value.status == status
    assert isinstance(raised.value, ValueError)
    message.refresh_from_db()
    assert message.status == status
    assert last_event(message).kind == MessageEvent.Kind.RECORDED


def test_reset_wakes_mail_waiting_for_the_limit_but_not_retries(
    make_server, now, django_capture_on_commit_callbacks
):
    server = make_server(limit_period="day", limit_count=1)
    for_limit = queued_message(server=server, status=Status.DEFERRED)
    for_retry = queued_message(server=server, status=Status.DEFERRED)
    for_retry.recipients.update(status=Recipient.Status.DEFERRED)
    later = now + timedelta(hours=5)
    OutgoingMessage.objects.filter(pk__in=[for_limit.pk, for_retry.pk]).update(
        next_attempt_at=later
    )
    broker = get_broker()
    before = broker.queue_size()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_wake_limit_deferred(server=server, now=now) == 1
    for_limit.refresh_from_db()
    for_retry.refresh_from_db()
    assert for_limit.next_attempt_at == now
    assert for_retry.next_attempt_at == later
    assert broker.queue_size() == before + 1


def test_the_admin_reset_records_who_and_wakes_the_waiting_mail(make_server, staff):
    server = make_server(limit_period="day", limit_count=1)
    waiting = queued_message(server=server, status=Status.DEFERRED)
    OutgoingMessage.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=5)
    )
    server_reset_limit(server=server, acting_user=staff)
    server.refresh_from_db()
    waiting.refresh_from_db()
    assert server.limit_reset_by == staff
    assert waiting.next_attempt_at == server.limit_reset_at
