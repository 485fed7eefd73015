"""Secrets never leak: logs, exception text, error pages, task payloads, admin pages.

A real SMTP server with AUTH refuses the password; everything the portal writes or shows
about that failure is then searched for the password in every form it travelled in.
"""

import base64
import json
import logging
import traceback

import pytest
import requests
from django.core.mail import send_mail
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from smtpconfig.esp import EspConnection
from smtpconfig.exceptions import DeliveryFailed
from smtpconfig.models import MailSettings, MessageEvent, OutgoingMessage, Recipient, SmtpServer
from smtpconfig.transport import ConnectionFailed, SmtpConnection
from tests.security.conftest import verified_client

pytestmark = pytest.mark.django_db

SMTP_USER = "relay-user"
SMTP_PASSWORD = "Wr0ng-S3cret-pa55word"
API_KEY = "xkeysib-0123456789abcdef0123456789abcdef"


def forms_of(secret: str) -> list[str]:
    """The secret as it may appear: plain, and as AUTH PLAIN / AUTH LOGIN send it."""
    plain = f"\0{SMTP_USER}\0{secret}".encode()
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(plain).decode(),
    ]


def assert_no_secret(text: str, secret: str = SMTP_PASSWORD):
    for form in forms_of(secret):
        assert form not in text


@pytest.fixture
def auth_sink(smtp_sink):
    return smtp_sink(username=SMTP_USER, password="the-right-password")


@pytest.fixture
def refusing_server(make_server, auth_sink, routing_mailer):
    return make_server(
        sink=auth_sink,
        use_auth=True,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        is_default=True,
    )


def our_log_text(caplog) -> str:
    # aiosmtpd's own loggers stand for the remote server, whose logs are not ours.
    lines = []
    for record in caplog.records:
        if record.name.startswith("mail.log"):
            continue
        lines.append(logging.Formatter().format(record))
    return "\n".join(lines)


def test_a_refused_password_is_in_no_log_line_exception_or_record(
    refusing_server, auth_sink, caplog
):
    caplog.set_level(logging.DEBUG)
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.DIRECT
    settings_row.save()
    with pytest.raises(DeliveryFailed) as caught:
        send_mail("Hello", "Body", "office@club.example", ["member@golf.example"])
    assert auth_sink.auth_attempts and auth_sink.auth_attempts[0][1] == SMTP_USER

    error = caught.value
    assert "535" in str(error)  # the server's refusal is reported...
    exception_text = "".join(traceback.format_exception(error)) + repr(error)
    chained = error
    while chained is not None:
        exception_text += str(chained) + repr(chained.args)
        chained = chained.__cause__ or chained.__context__
    assert_no_secret(exception_text)  # ...never the password
    assert_no_secret(our_log_text(caplog))

    message = OutgoingMessage.objects.get()
    stored = [message.last_error, message.route_reason]
    stored += list(MessageEvent.objects.values_list("detail", flat=True))
    stored += list(Recipient.objects.values_list("reply", flat=True))
    assert any("535" in text for text in stored)
    assert_no_secret("\n".join(stored))


def test_the_connection_error_carries_the_reply_not_the_password(refusing_server, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionFailed) as caught:
        SmtpConnection(refusing_server).open()
    text = "".join(traceback.format_exception(caught.value))
    assert "535" in text
    assert_no_secret(text)
    assert_no_secret(repr(refusing_server) + str(refusing_server))
    assert_no_secret(our_log_text(caplog))


def test_a_queued_message_task_carries_no_secret(
    refusing_server, django_capture_on_commit_callbacks
):
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.QUEUE
    settings_row.save()
    broker = get_broker()
    broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        send_mail("Hello", "Body", "office@club.example", ["member@golf.example"])
    tasks = broker.dequeue() or []
    assert tasks, "sending through the queue enqueues a drain task"
    for task_id, payload in tasks:
        package = SignedPackage.loads(payload)
        assert_no_secret(repr(package))
        assert_no_secret(payload if isinstance(payload, str) else payload.decode())
        assert package["func"] == "smtpconfig.tasks.drain_outbox"
        assert not package["args"] and not package["kwargs"].get("server")
        broker.acknowledge(task_id)


@override_settings(ROOT_URLCONF="tests.security.failing_urls")
def test_the_error_page_and_its_log_show_no_secret(refusing_server, caplog):
    caplog.set_level(logging.DEBUG)
    client = Client(raise_request_exception=False)
    url = f"/connect/{refusing_server.pk}/"
    response = client.post(url, {"password": SMTP_PASSWORD})
    assert response.status_code == 500
    assert_no_secret(response.content.decode())
    request_logs = [r for r in caplog.records if r.name == "django.request"]
    assert request_logs and request_logs[0].exc_info
    assert_no_secret(our_log_text(caplog))

    with override_settings(DEBUG=True):
        response = client.post(url, {"password": SMTP_PASSWORD})
    page = response.content.decode()
    assert "ConnectionFailed" in page and "smtplib" in page  # the full technical page...
    assert "********************" in page
    assert_no_secret(page)  # ...with every secret masked, smtplib's AUTH exchange included


def stored_token(server: SmtpServer, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM smtpconfig_smtpserver WHERE id = %s", [server.pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_admin_pages_never_show_a_password_or_api_key(refusing_server, make_server, make_user):
    service = make_server(
        name="Brevo",
        transport=SmtpServer.Transport.BREVO,
        credentials=f'{{"api_key": "{API_KEY}"}}',
    )
    client = verified_client(Client(), make_user("root", superuser=True))
    pages = [
        reverse("admin:smtpconfig_smtpserver_changelist"),
        reverse("admin:smtpconfig_smtpserver_change", args=[refusing_server.pk]),
        reverse("admin:smtpconfig_smtpserver_change", args=[service.pk]),
        reverse("admin:smtpconfig_smtpserver_history", args=[refusing_server.pk]),
        reverse("admin:audit_auditevent_changelist"),
    ]
    tokens = [stored_token(refusing_server, "password"), stored_token(service, "credentials")]
    assert all(tokens)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert_no_secret(page)
        assert_no_secret(page, API_KEY)
        for token in tokens:
            assert token not in page


def test_a_refused_api_key_is_in_no_log_line_or_reply(make_server, monkeypatch, caplog):
    """An e-mail service refusing its key (the provider's HTTP API is the only stand-in)."""
    caplog.set_level(logging.DEBUG)
    sent = []

    def refuse(session, request, **kwargs):
        sent.append(request)
        response = requests.Response()
        response.status_code = 401
        response._content = b'{"ErrorCode": 10, "Message": "Bad or missing Server API token"}'
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    monkeypatch.setattr(requests.Session, "send", refuse)
    server = make_server(
        name="Postmark",
        transport=SmtpServer.Transport.POSTMARK,
        host="",
        credentials=json.dumps({"server_token": API_KEY}),
    )
    connection = EspConnection(server)
    connection.open()
    try:
        result = connection.send(
            envelope_from="office@club.example",
            recipients=["member@golf.example"],
            raw=b"From: office@club.example\r\nTo: member@golf.example\r\nSubject: Hi\r\n\r\nBody",
        )
    finally:
        connection.close()
    assert sent and API_KEY in sent[0].headers.values()  # the key did go to the service...
    assert result.code == 401 and "Bad or missing Server API token" in result.reply
    assert_no_secret(repr(result), API_KEY)  # ...and comes back nowhere
    assert_no_secret(our_log_text(caplog), API_KEY)
    assert_no_secret(repr(server) + str(server), API_KEY)


def test_the_device_admin_never_shows_a_second_factor_secret(make_user):
    root = make_user("root", superuser=True)
    client = verified_client(Client(), root)
    device = root.totpdevice_set.get()
    backup = StaticDevice.objects.create(user=root, name="Backup codes")
    backup.token_set.create(token="zz9plural")
    for url in [
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
        reverse("admin:otp_static_staticdevice_change", args=[backup.pk]),
    ]:
        page = client.get(url).content.decode()
        assert device.key not in page and "zz9plural" not in page, url
        assert base64.b32encode(device.bin_key).decode() not in page, url
