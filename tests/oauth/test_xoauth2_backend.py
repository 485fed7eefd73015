"""The XOAUTH2 backend against aiosmtpd checking each token with the local token endpoint."""

import logging

import pytest
from django.core.mail import EmailMessage
from django.utils import timezone

from smtpconfig.models import OAuthToken
from smtpconfig.oauth import CredentialsRejected, TokenUnavailable
from smtpconfig.xoauth2 import XOAuth2EmailBackend, xoauth2_initial_response
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, MAILBOX, REFRESH_TOKEN, TENANT_ID
from tests.oauth.xoauth2_peer import GOOGLE_REFUSAL, MICROSOFT_REFUSAL

pytestmark = [
    pytest.mark.django_db,
    # The peer requires AUTH without TLS: loopback only, STARTTLS is not what is tested here.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]


def backend_for(server, **options) -> XOAuth2EmailBackend:
    return XOAuth2EmailBackend(
        server=server,
        alias=f"test-{server.pk}",
        host=server.host,
        port=server.port,
        timeout=server.timeout,
        **options,
    )


def messages(count: int, start: int = 0) -> list[EmailMessage]:
    return [
        EmailMessage(
            subject=f"Tee times {number}",
            body="See you on the first tee.",
            from_email=MAILBOX,
            to=[f"member{number}@example.org"],
        )
        for number in range(start, start + count)
    ]


def test_initial_response_is_the_xoauth2_format():
    assert xoauth2_initial_response(user="a@b.example", token="t0k") == (
        "user=a@b.example\x01auth=Bearer t0k\x01\x01"
    )


def test_many_messages_over_several_connections_use_one_token_request(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)

    sent = sum(backend_for(server).send_messages(messages(4, 4 * batch)) for batch in range(3))

    assert sent == 12
    assert len(peer.received) == 12
    assert token_endpoint.requests["microsoft_token"] == 1
    assert peer.handler.auth_attempts == [(MAILBOX, True)] * 3


def test_an_expired_cached_token_is_refreshed_before_signing_in(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    backend_for(server).send_messages(messages(1))
    # An hour later: the token expired at the provider and in the cache.
    token_endpoint.expire_access_tokens()
    OAuthToken.objects.filter(server=server).update(expires_at=timezone.now())

    assert backend_for(server).send_messages(messages(2, 1)) == 2

    assert token_endpoint.requests["microsoft_token"] == 2
    assert peer.handler.auth_attempts == [(MAILBOX, True)] * 2
    assert len(peer.received) == 3


def test_a_token_refused_before_its_expiry_is_replaced_once(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    backend_for(server).send_messages(messages(1))
    token_endpoint.revoke_access_tokens()  # e.g. an administrator revoked the sessions

    assert backend_for(server).send_messages(messages(1, 1)) == 1

    assert token_endpoint.requests["microsoft_token"] == 2
    assert peer.handler.auth_attempts == [(MAILBOX, True), (MAILBOX, False), (MAILBOX, True)]
    assert len(peer.received) == 2


def test_revoked_app_raises_credentials_rejected_with_the_providers_message(
    microsoft_server, token_endpoint, xoauth2_peer, caplog
):
    caplog.set_level(logging.DEBUG)
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    backend_for(server).send_messages(messages(1))
    token = OAuthToken.objects.get(server=server).access_token
    token_endpoint.revoke_microsoft_app(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        status=401,
        error="invalid_client",
        description="AADSTS7000222: The provided client secret keys for app are expired.",
    )

    backend = backend_for(server)
    with pytest.raises(CredentialsRejected) as caught:
        backend.send_messages(messages(1, 1))

    assert str(caught.value) == (
        "Microsoft 365 refused the credentials: invalid_client: "
        "AADSTS7000222: The provided client secret keys for app are expired."
    )
    assert backend.connection is None
    assert len(peer.received) == 1
    assert peer.handler.auth_attempts[-1] == (MAILBOX, False)
    assert not OAuthToken.objects.filter(server=server, access_token__gt="").exists()
    for secret in (CLIENT_SECRET, token):
        assert secret not in caplog.text
        assert secret not in str(caught.value) + repr(caught.value.args)


def test_smtp_refusing_fresh_tokens_raises_with_the_smtp_reply(
    microsoft_server, token_endpoint, xoauth2_peer
):
    """The app has no permission on this mailbox (Add-MailboxPermission was not run)."""
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer, mailboxes=["another@club.example"])

    with pytest.raises(CredentialsRejected) as caught:
        backend_for(server).send_messages(messages(1))

    assert caught.value.smtp_code == 535
    assert str(caught.value) == (
        f"The SMTP server refused the OAuth2 sign-in of {MAILBOX}: {MICROSOFT_REFUSAL}"
    )
    assert token_endpoint.requests["microsoft_token"] == 2
    assert peer.handler.auth_attempts == [(MAILBOX, False), (MAILBOX, False)]
    assert peer.received == []


def test_google_error_challenge_is_answered_and_reported(
    google_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer(style="google")
    server = google_server(peer=peer, kind="refresh_token")
    server.username = "not-the-authorising-user@club.example"
    server.save()

    with pytest.raises(CredentialsRejected) as caught:
        backend_for(server).send_messages(messages(1))

    assert str(caught.value) == (
        "The SMTP server refused the OAuth2 sign-in of not-the-authorising-user@club.example: "
        f'{GOOGLE_REFUSAL} {{"status": "401", "schemes": "Bearer", '
        '"scope": "https://mail.google.com/"}'
    )
    assert len(peer.handler.auth_attempts) == 2


def test_google_service_account_sends_and_recovers_from_a_revoked_token(
    google_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer(style="google")
    server = google_server(peer=peer)
    assert backend_for(server).send_messages(messages(3)) == 3
    token_endpoint.revoke_access_tokens()

    assert backend_for(server).send_messages(messages(3, 3)) == 3

    assert token_endpoint.requests["google_token"] == 2
    assert len(peer.received) == 6


def test_google_revoked_refresh_token_raises_with_the_providers_message(
    google_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer(style="google")
    server = google_server(peer=peer, kind="refresh_token")
    backend_for(server).send_messages(messages(1))
    token_endpoint.revoke_refresh_token(REFRESH_TOKEN)

    with pytest.raises(
        CredentialsRejected, match="invalid_grant: Token has been expired or revoked"
    ):
        backend_for(server).send_messages(messages(1, 1))


def test_fail_silently_swallows_a_rejection_like_a_refused_password(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer, client_secret="wrong")
    backend = backend_for(server, fail_silently=True)

    assert backend.open() is None
    assert backend.send_messages(messages(1)) == 0
    assert backend.connection is None
    assert peer.handler.auth_attempts == []


def test_provider_outage_is_temporary_and_nothing_is_sent(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    token_endpoint.stop()

    with pytest.raises(TokenUnavailable):
        backend_for(server).send_messages(messages(1))
    assert peer.received == []


def test_open_reports_a_new_connection_once(microsoft_server, token_endpoint, xoauth2_peer):
    server = microsoft_server(peer=xoauth2_peer())
    backend = backend_for(server)

    assert backend.open() is True
    assert backend.open() is False
    backend.close()
    assert backend.connection is None


def test_a_non_ascii_mailbox_is_rejected_before_any_auth(
    microsoft_server, token_endpoint, xoauth2_peer
):
    peer = xoauth2_peer()
    server = microsoft_server(peer=peer)
    server.username = "sekretariat@golfclub-müritz.example"

    with pytest.raises(CredentialsRejected, match="ASCII"):
        backend_for(server).open()
    assert peer.handler.auth_attempts == []
