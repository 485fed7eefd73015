"""Tracking webhooks: the services' documented sample payloads, posted through anymail's views.

Postmark protects its webhooks with basic auth only; Mailgun signs each post (HMAC-SHA256 of
timestamp and token with the webhook signing key) and is posted with basic auth as well.
"""

import base64
import copy
import hashlib
import hmac
import json
import logging

import pytest
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.core.mail import send_mail

from blacklist.models import BlacklistEntry
from smtpconfig.models import MailSettings, OutgoingMessage, ProviderEvent, Recipient
from smtpconfig.webhooks import provider_event_blacklist_reason

pytestmark = pytest.mark.django_db

SECRET = "tracking:correct-horse-battery"
MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"
POSTMARK_URL = "/anymail/postmark/tracking/"
MAILGUN_URL = "/anymail/mailgun/tracking/"

# Postmark's documented bounce webhook sample.
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 23,
    "Description": (
        "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
    ),
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "<Full dump of bounce>",
}
# Postmark's documented delivery webhook sample.
POSTMARK_DELIVERY = {
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Recipient": "john@example.com",
    "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
    "Details": "Test delivery webhook details",
    "Tag": "welcome-email",
    "ServerID": 23,
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "RecordType": "Delivery",
    "MessageStream": "outbound",
}
# Postmark's documented spam complaint webhook sample.
POSTMARK_COMPLAINT = {
    "RecordType": "SpamComplaint",
    "MessageStream": "outbound",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "Test",
    "MessageID": "00000000-0000-0000-0000-000000000000",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 1234,
    "Description": "",
    "Details": "Test spam complaint details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Test subject",
    "Content": "<Abuse report dump>",
}
# Postmark's documented subscription change sample (a recipient unsubscribing).
POSTMARK_UNSUBSCRIBE = {
    "RecordType": "SubscriptionChange",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 123456,
    "MessageStream": "outbound",
    "ChangedAt": "2020-02-01T10:53:34.416071Z",
    "Recipient": "bounced-address@wildbit.com",
    "Origin": "Recipient",
    "SuppressSending": True,
    "SuppressionReason": "ManualSuppression",
    "Tag": "my-tag",
    "Metadata": {"example": "value", "example_2": "value"},
}
# Postmark's documented bounce sample with a soft bounce type.
POSTMARK_SOFT_BOUNCE = {**POSTMARK_BOUNCE, "ID": 99, "Type": "SoftBounce", "TypeCode": 4096}

# Mailgun's documented "permanent failure" webhook sample (event-data format).
MAILGUN_PERMANENT_FAIL = {
    "signature": {
        "timestamp": "1529006854",
        "token": "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
        "signature": "",
    },
    "event-data": {
        "event": "failed",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1521233195.375624,
        "log-level": "error",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "alice@example.com",
        "recipient-domain": "example.com",
        "envelope": {
            "sender": "bob@sandbox.mailgun.org",
            "transport": "smtp",
            "targets": "alice@example.com",
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-system-test": False},
        "delivery-status": {
            "attempt-no": 1,
            "message": "",
            "code": 550,
            "description": "Not delivering to previously bounced address",
            "session-seconds": 0.0,
        },
        "message": {
            "headers": {
                "to": "Alice <alice@example.com>",
                "message-id": "20130503182626.18666.16540@sandbox.mailgun.org",
                "from": "Bob <bob@sandbox.mailgun.org>",
                "subject": "Test permanent_fail webhook",
            },
            "attachments": [],
            "size": 111,
        },
        "storage": {"url": "https://se.api.mailgun.net/v3/domains/x/messages/y", "key": "y"},
        "user-variables": {},
    },
}


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def auth(secret: str = SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def post_postmark(client, payload, *, secret=SECRET):
    return client.post(
        POSTMARK_URL, data=json.dumps(payload), content_type="application/json", **auth(secret)
    )


def mailgun_signed(payload, *, key=MAILGUN_KEY, token=None):
    signed = copy.deepcopy(payload)
    block = signed["signature"]
    if token:
        block["token"] = token
    block["signature"] = hmac.new(
        key.encode(), f"{block['timestamp']}{block['token']}".encode(), hashlib.sha256
    ).hexdigest()
    return signed


def post_mailgun(client, payload, *, secret=SECRET):
    return client.post(
        MAILGUN_URL, data=json.dumps(payload), content_type="application/json", **auth(secret)
    )


@pytest.fixture
def sent_message(make_server):
    """A message Mailadmin sent through Postmark, with its two recipients."""

    def make(provider_message_id: str, *addresses: str) -> OutgoingMessage:
        server = make_server(transport="postmark", host="")
        message = OutgoingMessage.objects.create(
            server=server,
            status=OutgoingMessage.Status.SENT,
            message_id="<m1@club.test>",
            provider_message_id=provider_message_id,
            from_email="office@club.test",
            envelope_from="office@club.test",
            raw=b"Subject: x\r\n\r\nx\r\n",
        )
        message.provider_ids.create(value=provider_message_id)
        for address in addresses:
            message.recipients.create(email=address, status=Recipient.Status.SENT)
        return message

    return make


def test_postmark_hard_bounce_blacklists_and_refuses_the_recipient(client, sent_message):
    message = sent_message(POSTMARK_BOUNCE["MessageID"], "john@example.com", "ann@example.com")
    response = post_postmark(client, POSTMARK_BOUNCE)
    assert response.status_code == 200
    entry = BlacklistEntry.objects.get()
    assert entry.email == "john@example.com"
    assert entry.reason == BlacklistEntry.Reason.BOUNCE
    assert entry.source == BlacklistEntry.Source.PROVIDER
    assert "Postmark" in entry.source_detail and "4323372036854775807" in entry.source_detail
    john, ann = message.recipients.order_by("email").reverse()
    assert (john.email, john.status) == ("john@example.com", Recipient.Status.REFUSED)
    assert "unable to deliver" in john.reply
    assert ann.status == Recipient.Status.SENT
    event = ProviderEvent.objects.get()
    assert (event.provider, event.event_id, event.event_type, event.message) == (
        "Postmark",
        "4323372036854775807",
        "bounced",
        message,
    )


def test_the_next_mail_to_a_bounced_address_is_suppressed(
    client, sink, make_server, routing_mailer
):
    make_server(sink=sink, is_default=True)
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.DIRECT
    settings_row.save()
    assert post_postmark(client, POSTMARK_BOUNCE).status_code == 200
    send_mail("Next newsletter", "Hello", "office@club.test", ["john@example.com"])
    message = OutgoingMessage.objects.get()
    assert message.status == OutgoingMessage.Status.SUPPRESSED
    assert message.recipients.get().status == Recipient.Status.SUPPRESSED
    assert sink.received == []


def test_the_same_event_twice_is_recorded_once(client, sent_message):
    message = sent_message(POSTMARK_BOUNCE["MessageID"], "john@example.com")
    assert post_postmark(client, POSTMARK_BOUNCE).status_code == 200
    BlacklistEntry.objects.all().delete()
    message.recipients.update(status=Recipient.Status.SENT, reply="")
    assert post_postmark(client, POSTMARK_BOUNCE).status_code == 200
    assert ProviderEvent.objects.count() == 1
    assert not BlacklistEntry.objects.exists()
    assert message.recipients.get().status == Recipient.Status.SENT


def test_wrong_basic_auth_changes_nothing(client, sent_message):
    message = sent_message(POSTMARK_BOUNCE["MessageID"], "john@example.com")
    assert post_postmark(client, POSTMARK_BOUNCE, secret="tracking:wrong").status_code == 400
    no_auth = client.post(
        POSTMARK_URL, data=json.dumps(POSTMARK_BOUNCE), content_type="application/json"
    )
    assert no_auth.status_code == 400
    assert not BlacklistEntry.objects.exists()
    assert not ProviderEvent.objects.exists()
    assert message.recipients.get().status == Recipient.Status.SENT


def test_postmark_delivery_marks_the_recipient_sent(client, sent_message):
    message = sent_message(POSTMARK_DELIVERY["MessageID"], "john@example.com")
    message.recipients.update(status=Recipient.Status.DEFERRED)
    assert post_postmark(client, POSTMARK_DELIVERY).status_code == 200
    assert message.recipients.get().status == Recipient.Status.SENT
    assert not BlacklistEntry.objects.exists()
    # Postmark gives delivery events no id: a digest of the event's facts stands in.
    assert ProviderEvent.objects.get().event_id.startswith("sha256:")
    assert post_postmark(client, POSTMARK_DELIVERY).status_code == 200
    assert ProviderEvent.objects.count() == 1


def test_postmark_complaint_blacklists_as_complaint(client):
    assert post_postmark(client, POSTMARK_COMPLAINT).status_code == 200
    entry = BlacklistEntry.objects.get()
    assert (entry.email, entry.reason) == ("john@example.com", BlacklistEntry.Reason.COMPLAINT)


def test_postmark_unsubscribe_blacklists_as_unsubscribe(client):
    assert post_postmark(client, POSTMARK_UNSUBSCRIBE).status_code == 200
    entry = BlacklistEntry.objects.get()
    assert (entry.email, entry.reason) == (
        "bounced-address@wildbit.com",
        BlacklistEntry.Reason.UNSUBSCRIBE,
    )


def test_postmark_soft_bounce_refuses_but_does_not_blacklist(client, sent_message):
    message = sent_message(POSTMARK_SOFT_BOUNCE["MessageID"], "john@example.com")
    assert post_postmark(client, POSTMARK_SOFT_BOUNCE).status_code == 200
    assert not BlacklistEntry.objects.exists()
    assert message.recipients.get().status == Recipient.Status.REFUSED


def test_unknown_message_id_is_logged_not_an_error(client, caplog):
    with caplog.at_level(logging.INFO, logger="smtpconfig.webhooks"):
        assert post_postmark(client, POSTMARK_BOUNCE).status_code == 200
    assert "unknown message id" in caplog.text
    event = ProviderEvent.objects.get()
    assert event.message is None
    # The address is dead whoever sent to it.
    assert BlacklistEntry.objects.filter(email="john@example.com").exists()


def test_mailgun_signed_permanent_failure_blacklists(client, make_server):
    server = make_server(transport="mailgun", host="")
    message = OutgoingMessage.objects.create(
        server=server,
        status=OutgoingMessage.Status.SENT,
        message_id="<m2@club.test>",
        provider_message_id="<20130503182626.18666.16540@sandbox.mailgun.org>",
        from_email="office@club.test",
        envelope_from="office@club.test",
        raw=b"Subject: x\r\n\r\nx\r\n",
    )
    message.provider_ids.create(value=message.provider_message_id)
    message.recipients.create(email="Alice@Example.com", status=Recipient.Status.SENT)
    response = post_mailgun(client, mailgun_signed(MAILGUN_PERMANENT_FAIL))
    assert response.status_code == 200
    entry = BlacklistEntry.objects.get()
    assert (entry.email, entry.reason, entry.source) == (
        "alice@example.com",
        BlacklistEntry.Reason.BOUNCE,
        BlacklistEntry.Source.PROVIDER,
    )
    recipient = message.recipients.get()
    assert recipient.status == Recipient.Status.REFUSED
    event = ProviderEvent.objects.get()
    assert event.event_id == MAILGUN_PERMANENT_FAIL["signature"]["token"]
    assert event.message == message


def test_mailgun_temporary_failure_defers_without_blacklisting(client, sent_message):
    payload = copy.deepcopy(MAILGUN_PERMANENT_FAIL)
    payload["event-data"]["severity"] = "temporary"
    message = sent_message("<20130503182626.18666.16540@sandbox.mailgun.org>", "alice@example.com")
    assert post_mailgun(client, mailgun_signed(payload, token="t" * 50)).status_code == 200
    assert not BlacklistEntry.objects.exists()
    assert message.recipients.get().status == Recipient.Status.DEFERRED


def test_late_deferred_does_not_undo_a_delivery(client, sent_message):
    message = sent_message("<20130503182626.18666.16540@sandbox.mailgun.org>", "alice@example.com")
    delivered = copy.deepcopy(MAILGUN_PERMANENT_FAIL)
    delivered["event-data"].update(event="delivered", severity=None, reason=None)
    assert post_mailgun(client, mailgun_signed(delivered, token="d" * 50)).status_code == 200
    deferred = copy.deepcopy(MAILGUN_PERMANENT_FAIL)
    deferred["event-data"]["severity"] = "temporary"
    assert post_mailgun(client, mailgun_signed(deferred, token="e" * 50)).status_code == 200
    assert message.recipients.get().status == Recipient.Status.SENT


def test_mailgun_wrong_signature_changes_nothing(client):
    forged = mailgun_signed(MAILGUN_PERMANENT_FAIL, key="key-not-the-signing-key")
    assert post_mailgun(client, forged).status_code == 400
    unsigned = copy.deepcopy(MAILGUN_PERMANENT_FAIL)
    assert post_mailgun(client, unsigned).status_code == 400
    # A correct signature of another token does not cover this one.
    replayed = mailgun_signed(MAILGUN_PERMANENT_FAIL)
    replayed["signature"]["token"] = "b" * 50
    assert post_mailgun(client, replayed).status_code == 400
    assert not BlacklistEntry.objects.exists()
    assert not ProviderEvent.objects.exists()


def test_mailgun_correct_signature_but_wrong_basic_auth_changes_nothing(client):
    signed = mailgun_signed(MAILGUN_PERMANENT_FAIL)
    assert post_mailgun(client, signed, secret="tracking:nope").status_code == 400
    assert not BlacklistEntry.objects.exists()
    assert not ProviderEvent.objects.exists()


def test_redirected_recipient_in_test_mode_keeps_its_status(client, sent_message):
    message = sent_message(POSTMARK_DELIVERY["MessageID"])
    message.recipients.create(
        email="member@example.test",
        delivered_to="john@example.com",
        status=Recipient.Status.REDIRECTED,
    )
    assert post_postmark(client, POSTMARK_DELIVERY).status_code == 200
    assert message.recipients.get().status == Recipient.Status.REDIRECTED


def sparkpost_bounce(bounce_class: str, event_id: str) -> list:
    """SparkPost's documented bounce event, with the given bounce class."""
    return [
        {
            "msys": {
                "message_event": {
                    "type": "bounce",
                    "bounce_class": bounce_class,
                    "campaign_id": "Example Campaign Name",
                    "customer_id": "1",
                    "delv_method": "esmtp",
                    "error_code": "554",
                    "event_id": event_id,
                    "friendly_from": "sender@example.com",
                    "ip_address": "127.0.0.1",
                    "message_id": "0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e",
                    "msg_from": "sender@example.com",
                    "msg_size": "1337",
                    "num_retries": "2",
                    "rcpt_to": "recipient@example.com",
                    "raw_rcpt_to": "recipient@example.com",
                    "reason": "000 Example Remote MTA Bounce Message",
                    "raw_reason": "000 Example Remote MTA Bounce Message",
                    "rcpt_type": "cc",
                    "routing_domain": "example.com",
                    "subject": "Summer deals are here!",
                    "timestamp": "1460989507",
                    "transmission_id": "65832150921904138",
                }
            }
        }
    ]


def post_sparkpost(client, payload, *, secret=SECRET):
    return client.post(
        "/anymail/sparkpost/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        **auth(secret),
    )


def test_sparkpost_invalid_recipient_blacklists(client, sent_message):
    message = sent_message("65832150921904138", "recipient@example.com")
    assert post_sparkpost(client, sparkpost_bounce("10", "92356927693813856")).status_code == 200
    entry = BlacklistEntry.objects.get()
    assert (entry.email, entry.reason) == ("recipient@example.com", BlacklistEntry.Reason.BOUNCE)
    assert message.recipients.get().status == Recipient.Status.REFUSED


def test_sparkpost_full_mailbox_refuses_without_blacklisting(client, sent_message):
    message = sent_message("65832150921904138", "recipient@example.com")
    assert post_sparkpost(client, sparkpost_bounce("22", "92356927693813857")).status_code == 200
    assert not BlacklistEntry.objects.exists()
    assert message.recipients.get().status == Recipient.Status.REFUSED


def test_sparkpost_wrong_basic_auth_changes_nothing(client):
    payload = sparkpost_bounce("10", "92356927693813858")
    assert post_sparkpost(client, payload, secret="tracking:guess").status_code == 400
    assert not BlacklistEntry.objects.exists()
    assert not ProviderEvent.objects.exists()


@pytest.mark.parametrize(
    ("esp_event", "reject_reason", "hard"),
    [
        ({"RecordType": "Bounce", "Type": "HardBounce"}, RejectReason.BOUNCED, True),
        ({"RecordType": "Bounce", "Type": "SoftBounce"}, RejectReason.BOUNCED, False),
        ({"RecordType": "SubscriptionChange", "SuppressionReason": "HardBounce"}, None, True),
        ({"event": "hard_bounce"}, RejectReason.BOUNCED, True),  # Brevo
        ({"event": "soft_bounce"}, RejectReason.BOUNCED, False),
        ({"event": "bounce", "hard_bounce": True}, RejectReason.BOUNCED, True),  # Mailjet
        ({"event": "bounce", "hard_bounce": False}, RejectReason.BOUNCED, False),
        ({"bounce": {"bounceType": "Permanent"}}, RejectReason.BOUNCED, True),  # Amazon SES
        ({"bounce": {"bounceType": "Transient"}}, RejectReason.BOUNCED, False),
        ({"data": {"bounce": {"type": "Permanent"}}}, RejectReason.BOUNCED, True),  # Resend
        ({"data": {"bounce": {"type": "Transient"}}}, RejectReason.BOUNCED, False),
        ({"event-data": {"severity": "permanent"}}, RejectReason.BOUNCED, True),  # Mailgun
        ({"event-data": {"severity": "permanent"}}, RejectReason.TIMED_OUT, False),
    ],
)
def test_hard_and_soft_bounces_of_each_service(esp_event, reject_reason, hard):
    event = AnymailTrackingEvent(
        event_type=EventType.BOUNCED,
        reject_reason=reject_reason,
        esp_event=esp_event,
        recipient="a@example.test",
    )
    expected = BlacklistEntry.Reason.BOUNCE if hard else None
    assert provider_event_blacklist_reason(event) == expected


@pytest.mark.parametrize(
    ("event_type", "reject_reason", "expected"),
    [
        (EventType.COMPLAINED, RejectReason.SPAM, BlacklistEntry.Reason.COMPLAINT),
        (EventType.UNSUBSCRIBED, RejectReason.UNSUBSCRIBED, BlacklistEntry.Reason.UNSUBSCRIBE),
        (EventType.REJECTED, RejectReason.BOUNCED, BlacklistEntry.Reason.BOUNCE),
        (EventType.REJECTED, RejectReason.BLOCKED, None),
        (EventType.DELIVERED, None, None),
        (EventType.DEFERRED, None, None),
        (EventType.OPENED, None, None),
    ],
)
def test_which_events_blacklist(event_type, reject_reason, expected):
    event = AnymailTrackingEvent(event_type=event_type, reject_reason=reject_reason, esp_event={})
    assert provider_event_blacklist_reason(event) == expected
