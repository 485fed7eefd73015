"""The queue's and direct delivery's connection to an OAuth2 server signs in with XOAUTH2."""

import pytest
from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend

from smtpconfig.models import SmtpServer
from smtpconfig.replies import Outcome
from smtpconfig.transport import ConnectionFailed, SmtpConnection, smtp_backend_for
from smtpconfig.xoauth2 import XOAuth2EmailBackend
from tests.oauth.conftest import CLIENT_ID, MAILBOX, TENANT_ID
from tests.smtp_sink import self_signed_tls_context

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

RAW = b"From: office@club.example\r\nTo: member@example.org\r\nSubject: Tee times\r\n\r\nHi.\r\n"


def test_oauth_servers_get_the_xoauth2_backend_and_password_servers_do_not(
    microsoft_server, make_server
):
    oauth = smtp_backend_for(microsoft_server())
    password = smtp_backend_for(make_server(use_auth=True, username="u", password="p"))

    assert isinstance(oauth, XOAuth2EmailBackend)
    assert oauth.username is None and oauth.password is None
    assert isinstance(password, DjangoSmtpBackend)
    assert not isinstance(password, XOAuth2EmailBackend)


def test_one_connection_sends_a_batch_with_one_token_request(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)

    for _batch in range(2):
        connection = SmtpConnection(server)
        connection.open()
        results = [
            connection.send(envelope_from=MAILBOX, recipients=["member@example.org"], raw=RAW)
            for _ in range(5)
        ]
        connection.close()
        assert {result.outcome for result in results} == {Outcome.ACCEPTED}

    assert len(peer.received) == 10
    assert token_endpoint.requests["microsoft_token"] == 1


def test_a_revoked_app_is_a_credentials_outcome_with_the_providers_message(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    SmtpConnection(server).open()
    token_endpoint.revoke_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        status=400,
        error="unauthorized_client",
        description="AADSTS7000112: Application is disabled.",
    )

    connection = SmtpConnection(server)
    with pytest.raises(ConnectionFailed) as caught:
        connection.open()

    assert caught.value.outcome == Outcome.CREDENTIALS
    assert "AADSTS7000112: Application is disabled." in str(caught.value)
    assert not connection.is_open


def test_an_unreachable_token_endpoint_is_a_temporary_outcome(
    microsoft_server, token_endpoint, xoauth2_peer
):
    server = microsoft_server(peer=xoauth2_peer())
    token_endpoint.stop()

    with pytest.raises(ConnectionFailed) as caught:
        SmtpConnection(server).open()

    assert caught.value.outcome == Outcome.TEMPORARY


def test_xoauth2_after_starttls_as_on_port_587(
    microsoft_server, token_endpoint, xoauth2_peer, tmp_path, settings
):
    (tmp_path / "smtp").mkdir()
    context, cert_path = self_signed_tls_context(tmp_path / "smtp")
    settings.MAILADMIN = {**settings.MAILADMIN, "SMTP_CA_FILE": cert_path}
    peer = xoauth2_peer(tls_context=context)
    server = microsoft_server(peer=peer)
    SmtpServer.objects.filter(pk=server.pk).update(security=SmtpServer.Security.STARTTLS)
    server.refresh_from_db()

    connection = SmtpConnection(server)
    connection.open()
    result = connection.send(envelope_from=MAILBOX, recipients=["member@example.org"], raw=RAW)
    connection.close()

    assert result.outcome == Outcome.ACCEPTED
    assert peer.handler.auth_attempts == [(MAILBOX, True)]
    assert len(peer.received) == 1
