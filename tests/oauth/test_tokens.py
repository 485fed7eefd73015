"""Token acquisition and the shared cache, against the local token endpoint over TLS."""

import json
import logging
import threading
from datetime import timedelta

import jwt
import pytest
from django.db import connection, connections
from django.utils import timezone

from smtpconfig.models import OAuthToken, SmtpServer
from smtpconfig.oauth import (
    GOOGLE_SCOPE,
    REFRESH_MARGIN,
    CredentialsRejected,
    OAuthCredentialsInvalid,
    TokenUnavailable,
    oauth_credentials_parse,
    oauth_token_discard,
    oauth_token_get,
    oauth_token_invalidate,
    oauth_token_request,
)
from tests.oauth.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    GOOGLE_CLIENT_SECRET,
    MAILBOX,
    REFRESH_TOKEN,
    TENANT_ID,
)

pytestmark = pytest.mark.django_db


def _stored_column(server) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token FROM smtpconfig_oauthtoken WHERE server_id = %s", [server.pk]
        )
        return cursor.fetchone()[0]


def test_microsoft_token_is_fetched_once_and_shared_from_the_database(
    microsoft_server, token_endpoint
):
    server = microsoft_server()

    first = oauth_token_get(server=server)
    again = [oauth_token_get(server=SmtpServer.objects.get(pk=server.pk)) for _ in range(5)]

    assert token_endpoint.requests["microsoft_token"] == 1
    assert token_endpoint.requests["microsoft_discovery"] == 1
    assert all(token == first for token in again)
    assert token_endpoint.token_accepted(first, MAILBOX)
    assert repr(first) == "Secret('********')"
    row = OAuthToken.objects.get(server=server)
    assert row.access_token == first
    assert row.expires_at > timezone.now() + timedelta(minutes=50)
    assert first not in _stored_column(server)  # encrypted at rest


def test_the_client_credentials_request_carries_the_exchange_scope(
    microsoft_server, token_endpoint
):
    oauth_token_get(server=microsoft_server())

    token_post = next(body for body in token_endpoint.wire if b"grant_type=" in body)
    assert b"grant_type=client_credentials" in token_post
    assert b"scope=https%3A%2F%2Foutlook.office365.com%2F.default" in token_post


def test_a_token_close_to_expiry_is_replaced(microsoft_server, token_endpoint):
    server = microsoft_server()
    old = oauth_token_get(server=server)
    OAuthToken.objects.filter(server=server).update(
        expires_at=timezone.now() + REFRESH_MARGIN - timedelta(seconds=1)
    )

    new = oauth_token_get(server=server)

    assert new != old
    assert token_endpoint.requests["microsoft_token"] == 2
    assert OAuthToken.objects.get(server=server).access_token == new
    assert OAuthToken.objects.count() == 1


def test_invalidate_forgets_only_the_refused_token(microsoft_server, token_endpoint):
    server = microsoft_server()
    current = oauth_token_get(server=server)

    oauth_token_invalidate(server=server, token="a-token-another-worker-already-replaced")
    assert oauth_token_get(server=server) == current

    oauth_token_invalidate(server=server, token=current)
    assert not OAuthToken.objects.filter(server=server).exists()
    assert oauth_token_get(server=server) != current
    assert token_endpoint.requests["microsoft_token"] == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_share_one_token_request(microsoft_server, token_endpoint):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:"):
        pytest.skip("the in-memory test database cannot be shared by several writers")
    server = microsoft_server()
    start = threading.Barrier(6)
    tokens, errors = [], []

    def worker():
        try:
            start.wait(timeout=30)
            tokens.append(oauth_token_get(server=SmtpServer.objects.get(pk=server.pk)))
        except Exception as error:  # reported below, with the thread's failure
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(tokens) == 6 and len(set(tokens)) == 1
    assert token_endpoint.requests["microsoft_token"] == 1


def test_wrong_client_secret_is_rejected_with_the_providers_words(microsoft_server, token_endpoint):
    server = microsoft_server(client_secret="not-the-secret-value-but-its-id")

    with pytest.raises(CredentialsRejected) as caught:
        oauth_token_get(server=server)

    error = caught.value
    assert "AADSTS7000215: Invalid client secret provided" in str(error)
    assert error.error == "invalid_client"
    assert error.provider == "Microsoft 365"
    assert error.smtp_code is None
    assert "not-the-secret-value-but-its-id" not in str(error) + repr(error)
    assert error.__context__ is None or error.__suppress_context__
    assert not OAuthToken.objects.filter(server=server, access_token__gt="").exists()


def test_unknown_tenant_is_rejected(microsoft_server, token_endpoint):
    server = microsoft_server(tenant_id="club.onmicrosoft.com")

    with pytest.raises(CredentialsRejected) as caught:
        oauth_token_get(server=server)

    assert "club.onmicrosoft.com" in str(caught.value)
    assert "AADSTS90002" in str(caught.value)
    assert token_endpoint.requests["microsoft_token"] == 0


def test_unknown_application_is_rejected(microsoft_server, token_endpoint):
    server = microsoft_server(client_id="00000000-0000-0000-0000-000000000000")

    with pytest.raises(CredentialsRejected, match="AADSTS700016"):
        oauth_token_get(server=server)


def test_revoked_application_is_rejected_with_the_providers_message(
    microsoft_server, token_endpoint
):
    server = microsoft_server()
    oauth_token_get(server=server)
    token_endpoint.revoke_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        status=400,
        error="unauthorized_client",
        description=f"AADSTS7000112: Application '{CLIENT_ID}'(Mailadmin SMTP) is disabled.",
    )
    OAuthToken.objects.filter(server=server).delete()

    with pytest.raises(CredentialsRejected) as caught:
        oauth_token_get(server=server)

    assert str(caught.value) == (
        "Microsoft 365 refused the credentials: unauthorized_client: "
        f"AADSTS7000112: Application '{CLIENT_ID}'(Mailadmin SMTP) is disabled."
    )


def test_provider_outage_is_temporary_not_a_rejection(microsoft_server, token_endpoint):
    server = microsoft_server()
    token_endpoint.outage = (
        503,
        {"error": "temporarily_unavailable", "error_description": "AADSTS50196: try later"},
    )

    with pytest.raises(TokenUnavailable) as caught:
        oauth_token_get(server=server)

    assert not isinstance(caught.value, CredentialsRejected)
    assert isinstance(caught.value, OSError)


def test_unreachable_provider_is_temporary(microsoft_server, token_endpoint):
    server = microsoft_server()
    token_endpoint.stop()

    with pytest.raises(TokenUnavailable, match="cannot be reached"):
        oauth_token_get(server=server)


def test_untrusted_certificate_of_the_token_endpoint_is_refused(
    microsoft_server, token_endpoint, settings
):
    settings.MAILADMIN = {**settings.MAILADMIN, "OAUTH_CA_BUNDLE": None}
    server = microsoft_server()

    with pytest.raises(TokenUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        oauth_token_get(server=server)
    assert token_endpoint.requests["microsoft_discovery"] == 0


def test_google_service_account_token_is_delegated_to_the_mailbox(google_server, token_endpoint):
    server = google_server()

    token = oauth_token_get(server=server)
    oauth_token_get(server=server)

    assert token_endpoint.requests["google_token"] == 1
    assert token_endpoint.token_accepted(token, MAILBOX)
    assertion = next(
        body for body in token_endpoint.wire if b"grant_type=urn%3Aietf" in body
    ).split(b"assertion=")[1]
    claims = jwt.decode(assertion.split(b"&")[0], options={"verify_signature": False})
    assert claims["sub"] == MAILBOX
    assert claims["scope"] == GOOGLE_SCOPE


def test_google_service_account_without_delegation_is_rejected(google_server, token_endpoint):
    server = google_server(delegated_users=["someone-else@club.example"])

    with pytest.raises(CredentialsRejected) as caught:
        oauth_token_get(server=server)

    assert "unauthorized_client" in str(caught.value)
    assert "BEGIN PRIVATE KEY" not in str(caught.value)


def test_google_refresh_token_grant(google_server, token_endpoint):
    server = google_server(kind="refresh_token")

    token = oauth_token_get(server=server)

    assert token_endpoint.token_accepted(token, MAILBOX)
    assert token_endpoint.requests["google_token"] == 1


def test_google_revoked_refresh_token_is_rejected(google_server, token_endpoint):
    server = google_server(kind="refresh_token")
    token_endpoint.revoke_refresh_token(REFRESH_TOKEN)

    with pytest.raises(CredentialsRejected) as caught:
        oauth_token_get(server=server)

    assert str(caught.value) == (
        "Google refused the credentials: invalid_grant: Token has been expired or revoked."
    )
    assert REFRESH_TOKEN not in repr(caught.value.args)


def test_google_outage_is_temporary(google_server, token_endpoint):
    server = google_server(kind="refresh_token")
    token_endpoint.stop()

    with pytest.raises(TokenUnavailable):
        oauth_token_get(server=server)


def test_no_secret_or_token_reaches_the_logs(
    microsoft_server, google_server, token_endpoint, caplog, service_account_key
):
    caplog.set_level(logging.DEBUG)
    microsoft = microsoft_server()
    tokens = [oauth_token_get(server=microsoft)]
    google = google_server(kind="refresh_token")
    tokens.append(oauth_token_get(server=google))
    service_account = google_server()
    tokens.append(oauth_token_request(server=service_account).token)
    token_endpoint.revoke_refresh_token(REFRESH_TOKEN)
    OAuthToken.objects.all().delete()
    with pytest.raises(CredentialsRejected):
        oauth_token_get(server=google)
    wrong = microsoft_server(register=False, client_secret="wrong-" + CLIENT_SECRET)
    with pytest.raises(CredentialsRejected):
        oauth_token_request(server=wrong)

    logged = caplog.text
    assert "OAuth2 token for server" in logged  # logging was on and captured
    info, _public = service_account_key
    for secret in [
        CLIENT_SECRET,
        GOOGLE_CLIENT_SECRET,
        REFRESH_TOKEN,
        info["private_key"].splitlines()[1],
        *tokens,
    ]:
        assert secret not in logged


@pytest.mark.parametrize(
    ("auth_method", "document", "message"),
    [
        (SmtpServer.AuthMethod.MICROSOFT_OAUTH2, "tenant=x", "not a JSON document"),
        (SmtpServer.AuthMethod.MICROSOFT_OAUTH2, "[]", "not a JSON object"),
        (
            SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
            {"tenant_id": TENANT_ID, "client_id": CLIENT_ID},
            "lack “client_secret”",
        ),
        (
            SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
            {"tenant_id": "../evil", "client_id": CLIENT_ID, "client_secret": "s3cr3t-value"},
            "GUID or a domain name",
        ),
        (
            SmtpServer.AuthMethod.GOOGLE_OAUTH2,
            {"client_id": "id", "client_secret": "s3cr3t-value"},
            "lack “refresh_token”",
        ),
        (
            SmtpServer.AuthMethod.GOOGLE_OAUTH2,
            {"service_account_info": {"type": "authorized_user"}},
            "not the JSON file Google provides",
        ),
        (
            SmtpServer.AuthMethod.GOOGLE_OAUTH2,
            {
                "service_account_info": {
                    "type": "service_account",
                    "client_email": "a@b.iam.gserviceaccount.com",
                    "private_key": "-----BEGIN PRIVATE KEY-----\ns3cr3t-value\n",
                }
            },
            "private key of the service account key cannot be read",
        ),
        (SmtpServer.AuthMethod.PASSWORD, {}, "does not use OAuth2"),
    ],
)
def test_unusable_credentials_say_what_is_wrong_without_repeating_secrets(
    auth_method, document, message
):
    text = document if isinstance(document, str) else json.dumps(document)

    with pytest.raises(OAuthCredentialsInvalid, match=message) as caught:
        oauth_credentials_parse(auth_method=auth_method, credentials=text)

    assert "s3cr3t-value" not in str(caught.value)
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_service_account_key_pasted_as_text_is_accepted(service_account_key):
    info, _public = service_account_key
    parsed = oauth_credentials_parse(
        auth_method=SmtpServer.AuthMethod.GOOGLE_OAUTH2,
        credentials=json.dumps({"service_account_info": json.dumps(info)}),
    )
    assert parsed.info["client_email"] == info["client_email"]
    assert info["private_key"] not in repr(parsed)


def test_unusable_stored_credentials_reject_the_server(make_server):
    server = make_server(
        use_auth=True,
        auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
        credentials=json.dumps({"tenant_id": TENANT_ID}),
    )

    with pytest.raises(CredentialsRejected, match="client_id"):
        oauth_token_get(server=server)


def test_changed_credentials_discard_the_cached_token(microsoft_server, token_endpoint):
    server = microsoft_server()
    old = oauth_token_get(server=server)

    oauth_token_discard(server=server)

    assert not OAuthToken.objects.filter(server=server).exists()
    assert oauth_token_get(server=server) != old
    assert token_endpoint.requests["microsoft_token"] == 2
