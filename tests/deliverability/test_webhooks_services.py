"""Tracking webhooks of Mailjet, Brevo, Resend and Amazon SES, through anymail's own views.

Each message here is sent the way the queue sends it: through the service's own anymail
backend, the service's API answering with its documented reply (``CannedHttp``; botocore's
session for Amazon SES), and the attempt recorded by ``message_record_attempt``. Then the
service's documented webhook samples (those anymail's own tests use) are posted with the
authentication the service uses, so every test checks that the ids the send side records are
the ids the service's events name:

- Mailjet and Brevo: basic auth only (the ``WEBHOOK_SECRET`` in the webhook's URL);
- Resend: basic auth and the Svix signature, computed here as Svix documents it and checked
  by anymail with the ``svix`` package;
- Amazon SES: SNS notifications with basic auth. anymail does not check SNS signatures (that
  would mean fetching Amazon's certificate), so the secret is their only protection. No
  SubscriptionConfirmation is posted: anymail would call SNS to confirm it.

Nothing leaves the machine: outside the canned send, any HTTP request fails the test.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session

from blacklist.models import BlacklistEntry
from smtpconfig.delivery import message_record_attempt
from smtpconfig.models import OutgoingMessage, ProviderEvent, Recipient
from tests.deliverability.test_esp import CannedHttp, esp_server, raw_message, send
from tests.deliverability.test_webhooks import SECRET, auth

pytestmark = pytest.mark.django_db

CREDENTIALS = {
    "mailjet": {"api_key": "mj-key", "secret_key": "mj-secret"},
    "brevo": {"api_key": "xkeysib-brevo"},
    "resend": {"api_key": "re_123"},
    "amazon_ses": {
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "secret",
        "region": "eu-west-1",
    },
}

# Svix's secrets are "whsec_" and the base64 of the key.
RESEND_SIGNING_SECRET = "whsec_" + base64.b64encode(b"mailadmin-test-signing-key").decode()


@pytest.fixture(autouse=True)
def service_webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "RESEND_SIGNING_SECRET": RESEND_SIGNING_SECRET}


@pytest.fixture(autouse=True)
def nothing_leaves_the_machine(monkeypatch):
    """A webhook is answered from its payload alone: a request anymail would make (an SNS
    confirmation, a certificate, a download) fails the test instead of going out."""

    def refuse(self, request, *args, **kwargs):
        raise AssertionError(f"tried to reach {request.url}")

    monkeypatch.setattr(requests.Session, "send", refuse)
    monkeypatch.setattr(URLLib3Session, "send", refuse)


class _AwsBody:
    def __init__(self, content: bytes):
        self.content = content

    def stream(self):
        yield self.content


@pytest.fixture
def send_through(monkeypatch, make_server):
    """Send a message to ``addresses`` through ``transport``, the service answering
    ``answer`` (HTTP status and JSON; for Amazon SES, the JSON of SendEmail's answer), and
    record the attempt as the queue does."""

    def make(transport: str, answer, *addresses: str) -> OutgoingMessage:
        server = esp_server(make_server, transport, CREDENTIALS[transport])
        message = OutgoingMessage.objects.create(
            server=server,
            status=OutgoingMessage.Status.SENDING,
            message_id="<abc@club.test>",
            from_email="office@club.test",
            envelope_from="office@club.test",
            raw=raw_message(to=addresses),
        )
        for address in addresses:
            message.recipients.create(email=address)
        # The canned answer serves this send only; the webhooks then meet the guard again.
        with monkeypatch.context() as during_send:
            if transport == "amazon_ses":
                body = json.dumps(answer).encode()
                during_send.setattr(
                    URLLib3Session,
                    "send",
                    lambda self, request: AWSResponse(
                        request.url, 200, {"Content-Type": "application/json"}, _AwsBody(body)
                    ),
                )
            else:
                CannedHttp(during_send, answer)
            result = send(server, raw=bytes(message.raw), recipients=addresses)
        message_record_attempt(message=message, result=result, retry=True)
        message.refresh_from_db()
        assert message.status == OutgoingMessage.Status.SENT
        return message

    return make


def recorded_ids(message: OutgoingMessage) -> list[str]:
    return sorted(message.provider_ids.values_list("value", flat=True))


def statuses(message: OutgoingMessage) -> dict[str, str]:
    return dict(message.recipients.values_list("email", "status"))


def blacklisted() -> list[tuple[str, str, str]]:
    return sorted(BlacklistEntry.objects.values_list("email", "reason", "source"))


def nothing_recorded(message: OutgoingMessage) -> bool:
    sent = {address: Recipient.Status.SENT for address in statuses(message)}
    return (
        statuses(message) == sent
        and not BlacklistEntry.objects.exists()
        and not ProviderEvent.objects.exists()
    )


# --- Mailjet --------------------------------------------------------------------------------

MAILJET_URL = "/anymail/mailjet/tracking/"

# Mailjet's documented "bounce" event (Event API).
MAILJET_BOUNCE = {
    "event": "bounce",
    "time": 1430812195,
    "MessageID": 13792286917004336,
    "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
    "email": "bounce@mailjet.com",
    "mj_campaign_id": 0,
    "mj_contact_id": 0,
    "customcampaign": "",
    "CustomID": "helloworld",
    "Payload": "",
    "blocked": False,
    "hard_bounce": True,
    "error_related_to": "recipient",
    "error": "user unknown",
    "comment": "Host or domain name not found. Name service error for "
    "name=lbjsnrftlsiuvbsren.com type=A: Host not found",
}
# Mailjet's documented "sent" event: the receiving server took the message. Its MessageID is
# above 2**53, where a JSON reader that makes numbers floats would lose the last digits.
MAILJET_SENT = {
    "event": "sent",
    "time": 1433333949,
    "MessageID": 19421777835146490,
    "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
    "email": "api@mailjet.com",
    "mj_campaign_id": 7257,
    "mj_contact_id": 4,
    "customcampaign": "",
    "mj_message_id": "19421777835146490",
    "smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
    "CustomID": "helloworld",
    "Payload": "",
}


def mailjet_answer(*sent: tuple[str, int]) -> tuple[int, dict]:
    """Mailjet's documented answer to a send (API v3.1): one MessageID, a JSON number, for
    each recipient."""
    return (
        200,
        {
            "Messages": [
                {
                    "Status": "success",
                    "CustomID": "",
                    "To": [
                        {
                            "Email": address,
                            "MessageUUID": f"uuid-{message_id}",
                            "MessageID": message_id,
                            "MessageHref": f"https://api.mailjet.com/v3/REST/message/{message_id}",
                        }
                        for address, message_id in sent
                    ],
                    "Cc": [],
                    "Bcc": [],
                }
            ]
        },
    )


def post_mailjet(client, payload, *, secret=SECRET):
    return client.post(
        MAILJET_URL, data=json.dumps(payload), content_type="application/json", **auth(secret)
    )


def test_mailjet_hard_bounce_blacklists_and_refuses_the_recipient(client, send_through):
    message = send_through(
        "mailjet", mailjet_answer(("bounce@mailjet.com", 13792286917004336)), "bounce@mailjet.com"
    )
    assert post_mailjet(client, [MAILJET_BOUNCE]).status_code == 200
    assert blacklisted() == [
        ("bounce@mailjet.com", BlacklistEntry.Reason.BOUNCE, BlacklistEntry.Source.PROVIDER)
    ]
    assert statuses(message) == {"bounce@mailjet.com": Recipient.Status.REFUSED}
    event = ProviderEvent.objects.get()
    assert (event.provider, event.event_type, event.message) == ("Mailjet", "bounced", message)
    # Mailjet gives events no id: a digest of the event's facts stands in.
    assert event.event_id.startswith("sha256:")


def test_mailjet_sent_marks_the_deferred_recipient_sent(client, send_through):
    message = send_through(
        "mailjet", mailjet_answer(("api@mailjet.com", 19421777835146490)), "api@mailjet.com"
    )
    message.recipients.update(status=Recipient.Status.DEFERRED)
    # Without "group events" Mailjet posts a bare event rather than a list.
    assert post_mailjet(client, MAILJET_SENT).status_code == 200
    recipient = message.recipients.get()
    assert recipient.status == Recipient.Status.SENT
    assert recipient.reply == MAILJET_SENT["smtp_reply"]
    assert not BlacklistEntry.objects.exists()


def test_each_mailjet_recipients_id_brings_its_event_to_the_message(client, send_through):
    message = send_through(
        "mailjet",
        mailjet_answer(
            ("api@mailjet.com", 19421777835146490), ("bounce@mailjet.com", 13792286917004336)
        ),
        "api@mailjet.com",
        "bounce@mailjet.com",
    )
    # One id per recipient, recorded as the exact digits of Mailjet's JSON numbers: the
    # same strings anymail's webhook makes of the events' MessageID.
    assert recorded_ids(message) == ["13792286917004336", "19421777835146490"]
    assert post_mailjet(client, [MAILJET_SENT, MAILJET_BOUNCE]).status_code == 200
    assert statuses(message) == {
        "api@mailjet.com": Recipient.Status.SENT,
        "bounce@mailjet.com": Recipient.Status.REFUSED,
    }
    events = dict(ProviderEvent.objects.values_list("provider_message_id", "message"))
    assert events == {"19421777835146490": message.pk, "13792286917004336": message.pk}
    assert [entry[0] for entry in blacklisted()] == ["bounce@mailjet.com"]


def test_mailjet_wrong_or_missing_basic_auth_changes_nothing(client, send_through):
    message = send_through(
        "mailjet", mailjet_answer(("bounce@mailjet.com", 13792286917004336)), "bounce@mailjet.com"
    )
    assert post_mailjet(client, [MAILJET_BOUNCE], secret="tracking:wrong").status_code == 400
    unauthenticated = client.post(
        MAILJET_URL, data=json.dumps([MAILJET_BOUNCE]), content_type="application/json"
    )
    assert unauthenticated.status_code == 400
    assert nothing_recorded(message)


# --- Brevo ----------------------------------------------------------------------------------

BREVO_URL = "/anymail/brevo/tracking/"
BREVO_MESSAGE_ID = "<201803011158.9876543210@smtp-relay.mailin.fr>"

# Brevo's "hard_bounce" event as anymail's tests record it from a live send.
BREVO_HARD_BOUNCE = {
    "event": "hard_bounce",
    "email": "not-a-user@example.com",
    "ts_epoch": 1520363423000,
    "message-id": BREVO_MESSAGE_ID,
    "reason": " RecipientError: 550 5.5.0 Requested action not taken: mailbox unavailable.",
    "tag": "header-tag",
}
# Brevo's "delivered" event, likewise.
BREVO_DELIVERED = {
    "event": "delivered",
    "email": "recipient@example.com",
    "ts_epoch": 1520363423000,
    "message-id": BREVO_MESSAGE_ID,
}


def brevo_answer(message_id: str) -> tuple[int, dict]:
    """Brevo's documented answer to a send: one messageId for all the recipients."""
    return 201, {"messageId": message_id}


def post_brevo(client, payload, *, secret=SECRET):
    return client.post(
        BREVO_URL, data=json.dumps(payload), content_type="application/json", **auth(secret)
    )


@pytest.fixture
def brevo_message(send_through):
    return send_through(
        "brevo",
        brevo_answer(BREVO_MESSAGE_ID),
        "recipient@example.com",
        "not-a-user@example.com",
    )


def test_brevo_hard_bounce_blacklists_and_refuses_that_recipient_only(client, brevo_message):
    # The id keeps its angle brackets on both sides: the API's answer and the webhook's.
    assert recorded_ids(brevo_message) == [BREVO_MESSAGE_ID]
    assert post_brevo(client, BREVO_HARD_BOUNCE).status_code == 200
    assert blacklisted() == [
        ("not-a-user@example.com", BlacklistEntry.Reason.BOUNCE, BlacklistEntry.Source.PROVIDER)
    ]
    assert statuses(brevo_message) == {
        "recipient@example.com": Recipient.Status.SENT,
        "not-a-user@example.com": Recipient.Status.REFUSED,
    }
    refused = brevo_message.recipients.get(email="not-a-user@example.com")
    assert "mailbox unavailable" in refused.reply
    assert ProviderEvent.objects.get().message == brevo_message


def test_brevo_delivered_marks_the_deferred_recipient_sent(client, brevo_message):
    brevo_message.recipients.update(status=Recipient.Status.DEFERRED)
    assert post_brevo(client, BREVO_DELIVERED).status_code == 200
    assert statuses(brevo_message) == {
        "recipient@example.com": Recipient.Status.SENT,
        "not-a-user@example.com": Recipient.Status.DEFERRED,
    }
    assert not BlacklistEntry.objects.exists()


def test_brevo_wrong_or_missing_basic_auth_changes_nothing(client, brevo_message):
    assert post_brevo(client, BREVO_HARD_BOUNCE, secret="tracking:wrong").status_code == 400
    unauthenticated = client.post(
        BREVO_URL, data=json.dumps(BREVO_HARD_BOUNCE), content_type="application/json"
    )
    assert unauthenticated.status_code == 400
    assert nothing_recorded(brevo_message)


def test_brevo_documented_webhook_id_without_brackets_finds_the_message(client, send_through):
    # Brevo's API reference shows the send's messageId in angle brackets, and its webhook
    # documentation shows the same id bare. (The documented sample's "X-Mailin-custom":
    # "some_custom_header" is left out: anymail reads that header as JSON metadata and fails
    # with a 500 on anything else; Mailadmin does not set it.)
    message = send_through(
        "brevo", brevo_answer("<201798300811.5787683@relay.domain.com>"), "example@domain.com"
    )
    documented_hard_bounce = {
        "event": "hard_bounce",
        "email": "example@domain.com",
        "id": "xxxxx",
        "date": "2020-10-09 00:00:00",
        "ts": 1604933619,
        "message-id": "201798300811.5787683@relay.domain.com",
        "ts_event": 1604933654,
        "subject": "My first Transactional",
        "sending_ip": "xxx.xxx.xxx.xxx",
        "template_id": 22,
        "tags": ["transac_messages"],
        "reason": "server is down",
        "ts_epoch": 1604933653,
    }
    assert post_brevo(client, documented_hard_bounce).status_code == 200
    assert ProviderEvent.objects.get().message == message
    assert statuses(message) == {"example@domain.com": Recipient.Status.REFUSED}


# --- Resend ---------------------------------------------------------------------------------

RESEND_URL = "/anymail/resend/tracking/"
RESEND_EMAIL_ID = "56761188-7520-42d8-8898-ff6fc54ce618"

# Resend's documented "email.bounced" event.
RESEND_BOUNCED = {
    "type": "email.bounced",
    "created_at": "2024-11-22T23:41:12.126Z",
    "data": {
        "broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216",
        "created_at": "2024-11-22T23:41:11.894719+00:00",
        "email_id": RESEND_EMAIL_ID,
        "from": "Acme <onboarding@resend.dev>",
        "to": ["delivered@resend.dev"],
        "subject": "Sending this example",
        "template_id": "43f68331-0622-4e15-8202-246a0388854b",
        "bounce": {
            "message": "The recipient's email address is on the suppression list because it "
            "has a recent history of producing hard bounces.",
            "subType": "Suppressed",
            "type": "Permanent",
        },
        "tags": {"category": "confirm_email"},
    },
}
# Resend's documented "email.delivered" event.
RESEND_DELIVERED = {
    "type": "email.delivered",
    "created_at": "2024-02-22T23:41:12.126Z",
    "data": {
        "broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216",
        "created_at": "2024-02-22T23:41:11.894719+00:00",
        "email_id": RESEND_EMAIL_ID,
        "from": "Acme <onboarding@resend.dev>",
        "to": ["delivered@resend.dev"],
        "subject": "Sending this example",
        "template_id": "43f68331-0622-4e15-8202-246a0388854b",
        "tags": {"category": "confirm_email"},
    },
}


def svix_headers(
    body: bytes, *, svix_id: str, secret: str = RESEND_SIGNING_SECRET, timestamp: int = 0
) -> dict:
    """Svix's signature as its documentation describes it: HMAC-SHA256 of
    "<id>.<timestamp>.<body>", keyed with the secret's base64 part, sent base64-encoded
    after "v1,"."""
    sent_at = str(timestamp or int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{svix_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": svix_id,
        "svix-timestamp": sent_at,
        "svix-signature": "v1," + base64.b64encode(digest).decode(),
    }


def post_resend(client, payload, *, svix_id="msg_2W2D3qXLS5fOaPja1GDg7rF2CwB", secret=SECRET):
    body = json.dumps(payload).encode()
    return client.post(
        RESEND_URL,
        data=body,
        content_type="application/json",
        headers=svix_headers(body, svix_id=svix_id),
        **auth(secret),
    )


@pytest.fixture
def resend_message(send_through):
    # Resend's events name one recipient (anymail reports the first "to"): one per message.
    return send_through("resend", (200, {"id": RESEND_EMAIL_ID}), "delivered@resend.dev")


def test_resend_hard_bounce_blacklists_and_refuses_the_recipient(client, resend_message):
    assert recorded_ids(resend_message) == [RESEND_EMAIL_ID]
    assert post_resend(client, RESEND_BOUNCED).status_code == 200
    assert blacklisted() == [
        ("delivered@resend.dev", BlacklistEntry.Reason.BOUNCE, BlacklistEntry.Source.PROVIDER)
    ]
    recipient = resend_message.recipients.get()
    assert recipient.status == Recipient.Status.REFUSED
    assert "suppression list" in recipient.reply
    event = ProviderEvent.objects.get()
    # The Svix message id names the event, and a repost of it changes nothing.
    assert (event.provider, event.event_id, event.message) == (
        "Resend",
        "msg_2W2D3qXLS5fOaPja1GDg7rF2CwB",
        resend_message,
    )
    assert post_resend(client, RESEND_BOUNCED).status_code == 200
    assert ProviderEvent.objects.count() == 1


def test_resend_delivered_marks_the_deferred_recipient_sent(client, resend_message):
    resend_message.recipients.update(status=Recipient.Status.DEFERRED)
    assert post_resend(client, RESEND_DELIVERED, svix_id="msg_delivered").status_code == 200
    assert resend_message.recipients.get().status == Recipient.Status.SENT
    assert not BlacklistEntry.objects.exists()


def test_resend_without_a_valid_signature_changes_nothing(client, resend_message):
    body = json.dumps(RESEND_BOUNCED).encode()

    def post(headers, data=body, **extra):
        return client.post(
            RESEND_URL, data=data, content_type="application/json", headers=headers, **extra
        )

    other_secret = "whsec_" + base64.b64encode(b"somebody-else").decode()
    forged = svix_headers(body, svix_id="msg_1", secret=other_secret)
    assert post(forged, **auth()).status_code == 400
    assert post({}, **auth()).status_code == 400
    # A signature covers its body: the same headers on another body do not pass.
    other_body = json.dumps({**RESEND_BOUNCED, "type": "email.complained"}).encode()
    assert post(svix_headers(body, svix_id="msg_2"), data=other_body, **auth()).status_code == 400
    # Svix refuses timestamps more than five minutes old: a captured post cannot be replayed.
    stale = svix_headers(body, svix_id="msg_3", timestamp=int(time.time()) - 3600)
    assert post(stale, **auth()).status_code == 400
    # A correct signature does not replace the basic auth.
    assert post(svix_headers(body, svix_id="msg_4")).status_code == 400
    assert post(svix_headers(body, svix_id="msg_5"), **auth("tracking:wrong")).status_code == 400
    assert nothing_recorded(resend_message)


def test_a_resend_event_for_a_message_to_several_members_changes_no_recipient(client, send_through):
    # Resend sends one event per recipient and does not say which: anymail reports the
    # first "To", who may not be the member who bounced.
    message = send_through(
        "resend", (200, {"id": RESEND_EMAIL_ID}), "delivered@resend.dev", "other@example.com"
    )
    assert post_resend(client, RESEND_BOUNCED).status_code == 200
    assert not BlacklistEntry.objects.exists()
    assert set(statuses(message).values()) == {Recipient.Status.SENT}
    event = ProviderEvent.objects.get()
    assert (event.message, event.recipient, event.event_type) == (message, "", "bounced")


def test_a_resend_event_names_the_one_member_the_message_was_given_to(client, send_through):
    message = send_through(
        "resend", (200, {"id": RESEND_EMAIL_ID}), "delivered@resend.dev", "gone@example.com"
    )
    # Blacklisted before: suppressed, so never given to the service.
    message.recipients.filter(email="gone@example.com").update(status=Recipient.Status.SUPPRESSED)
    assert post_resend(client, RESEND_BOUNCED).status_code == 200
    assert [entry[0] for entry in blacklisted()] == ["delivered@resend.dev"]
    assert statuses(message) == {
        "delivered@resend.dev": Recipient.Status.REFUSED,
        "gone@example.com": Recipient.Status.SUPPRESSED,
    }


def test_a_resend_event_for_an_unknown_message_blacklists_nobody(client):
    # Its Cc and Bcc are unknown: the first "To" may not be the member who bounced.
    assert post_resend(client, RESEND_BOUNCED).status_code == 200
    assert not BlacklistEntry.objects.exists()
    event = ProviderEvent.objects.get()
    assert (event.message, event.recipient) == (None, "")


# --- Amazon SES -----------------------------------------------------------------------------

SES_URL = "/anymail/amazon_ses/tracking/"

# Amazon SES's documented bounce notification: one of three recipients bounced.
SES_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "reportingMTA": "dns; email.example.com",
        "bouncedRecipients": [
            {
                "emailAddress": "jane@example.com",
                "status": "5.1.1",
                "action": "failed",
                "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User unknown",
            }
        ],
        "bounceSubType": "General",
        "timestamp": "2016-01-27T14:59:44.101Z",
        "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
        "remoteMtaIp": "127.0.2.0",
    },
    "mail": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-west-2:888888888888:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": '"John Doe" <john@example.com>'},
            {"name": "Subject", "value": "Hello"},
        ],
        "commonHeaders": {
            "from": ["John Doe <john@example.com>"],
            "date": "Wed, 27 Jan 2016 14:05:45 +0000",
            "messageId": "custom-message-ID",
            "subject": "Hello",
        },
    },
}
# A bounce notification that names two recipients (as in anymail's tests).
SES_BOUNCE_OF_TWO = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {"emailAddress": "jane@example.com"},
            {"emailAddress": "richard@example.com"},
        ],
    },
    "mail": {
        "messageId": "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
        "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
    },
}
# Amazon SES's documented delivery notification.
SES_DELIVERY = {
    "notificationType": "Delivery",
    "mail": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "messageId": "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
    },
    "delivery": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "recipients": ["jane@example.com"],
        "processingTimeMillis": 546,
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "smtpResponse": "250 ok:  Message 64111812 accepted",
        "remoteMtaIp": "127.0.2.0",
    },
}
SES_MEMBERS = ("jane@example.com", "mary@example.com", "richard@example.com")


def sns_notification(ses_event: dict, *, sns_id: str) -> dict:
    """The SNS envelope of an SES event, as SNS posts it to an HTTPS subscription."""
    return {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:1234567890:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def post_ses(client, notification: dict, *, credentials=None, **headers):
    """SNS posts JSON as text/plain, with its type and id in headers too."""
    sns_headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_ID": notification["MessageId"],
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": notification["Type"],
        **(auth() if credentials is None else credentials),
        **headers,
    }
    return client.post(
        SES_URL,
        data=json.dumps(notification),
        content_type="text/plain; charset=UTF-8",
        **sns_headers,
    )


def ses_message(send_through, ses_event: dict) -> OutgoingMessage:
    """A message to the three members whose SendEmail answer was the event's message id."""
    message_id = ses_event["mail"]["messageId"]
    message = send_through("amazon_ses", {"MessageId": message_id}, *SES_MEMBERS)
    assert recorded_ids(message) == [message_id]
    return message


def test_ses_hard_bounce_blacklists_and_refuses_that_recipient_only(client, send_through):
    message = ses_message(send_through, SES_BOUNCE)
    notification = sns_notification(SES_BOUNCE, sns_id="19ba9823-d7f2-53c1-860e-cb10e0d13dfc")
    assert post_ses(client, notification).status_code == 200
    assert blacklisted() == [
        ("jane@example.com", BlacklistEntry.Reason.BOUNCE, BlacklistEntry.Source.PROVIDER)
    ]
    assert statuses(message) == {
        "jane@example.com": Recipient.Status.REFUSED,
        "mary@example.com": Recipient.Status.SENT,
        "richard@example.com": Recipient.Status.SENT,
    }
    jane = message.recipients.get(email="jane@example.com")
    assert "Permanent: General" in jane.reply and "User unknown" in jane.reply
    assert ProviderEvent.objects.get().message == message


def test_ses_bounce_of_two_recipients_refuses_and_blacklists_both(client, send_through):
    # One SNS notification, one MessageId, two anymail events: each is its own event.
    message = ses_message(send_through, SES_BOUNCE_OF_TWO)
    notification = sns_notification(SES_BOUNCE_OF_TWO, sns_id="29ba9823-d7f2-53c1-860e-cb10e0d1")
    assert post_ses(client, notification).status_code == 200
    assert statuses(message) == {
        "jane@example.com": Recipient.Status.REFUSED,
        "mary@example.com": Recipient.Status.SENT,
        "richard@example.com": Recipient.Status.REFUSED,
    }
    assert [entry[0] for entry in blacklisted()] == ["jane@example.com", "richard@example.com"]
    assert sorted(ProviderEvent.objects.values_list("event_id", flat=True)) == [
        "29ba9823-d7f2-53c1-860e-cb10e0d1:jane@example.com",
        "29ba9823-d7f2-53c1-860e-cb10e0d1:richard@example.com",
    ]
    # SNS delivers at least once: the same notification again changes nothing.
    assert post_ses(client, notification).status_code == 200
    assert ProviderEvent.objects.filter(message=message).count() == 2


def test_ses_delivery_marks_the_deferred_recipient_sent(client, send_through):
    message = ses_message(send_through, SES_DELIVERY)
    message.recipients.update(status=Recipient.Status.DEFERRED)
    notification = sns_notification(SES_DELIVERY, sns_id="39ba9823-d7f2-53c1-860e-cb10e0d1")
    assert post_ses(client, notification).status_code == 200
    assert statuses(message) == {
        "jane@example.com": Recipient.Status.SENT,
        "mary@example.com": Recipient.Status.DEFERRED,
        "richard@example.com": Recipient.Status.DEFERRED,
    }
    assert message.recipients.get(email="jane@example.com").reply.startswith("250 ok")
    assert not BlacklistEntry.objects.exists()


def test_ses_without_the_secret_changes_nothing(client, send_through):
    message = ses_message(send_through, SES_BOUNCE)
    notification = sns_notification(SES_BOUNCE, sns_id="49ba9823-d7f2-53c1-860e-cb10e0d1")
    # SNS sends basic auth only once asked for it: anymail answers 401 with a challenge.
    challenged = post_ses(client, notification, credentials={})
    assert challenged.status_code == 401
    assert challenged["WWW-Authenticate"].startswith("Basic ")
    assert post_ses(client, notification, credentials=auth("tracking:wrong")).status_code == 400
    # Headers that do not match the body are refused too.
    mismatched = post_ses(client, notification, HTTP_X_AMZ_SNS_MESSAGE_ID="another-id")
    assert mismatched.status_code == 400
    assert nothing_recorded(message)


def test_ses_notifications_are_trusted_on_the_secret_alone(client, send_through):
    """anymail does not check the SNS signature (it would fetch SigningCertURL): with the
    right basic auth a notification whose signature is nonsense is taken, offline."""
    message = ses_message(send_through, SES_BOUNCE)
    notification = sns_notification(SES_BOUNCE, sns_id="59ba9823-d7f2-53c1-860e-cb10e0d1")
    notification["Signature"] = "not-a-signature"
    assert post_ses(client, notification).status_code == 200
    assert ProviderEvent.objects.get().message == message
