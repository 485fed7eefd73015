""" "Test connection" and "Send test mail" for a server that sends through an e-mail service.

Only the service's HTTP API is replaced (it is outside the process); the admin, the
diagnostics and anymail's own backend run for real.
"""

import json

import pytest
import requests
from django.core.cache import cache
from django.urls import reverse

pytestmark = pytest.mark.django_db

SERVER_TOKEN = "pm-5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    # The per-user counter lives in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def postmark_api(monkeypatch):
    """Postmark's HTTP API: records each request and answers what the test queued."""
    api = {"requests": [], "answers": []}

    def send(session, request, **kwargs):
        api["requests"].append(request)
        status, body = api["answers"].pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    return api


def connection_test(client, server) -> str:
    url = reverse("admin:smtpconfig_smtpserver_test_connection", args=[server.pk])
    return client.post(url).content.decode()


def send_test_mail(client, server, recipient="member@example.org") -> str:
    url = reverse("admin:smtpconfig_smtpserver_send_test_mail", args=[server.pk])
    return client.post(url, {"recipient": recipient}).content.decode()


def test_connection_test_of_a_complete_service_server_passes_without_a_request(
    admin_client, make_server, postmark_api
):
    server = make_server(
        name="Mailings",
        transport="postmark",
        host="",
        credentials=json.dumps({"server_token": SERVER_TOKEN}),
    )

    page = connection_test(admin_client, server)

    assert "diagnostic-ok" in page
    assert "Sends through the API of Postmark" in page
    assert "The e-mail service&#x27;s settings are complete." in page
    assert postmark_api["requests"] == []
    assert SERVER_TOKEN not in page


def test_connection_test_names_the_missing_service_credentials(admin_client, make_server):
    server = make_server(
        name="Mailings", transport="mailjet", host="", credentials='{"api_key": "k"}'
    )

    page = connection_test(admin_client, server)

    assert "diagnostic-failed" in page
    assert "Mailjet cannot be used with the stored credentials" in page
    assert "secret_key" in page


def test_test_mail_through_a_service_reports_its_acceptance(
    admin_client, make_server, postmark_api
):
    server = make_server(
        name="Mailings",
        transport="postmark",
        host="",
        credentials=json.dumps({"server_token": SERVER_TOKEN}),
    )
    postmark_api["answers"].append(
        (
            200,
            {
                "To": "member@example.org",
                "SubmittedAt": "2026-11-27T04:00:00Z",
                "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d",
                "ErrorCode": 0,
                "Message": "OK",
            },
        )
    )

    page = send_test_mail(admin_client, server)

    assert "diagnostic-ok" in page
    assert "accepted the test mail for member@example.org" in page
    [request] = postmark_api["requests"]
    assert request.url == "https://api.postmarkapp.com/email"
    assert request.headers["X-Postmark-Server-Token"] == SERVER_TOKEN
    body = json.loads(request.body)
    assert body["To"] == "member@example.org"
    assert "(Postmark)" in body["TextBody"]
    assert SERVER_TOKEN not in page


def test_test_mail_shows_the_services_refusal_without_the_key(
    admin_client, make_server, postmark_api
):
    server = make_server(
        name="Mailings",
        transport="postmark",
        host="",
        credentials=json.dumps({"server_token": SERVER_TOKEN}),
    )
    postmark_api["answers"].append(
        (401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
    )

    page = send_test_mail(admin_client, server)

    assert "diagnostic-failed" in page
    assert "Bad or missing Server API token." in page
    assert SERVER_TOKEN not in page
