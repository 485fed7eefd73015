"""Recording and the queue agree: what the backend records, the drain delivers as decided."""

from datetime import timedelta

import pytest
from django.core.mail import EmailMessage, send_mail
from django.utils import timezone
from django.utils.deprecation import RemovedInDjango2028Warning
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from blacklist.models import BlacklistEntry
from smtpconfig.delivery import outbox_drain, outbox_release_expired
from smtpconfig.exceptions import InvalidMessage
from smtpconfig.models import MailSettings, OutgoingMessage, Recipient
from smtpconfig.recording import messages_plan, messages_record

pytestmark = pytest.mark.django_db


def test_queued_mail_asks_for_one_drain_task_after_commit(
    servers, django_capture_on_commit_callbacks
):
    # Through the configured broker (the database, or Redis when REDIS_URL is set).
    broker = get_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        send_mail("Hi", "Body", "info@club.example", ["a@golf.example"])
    assert broker.queue_size() == 1
    ((_ack_id, payload),) = broker.dequeue()
    task = SignedPackage.loads(payload)
    assert task["func"] == "smtpconfig.tasks.drain_outbox"
    # Ids only, never content: the drain finds its work in the outbox itself.
    assert task["args"] == () and "Body" not in str(task)


def test_drain_delivers_queued_mail_as_the_backend_decided(servers, club_sink, default_sink):
    settings_row = MailSettings.load()
    settings_row.test_mode, settings_row.test_address = True, "tester@club.example"
    settings_row.save()
    BlacklistEntry.objects.create(email="gone@golf.example")
    EmailMessage(
        "News",
        "Body",
        "info@club.example",
        ["a@golf.example", "gone@golf.example"],
        bcc=["b@golf.example"],
    ).send()
    send_mail("Other", "Body", "x@else.example", ["c@golf.example"])
    assert club_sink.received == [] and default_sink.received == []

    outbox_drain()

    (to_club,) = club_sink.received
    assert to_club.rcpt_tos == ["tester@club.example"]
    assert to_club.content == bytes(OutgoingMessage.objects.get(subject="[TEST] News").raw)
    (to_default,) = default_sink.received
    assert to_default.rcpt_tos == ["tester@club.example"]
    assert to_default.mail_from == "noreply@relay.example"
    news = OutgoingMessage.objects.get(subject="[TEST] News")
    assert news.status == OutgoingMessage.Status.SENT
    statuses = dict(news.recipients.values_list("email", "status"))
    assert statuses == {
        "a@golf.example": Recipient.Status.REDIRECTED,
        "gone@golf.example": Recipient.Status.SUPPRESSED,
        "b@golf.example": Recipient.Status.REDIRECTED,
    }


def test_direct_mail_is_leased_so_the_queue_takes_it_only_if_the_sender_died(servers, club_sink):
    _config, plans = messages_plan(
        email_messages=[EmailMessage("Hi", "Body", "info@club.example", ["a@golf.example"])]
    )
    (key,) = messages_record(plans=plans, delivery=MailSettings.Delivery.DIRECT)
    message = OutgoingMessage.objects.get(pk=key)
    assert message.status == OutgoingMessage.Status.SENDING and message.claimed_by

    outbox_drain()
    assert club_sink.received == []

    # The process that recorded it never reported back: once its lease is over, the queue
    # delivers the message instead of losing it.
    later = message.lease_expires_at + timedelta(seconds=1)
    assert outbox_release_expired(now=later) == 1
    outbox_drain(now=max(later, timezone.now()))
    assert club_sink.recipients() == ["a@golf.example"]


def test_fail_silently_only_silences_delivery_failures(servers, direct, club_sink):
    club_sink.handler.rcpt_replies["refused@golf.example"] = "550 5.1.1 No such user"
    # The deprecated argument still means what it meant for Django's SMTP backend.
    with pytest.warns(RemovedInDjango2028Warning):
        sent = send_mail(
            "Hi", "Body", "info@club.example", ["refused@golf.example"], fail_silently=True
        )
    assert sent == 0
    assert OutgoingMessage.objects.get().status == OutgoingMessage.Status.FAILED
    # A message that cannot be sent at all is never silenced: the caller must know.
    with pytest.warns(RemovedInDjango2028Warning), pytest.raises(InvalidMessage):
        send_mail("Hi", "Body", "info@club.example", ["not an address"], fail_silently=True)


def test_from_and_reply_to_given_as_headers_are_routed_too(
    servers, direct, club_sink, default_sink
):
    EmailMessage(
        "Hi",
        "Body",
        "ignored@else.example",
        ["a@golf.example"],
        headers={
            "From": "Secretary <info@club.example>",
            "Reply-To": '"Desk, Club" <desk@club.example>, b@club.example',
        },
    ).send()
    (received,) = club_sink.received
    assert default_sink.received == []
    assert received.message["From"] == "Secretary <info@club.example>"
    assert received.message["Reply-To"] == '"Desk, Club" <desk@club.example>, b@club.example'
    assert received.mail_from == "info@club.example"
