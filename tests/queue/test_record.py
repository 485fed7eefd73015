"""One attempt's result applied to a message, its recipients and its server."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from smtpconfig.delivery import message_envelope, message_record_attempt
from smtpconfig.limits import limit_usage
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from smtpconfig.replies import Outcome
from smtpconfig.transport import RecipientResult, SendResult
from tests.queue.factory import queued_message

pytestmark = pytest.mark.django_db

ACCEPTED = SendResult(Outcome.ACCEPTED, 250, "2.0.0 Accepted")


def statuses(message):
    return {row.email: row.status for row in message.recipients.all()}


def test_accepted_message_is_sent_and_counted(make_server):
    server = make_server(limit_period="hour", limit_count=10)
    message = queued_message(server=server, to=("a@m.example", "b@m.example"))
    now = timezone.now()
    message_record_attempt(message=message, result=ACCEPTED, retry=True, now=now)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.attempts == 1
    assert message.sent_at == now
    assert set(statuses(message).values()) == {Recipient.Status.SENT}
    assert limit_usage(server=server, now=now).used == 2
    kinds = list(message.events.values_list("kind", flat=True))
    assert kinds == [MessageEvent.Kind.RECORDED, MessageEvent.Kind.ATTEMPT, MessageEvent.Kind.SENT]


def test_permanent_refusal_of_one_recipient_sends_to_the_others(make_server):
    server = make_server()
    message = queued_message(server=server, to=("a@m.example", "gone@m.example"))
    result = SendResult(
        Outcome.ACCEPTED,
        250,
        "",
        [
            RecipientResult("a@m.example", Outcome.ACCEPTED, 250, ""),
            RecipientResult("gone@m.example", Outcome.PERMANENT, 550, "5.1.1 No such user"),
        ],
    )
    message_record_attempt(message=message, result=result, retry=True)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    gone = message.recipients.get(email="gone@m.example")
    assert gone.status == Recipient.Status.REFUSED
    assert gone.reply == "550 5.1.1 No such user"
    assert "gone@m.example" in message.last_error
    assert message_envelope(message=message) == []


def test_temporary_refusal_defers_that_recipient_only(make_server):
    server = make_server()
    message = queued_message(server=server, to=("a@m.example", "later@m.example"))
    now = timezone.now()
    result = SendResult(
        Outcome.ACCEPTED,
        250,
        "",
        [
            RecipientResult("a@m.example", Outcome.ACCEPTED, 250, ""),
            RecipientResult("later@m.example", Outcome.TEMPORARY, 451, "4.3.0 Try later"),
        ],
    )
    with override_settings(MAILADMIN={"RETRY_FIRST_DELAY": 60, "RETRY_MAX_DELAY": 600}):
        message_record_attempt(message=message, result=result, retry=True, now=now)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.DEFERRED
    assert message.next_attempt_at == now + timedelta(seconds=60)
    assert statuses(message) == {
        "a@m.example": Recipient.Status.SENT,
        "later@m.example": Recipient.Status.DEFERRED,
    }
    assert message_envelope(message=message) == ["later@m.example"]
    # The second attempt delivers the deferred recipient: the message is sent.
    later = now + timedelta(seconds=61)
    message_record_attempt(message=message, result=ACCEPTED, retry=True, now=later)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.attempts == 2
    assert statuses(message)["later@m.example"] == Recipient.Status.SENT


def test_message_level_temporary_failure_backs_off_exponentially(make_server):
    server = make_server()
    message = queued_message(server=server)
    now = timezone.now()
    result = SendResult(Outcome.TEMPORARY, 451, "4.3.0 Try again later")
    with override_settings(MAILADMIN={"RETRY_FIRST_DELAY": 10, "RETRY_MAX_DELAY": 25}):
        delays = []
        for _attempt in range(3):
            message_record_attempt(message=message, result=result, retry=True, now=now)
            delays.append((message.next_attempt_at - now).total_seconds())
    assert delays == [10, 20, 25]
    assert message.status == OutgoingMessage.Status.DEFERRED
    assert message.last_error.endswith("451 4.3.0 Try again later")


def test_temporary_failure_after_max_age_fails_with_the_last_reply(make_server):
    server = make_server()
    now = timezone.now()
    message = queued_message(server=server, created_at=now - timedelta(days=4))
    result = SendResult(Outcome.TEMPORARY, 451, "4.3.0 Still busy")
    message_record_attempt(message=message, result=result, retry=True, now=now)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.FAILED
    assert "451 4.3.0 Still busy" in message.last_error
    assert message.recipients.get().status == Recipient.Status.REFUSED


def test_permanent_failure_fails_at_once(make_server):
    server = make_server()
    message = queued_message(server=server)
    result = SendResult(Outcome.PERMANENT, 554, "5.6.0 Message rejected")
    message_record_attempt(message=message, result=result, retry=True)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.FAILED
    assert message.last_error.endswith("554 5.6.0 Message rejected")
    assert message.recipients.get().reply == "554 5.6.0 Message rejected"


def test_direct_delivery_never_retries(make_server):
    server = make_server()
    message = queued_message(server=server)
    result = SendResult(Outcome.TEMPORARY, 451, "4.3.0 Try again later")
    message_record_attempt(message=message, result=result, retry=False)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.FAILED
    assert message.next_attempt_at is None


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (SendResult(Outcome.CREDENTIALS, 535, "5.7.8 Authentication failed"), "Credentials"),
        (SendResult(Outcome.SERVER_BUSY, 421, "4.3.2 Service not available"), "Server busy"),
        (SendResult(Outcome.QUOTA, 554, "5.2.0 Sending quota exceeded"), "quota"),
    ],
)
def test_server_wide_replies_pause_the_server_and_keep_the_message_queued(
    make_server, result, reason
):
    server = make_server(limit_period="day", limit_count=100)
    message = queued_message(server=server)
    now = timezone.now()
    message_record_attempt(message=message, result=result, retry=True, now=now)
    message.refresh_from_db()
    server.refresh_from_db()
    assert message.status == OutgoingMessage.Status.QUEUED
    assert message.recipients.get().status == Recipient.Status.PENDING
    assert server.paused_until > now
    assert reason in server.pause_reason
    assert result.reply in server.pause_reason


def test_quota_pause_lasts_until_the_window_allows(make_server):
    server = make_server(limit_period="hour", limit_count=1)
    first, second = queued_message(server=server), queued_message(server=server)
    now = timezone.now()
    message_record_attempt(message=first, result=ACCEPTED, retry=True, now=now)
    quota = SendResult(Outcome.QUOTA, 550, "5.4.5 Daily user sending quota exceeded")
    message_record_attempt(message=second, result=quota, retry=True, now=now)
    server.refresh_from_db()
    assert server.paused_until == limit_usage(server=server, now=now).next_fit_at
    assert server.paused_until >= now + timedelta(hours=1)


def test_test_mode_rows_stay_redirected_and_the_test_address_receives(make_server):
    server = make_server()
    message = queued_message(server=server, to=("a@m.example", "b@m.example"))
    message.recipients.update(status=Recipient.Status.REDIRECTED, delivered_to="qa@club.example")
    assert message_envelope(message=message) == ["qa@club.example"]
    message_record_attempt(message=message, result=ACCEPTED, retry=True)
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert set(statuses(message).values()) == {Recipient.Status.REDIRECTED}
    assert limit_usage(server=server, now=timezone.now()).used == 1
