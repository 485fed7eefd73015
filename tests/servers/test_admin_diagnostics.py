"""The "Test connection" and "Send test mail" pages of a server, through the test client."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from smtpconfig.models import SmtpServer
from tests.smtp_sink import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    # The per-user counter lives in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()


def connection_test_url(server):
    return reverse("admin:smtpconfig_smtpserver_test_connection", args=[server.pk])


def mail_url(server):
    return reverse("admin:smtpconfig_smtpserver_send_test_mail", args=[server.pk])


def test_change_page_links_to_both_diagnostics(admin_client, make_server):
    server = make_server(name="Relay")

    page = admin_client.get(
        reverse("admin:smtpconfig_smtpserver_change", args=[server.pk])
    ).content.decode()

    assert f'href="{connection_test_url(server)}"' in page
    assert f'href="{mail_url(server)}"' in page


def test_opening_the_test_page_does_not_connect(admin_client, make_server, smtp_sink):
    sink = smtp_sink(username="club", password="Pw-1")
    server = make_server(sink=sink, use_auth=True, username="club", password="Pw-1")

    response = admin_client.get(connection_test_url(server))

    assert response.status_code == 200
    assert sink.auth_attempts == []
    assert b"No mail is sent." in response.content


def test_test_connection_reports_success(admin_client, make_server, smtp_sink):
    sink = smtp_sink(username="club", password="Pw-1")
    server = make_server(sink=sink, use_auth=True, username="club", password="Pw-1")

    response = admin_client.post(connection_test_url(server))

    page = response.content.decode()
    assert f"Connected to 127.0.0.1:{sink.port}, without encryption, signed in as club." in page
    assert "diagnostic-ok" in page
    assert sink.received == []


def test_test_connection_reports_the_refusal_without_the_password(
    admin_client, make_server, smtp_sink
):
    sink = smtp_sink(username="club", password="Right-Pw-1")
    server = make_server(sink=sink, use_auth=True, username="club", password="Wrong-Pw-2")

    page = admin_client.post(connection_test_url(server)).content.decode()

    assert "The server refused the user name or password. It answered: 535" in page
    assert "diagnostic-failed" in page
    assert "Wrong-Pw-2" not in page and "Right-Pw-1" not in page


def test_test_connection_to_a_closed_port(admin_client, make_server):
    server = make_server(host="127.0.0.1", port=free_port())

    page = admin_client.post(connection_test_url(server)).content.decode()

    assert f"127.0.0.1:{server.port} refused the connection" in page


def test_send_test_mail_page_proposes_the_administrators_address(admin_client, make_server):
    server = make_server(name="Relay")

    response = admin_client.get(mail_url(server))

    assert response.context["form"].initial["recipient"] == "admin@club.example"


def test_send_test_mail_delivers_to_the_typed_address(admin_client, make_server, sink):
    server = make_server(sink=sink)

    page = admin_client.post(mail_url(server), {"recipient": "captain@club.example"}).content

    assert b"The server accepted the test mail for captain@club.example." in page
    [received] = sink.received
    assert received.rcpt_tos == ["captain@club.example"]
    # A diagnostic, not a club message: nothing is recorded in the outbox.
    assert not server.messages.exists()


def test_send_test_mail_refuses_a_bad_address_without_sending(admin_client, make_server, sink):
    server = make_server(sink=sink)

    response = admin_client.post(mail_url(server), {"recipient": "not an address"})

    assert response.context["form"].errors["recipient"] == ["Enter a valid email address."]
    assert sink.received == []


def test_diagnostics_need_the_change_permission(client, django_user_model, make_server):
    server = make_server(name="Relay")
    viewer = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        *viewer.user_permissions.model.objects.filter(codename="view_smtpserver")
    )
    client.force_login(viewer)

    assert client.get(connection_test_url(server)).status_code == 403
    assert client.post(mail_url(server), {"recipient": "a@club.example"}).status_code == 403


def test_diagnostics_are_rate_limited_per_user(admin_client, make_server, sink, settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "TEST_ACTION_LIMIT": 2}
    server = make_server(sink=sink)

    for _attempt in range(2):
        admin_client.post(mail_url(server), {"recipient": "captain@club.example"})
    response = admin_client.post(mail_url(server), {"recipient": "captain@club.example"})

    assert len(sink.received) == 2
    assert response.context["report"] is None
    assert "Too many tests in a short time." in response.content.decode()


def test_missing_server_is_refused(admin_client):
    assert admin_client.get("/admin/smtpconfig/smtpserver/999/test-connection/").status_code == 404
    assert not SmtpServer.objects.exists()
