"""E-mail services through anymail: each service's own backend, built from the server's
credentials, with only the provider's HTTP API replaced by a canned response.

Nothing here reaches the network: ``requests``' session send (and botocore's, for Amazon SES)
returns the provider's documented answer and records the request that would have gone out.
"""

import json
from email.message import MIMEPart

import pytest
import requests
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.message import AnymailRecipientStatus, AnymailStatus
from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from hypothesis import given
from hypothesis import strategies as st

from smtpconfig.delivery import outbox_drain
from smtpconfig.esp import (
    ESP_SERVICES,
    EspConnection,
    classify_esp_error,
    email_message_from_raw,
    esp_credentials_validate,
    send_result_from_status,
)
from smtpconfig.exceptions import InvalidMessage
from smtpconfig.models import OutgoingMessage
from smtpconfig.replies import Outcome
from smtpconfig.transport import ConnectionFailed, SendResult
from tests.queue.factory import queued_messages

pytestmark = pytest.mark.django_db

SUBJECT = "Tee times — Saturday"


def raw_message(*, to=("member@example.test",), cc=(), bcc=(), html=True, extra=None) -> bytes:
    message = EmailMultiAlternatives(
        subject=SUBJECT,
        body="Text body",
        from_email="Golf Club <office@club.test>",
        to=list(to),
        cc=list(cc),
        bcc=list(bcc),
        reply_to=["captain@club.test"],
        headers={"Message-ID": "<abc@club.test>", **(extra or {})},
    )
    if html:
        message.attach_alternative("<p>HTML body</p>", "text/html")
    message.attach("results.csv", "name,score\nAnn,72\n", "text/csv")
    return message.message().as_bytes()


class CannedHttp:
    """Replaces ``requests.Session.send``: records each request, answers from a list."""

    def __init__(self, monkeypatch, *answers):
        self.requests = []
        self.answers = list(answers)
        monkeypatch.setattr(requests.Session, "send", self.send)

    def send(self, request, **kwargs):
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def body(self, index=0) -> str:
        body = self.requests[index].body
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def esp_server(make_server, transport, credentials):
    return make_server(transport=transport, host="", credentials=json.dumps(credentials), timeout=7)


def send(server, raw=None, recipients=("member@example.test",)):
    connection = EspConnection(server)
    connection.open()
    try:
        return connection.send(
            envelope_from="office@club.test", recipients=list(recipients), raw=raw or raw_message()
        )
    finally:
        connection.close()


# Each service's documented answer to a successful send.
SERVICES = [
    (
        "postmark",
        {"server_token": "pm-token"},
        (
            200,
            {
                "To": "member@example.test",
                "SubmittedAt": "2026-11-27T10:00:00Z",
                "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
                "ErrorCode": 0,
                "Message": "OK",
            },
        ),
        "api.postmarkapp.com",
        "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "pm-token",
    ),
    (
        "mailgun",
        {"api_key": "mg-key", "sender_domain": "mg.club.test"},
        (200, {"id": "<20261127.1@mg.club.test>", "message": "Queued. Thank you."}),
        "api.mailgun.net",
        "<20261127.1@mg.club.test>",
        None,
    ),
    (
        "brevo",
        {"api_key": "xkeysib-brevo"},
        (201, {"messageId": "<202611271000.123@smtp-relay.mailin.fr>"}),
        "api.brevo.com",
        "<202611271000.123@smtp-relay.mailin.fr>",
        "xkeysib-brevo",
    ),
    (
        "mailjet",
        {"api_key": "mj-key", "secret_key": "mj-secret"},
        (
            200,
            {
                "Messages": [
                    {
                        "Status": "success",
                        "To": [
                            {
                                "Email": "member@example.test",
                                "MessageUUID": "cb927469-36fd-4c02-bce4-0d199929a207",
                                "MessageID": 70650219165027410,
                                "MessageHref": "https://api.mailjet.com/v3/message/70650219165027410",
                            }
                        ],
                        "Cc": [],
                        "Bcc": [],
                    }
                ]
            },
        ),
        "api.mailjet.com",
        "70650219165027410",
        None,
    ),
    (
        "resend",
        {"api_key": "re_123"},
        (200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}),
        "api.resend.com",
        "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794",
        "re_123",
    ),
    (
        "sparkpost",
        {"api_key": "sp-key"},
        (
            200,
            {
                "results": {
                    "total_rejected_recipients": 0,
                    "total_accepted_recipients": 1,
                    "id": "11668787484950529",
                }
            },
        ),
        "api.sparkpost.com",
        "11668787484950529",
        "sp-key",
    ),
]


@pytest.mark.parametrize(
    ("transport", "credentials", "answer", "host", "provider_id", "secret_in_header"),
    SERVICES,
    ids=[service[0] for service in SERVICES],
)
def test_each_service_sends_through_its_own_backend(
    monkeypatch, make_server, transport, credentials, answer, host, provider_id, secret_in_header
):
    http = CannedHttp(monkeypatch, answer)
    server = esp_server(make_server, transport, credentials)
    result = send(server)
    assert isinstance(result, SendResult)
    assert result.outcome == Outcome.ACCEPTED
    assert [(r.email, r.outcome) for r in result.recipients] == [
        ("member@example.test", Outcome.ACCEPTED)
    ]
    assert result.provider_message_ids == (provider_id,)
    (request,) = http.requests
    assert request.url.startswith(f"https://{host}/")
    if secret_in_header:
        assert any(secret_in_header in value for value in request.headers.values())
    else:
        assert request.headers["Authorization"].startswith("Basic ")
    body = http.body()
    assert "member@example.test" in body
    assert "results.csv" in body


def test_amazon_ses_sends_through_boto3(monkeypatch, make_server):
    sent = []

    class Raw:
        def __init__(self, content):
            self.content = content

        def stream(self):
            yield self.content

    def fake_send(self, request):
        sent.append(request)
        body = json.dumps({"MessageId": "0100018c-ses-id"}).encode()
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Raw(body))

    monkeypatch.setattr(URLLib3Session, "send", fake_send)
    server = esp_server(
        make_server,
        "amazon_ses",
        {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret", "region": "eu-west-1"},
    )
    result = send(server)
    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_ids == ("0100018c-ses-id",)
    (request,) = sent
    assert request.url.startswith("https://email.eu-west-1.amazonaws.com/")
    assert "AKIAEXAMPLE" in request.headers["Authorization"].decode()


def test_amazon_ses_throttling_is_quota(monkeypatch, make_server):
    class Raw:
        def stream(self):
            yield json.dumps({"message": "Maximum sending rate exceeded."}).encode()

    def fake_send(self, request):
        return AWSResponse(
            request.url,
            429,
            {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
            Raw(),
        )

    monkeypatch.setattr(URLLib3Session, "send", fake_send)
    server = esp_server(
        make_server,
        "amazon_ses",
        {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret", "region": "eu-west-1"},
    )
    assert send(server).outcome == Outcome.QUOTA


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (401, {"ErrorCode": 10, "Message": "Bad or missing Server API token"}, Outcome.CREDENTIALS),
        (403, {"ErrorCode": 10, "Message": "Forbidden"}, Outcome.CREDENTIALS),
        (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, Outcome.QUOTA),
        (500, {"ErrorCode": 0, "Message": "Internal server error"}, Outcome.TEMPORARY),
        (503, {"ErrorCode": 0, "Message": "Service unavailable"}, Outcome.TEMPORARY),
        (422, {"ErrorCode": 300, "Message": "Invalid email request"}, Outcome.PERMANENT),
    ],
)
def test_postmark_api_errors_are_classified(monkeypatch, make_server, status, body, outcome):
    CannedHttp(monkeypatch, (status, body))
    result = send(esp_server(make_server, "postmark", {"server_token": "pm-token"}))
    assert result.outcome == outcome
    assert result.code == status


def test_inactive_recipient_is_refused_per_recipient(monkeypatch, make_server):
    # Postmark answers 422 with ErrorCode 406 for an address it has deactivated.
    CannedHttp(
        monkeypatch,
        (
            422,
            {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as "
                "inactive.\n Found inactive addresses: member@example.test.\n Inactive "
                "recipients are ones that have generated a hard bounce or a spam complaint. ",
            },
        ),
    )
    result = send(esp_server(make_server, "postmark", {"server_token": "pm-token"}))
    assert result.outcome == Outcome.PERMANENT
    assert result.code == 422
    assert [(r.email, r.outcome) for r in result.recipients] == [
        ("member@example.test", Outcome.PERMANENT)
    ]


def test_network_error_is_temporary(monkeypatch, make_server):
    CannedHttp(monkeypatch, requests.ConnectionError("connection reset"))
    result = send(esp_server(make_server, "postmark", {"server_token": "pm-token"}))
    assert result.outcome == Outcome.TEMPORARY
    assert result.code is None


def test_a_service_that_does_not_answer_closes_the_connection_one_that_answers_does_not(
    monkeypatch, make_server
):
    busy = (503, {"message": "Service temporarily unavailable"})
    ok = (200, {"id": "<x@mg.club.test>", "message": "Queued. Thank you."})
    CannedHttp(monkeypatch, busy, requests.ConnectionError("connection reset"), ok)
    connection = EspConnection(esp_server(make_server, "mailgun", {"api_key": "k"}))
    connection.open()

    def one():
        return connection.send(
            envelope_from="office@club.test", recipients=["member@example.test"], raw=raw_message()
        )

    assert (one().code, connection.is_open) == (503, True)
    assert (one().code, connection.is_open) == (None, False)
    connection.open()  # as the next pass does
    assert one().outcome == Outcome.ACCEPTED
    connection.close()


def test_a_drain_stops_where_the_service_stops_answering(monkeypatch, make_server):
    ok = (200, {"id": "<x@mg.club.test>", "message": "Queued. Thank you."})
    http = CannedHttp(monkeypatch, ok, requests.ConnectionError("connection reset"), ok, ok)
    server = esp_server(make_server, "mailgun", {"api_key": "k"})
    messages = queued_messages(server=server, count=4)
    report = outbox_drain()
    assert (report.sent, report.deferred, report.requeued) == (1, 1, 2)
    assert len(http.requests) == 2  # the rest was not tried in vain
    statuses = [OutgoingMessage.objects.get(pk=m.pk).status for m in messages]
    assert statuses == ["sent", "deferred", "queued", "queued"]


def test_one_connection_sends_several_messages(monkeypatch, make_server):
    ok = (200, {"id": "<x@mg.club.test>", "message": "Queued. Thank you."})
    http = CannedHttp(monkeypatch, ok, ok)
    connection = EspConnection(esp_server(make_server, "mailgun", {"api_key": "k"}))
    connection.open()
    assert connection.is_open
    for _ in range(2):
        result = connection.send(
            envelope_from="office@club.test", recipients=["member@example.test"], raw=raw_message()
        )
        assert result.outcome == Outcome.ACCEPTED
    connection.close()
    assert not connection.is_open
    assert len(http.requests) == 2
    connection.close()  # a second close is harmless


@pytest.mark.parametrize(
    "credentials",
    ["", "not json", json.dumps({"api_key": ""}), json.dumps({"token": "x"}), json.dumps([1])],
)
def test_unusable_credentials_fail_open_as_credentials(make_server, credentials):
    server = make_server(transport="postmark", host="", credentials=credentials)
    connection = EspConnection(server)
    with pytest.raises(ConnectionFailed) as failure:
        connection.open()
    assert failure.value.outcome == Outcome.CREDENTIALS
    assert not connection.is_open


def test_credentials_are_validated_per_service():
    assert esp_credentials_validate(
        transport="mailjet", credentials={"api_key": " k ", "secret_key": "s"}
    ) == {"api_key": "k", "secret_key": "s"}
    with pytest.raises(ValidationError, match="secret_key"):
        esp_credentials_validate(transport="mailjet", credentials={"api_key": "k"})
    with pytest.raises(ValidationError, match="access_key_id, secret_access_key"):
        esp_credentials_validate(transport="amazon_ses", credentials={"region": "eu-west-1"})
    with pytest.raises(ValidationError, match="Unknown credentials for postmark: api_key"):
        esp_credentials_validate(
            transport="postmark", credentials={"server_token": "t", "api_key": 1}
        )
    with pytest.raises(ValidationError, match="not an e-mail service"):
        esp_credentials_validate(transport="smtp", credentials={})
    assert set(ESP_SERVICES) == {
        "amazon_ses",
        "brevo",
        "mailgun",
        "mailjet",
        "postmark",
        "resend",
        "sparkpost",
    }


def test_the_stored_message_is_rebuilt_faithfully_for_anymail(make_server):
    """Through anymail's test backend: what a service's API would be given."""
    image = MIMEPart()
    image.set_content(
        b"\x89PNG\r\n\x1a\nfake",
        maintype="image",
        subtype="png",
        disposition="inline",
        filename="logo.png",
        cid="<logo@club.test>",
    )
    source = EmailMultiAlternatives(
        subject=SUBJECT,
        body="Text body",
        from_email="Golf Club <office@club.test>",
        to=["member@example.test"],
        cc=["coach@example.test"],
        bcc=["archive@club.test"],
        reply_to=["captain@club.test"],
        headers={
            "Message-ID": "<abc@club.test>",
            "List-Unsubscribe": "<https://mail.club.test/unsubscribe/x/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    source.attach_alternative('<p>HTML <img src="cid:logo@club.test"></p>', "text/html")
    source.attach("results.csv", "name,score\nAnn,72\n", "text/csv")
    source.attach("scorecard.pdf", b"%PDF-1.4 fake", "application/pdf")
    source.attach(image)
    raw = source.message().as_bytes()
    mail.outbox = []
    server = make_server(transport="postmark", host="")
    connection = EspConnection(server, backend=AnymailTestBackend())
    connection.open()
    result = connection.send(
        envelope_from="office@club.test",
        recipients=["member@example.test", "coach@example.test", "archive@club.test"],
        raw=raw,
    )
    connection.close()
    assert result.outcome == Outcome.ACCEPTED
    (sent,) = mail.outbox
    params = sent.anymail_test_params
    assert params["subject"] == SUBJECT
    assert params["from"].address == "Golf Club <office@club.test>"
    assert [a.addr_spec for a in params["to"]] == ["member@example.test"]
    assert [a.addr_spec for a in params["cc"]] == ["coach@example.test"]
    assert [a.addr_spec for a in params["bcc"]] == ["archive@club.test"]
    assert [a.addr_spec for a in params["reply_to"]] == ["captain@club.test"]
    assert params["text_body"] == "Text body\n"
    assert "cid:logo@club.test" in params["html_body"]
    headers = params["extra_headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Message-ID"] == "<abc@club.test>"
    assert "Content-Type" not in headers and "To" not in headers
    attachments = {a.name: a for a in params["attachments"]}
    assert attachments["results.csv"].content == "name,score\nAnn,72\n"
    assert attachments["scorecard.pdf"].content == b"%PDF-1.4 fake"
    assert attachments["logo.png"].inline and attachments["logo.png"].cid == "logo@club.test"


def test_only_the_envelope_recipients_receive_it(make_server):
    """In test mode the envelope holds the test address only: nobody else gets the mail."""
    raw = raw_message(to=("member@example.test",), cc=("coach@example.test",))
    message = email_message_from_raw(raw=raw, recipients=["tester@club.test"])
    assert message.to == [] and message.cc == []
    assert message.bcc == ["tester@club.test"]
    assert message.recipients() == ["tester@club.test"]


def test_html_only_message_keeps_html_as_the_body():
    source = EmailMultiAlternatives(
        subject="s", body="<p>Only HTML</p>", from_email="office@club.test", to=["m@example.test"]
    )
    source.content_subtype = "html"
    message = email_message_from_raw(raw=source.message().as_bytes(), recipients=["m@example.test"])
    assert message.content_subtype == "html"
    assert message.body == "<p>Only HTML</p>\n"


def test_recipient_statuses_map_to_outcomes():
    status = AnymailStatus()
    status.set_recipient_status(
        {
            "a@example.test": AnymailRecipientStatus("id-1", "sent"),
            "b@example.test": AnymailRecipientStatus("id-1", "rejected"),
            "c@example.test": AnymailRecipientStatus("id-1", "invalid"),
            "d@example.test": AnymailRecipientStatus("id-1", "queued"),
            "e@example.test": AnymailRecipientStatus("id-1", "failed"),
        }
    )
    result = send_result_from_status(
        status=status,
        recipients=["A@example.test", "b@example.test", "c@example.test", "d@example.test"]
        + ["e@example.test"],
    )
    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_ids == ("id-1",)
    assert [r.outcome for r in result.recipients] == [
        Outcome.ACCEPTED,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
        Outcome.ACCEPTED,
        Outcome.TEMPORARY,
    ]
    assert result.recipients[1].reply == "rejected"


def test_all_refused_gives_the_message_a_refusal():
    status = AnymailStatus()
    status.set_recipient_status(
        {
            "a@example.test": AnymailRecipientStatus("x", "failed"),
            "b@example.test": AnymailRecipientStatus("y", "rejected"),
        }
    )
    result = send_result_from_status(status=status, recipients=["a@example.test", "b@example.test"])
    assert result.outcome == Outcome.TEMPORARY
    assert result.provider_message_ids == ("x", "y")


@pytest.mark.parametrize(
    ("status_code", "error_code", "text", "outcome"),
    [
        (None, "", "", Outcome.TEMPORARY),
        (200, "", "", Outcome.TEMPORARY),
        (400, "", "", Outcome.PERMANENT),
        (400, "", "Daily sending quota exceeded", Outcome.QUOTA),
        (400, "MessageRejected", "Email address is not verified.", Outcome.PERMANENT),
        (400, "Throttling", "", Outcome.QUOTA),
        (403, "", "", Outcome.CREDENTIALS),
        (400, "AccountSuspendedException", "", Outcome.CREDENTIALS),
        (404, "", "", Outcome.PERMANENT),
        (429, "", "", Outcome.QUOTA),
        (502, "", "", Outcome.TEMPORARY),
    ],
)
def test_error_classification(status_code, error_code, text, outcome):
    assert classify_esp_error(status_code=status_code, error_code=error_code, text=text) == outcome


def test_a_message_the_service_cannot_take_raises_like_smtp(monkeypatch, make_server):
    """An unparsable From is the message's fault: ``InvalidMessage``, and nothing is posted."""
    http = CannedHttp(monkeypatch)
    raw = b"From: office@@club..test, <>\r\nTo: member@example.test\r\nSubject: x\r\n\r\nbody\r\n"
    connection = EspConnection(esp_server(make_server, "postmark", {"server_token": "t"}))
    connection.open()
    with pytest.raises(InvalidMessage):
        connection.send(
            envelope_from="office@club.test", recipients=["member@example.test"], raw=raw
        )
    connection.discard()
    assert not connection.is_open
    assert http.requests == []


@given(status_code=st.integers(min_value=400, max_value=599), text=st.text(max_size=40))
def test_every_http_error_has_a_class(status_code, text):
    outcome = classify_esp_error(status_code=status_code, text=text)
    if status_code == 429:
        assert outcome == Outcome.QUOTA
    elif status_code >= 500:
        assert outcome in (Outcome.TEMPORARY, Outcome.QUOTA)
    elif status_code in (401, 403):
        assert outcome in (Outcome.CREDENTIALS, Outcome.QUOTA)
    else:
        assert outcome in (Outcome.PERMANENT, Outcome.QUOTA)
    assert outcome != Outcome.ACCEPTED
