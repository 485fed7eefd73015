"""Fixtures: the local token endpoint, XOAUTH2 SMTP peers, and OAuth2 servers pointing at them."""

import json
import socket

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from smtpconfig.models import SmtpServer
from tests.oauth.token_endpoint import TokenEndpoint
from tests.oauth.xoauth2_peer import XOAuth2Peer
from tests.smtp_sink import self_signed_tls_context

TENANT_ID = "9f8b2c1e-4a6d-4e0f-8b7a-1c2d3e4f5a6b"
CLIENT_ID = "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f"
CLIENT_SECRET = "Qx8~kR2.vL9pT4_wZ7mN3sJ6hF1dG5bC0aE8yU2i"
MAILBOX = "office@club.example"
SERVICE_ACCOUNT_EMAIL = "mailadmin@club-mail.iam.gserviceaccount.com"
GOOGLE_CLIENT_ID = "123456789012-abcdefghijklmnop.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "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"
REFRESH_TOKEN = "1//09aBcDeFgHiJkLmNoPqRsTuVwXyZ-0123456789abcdefghijklmnopqrstuvwxyz"

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Name resolution of any host but loopback fails: the real providers are never reached."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach loopback only, not {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def token_endpoint(tmp_path, settings):
    """The local token endpoint over TLS, and the MAILADMIN settings pointing at it."""
    context, cert_path = self_signed_tls_context(tmp_path)
    endpoint = TokenEndpoint(tls_context=context).start()
    settings.MAILADMIN = {
        **settings.MAILADMIN,
        "OAUTH_MICROSOFT_AUTHORITY_HOST": endpoint.base_url,
        "OAUTH_GOOGLE_TOKEN_URI": endpoint.google_token_uri,
        "OAUTH_CA_BUNDLE": cert_path,
        "OAUTH_TIMEOUT": 10,
    }
    yield endpoint
    endpoint.stop()


@pytest.fixture
def xoauth2_peer(token_endpoint):
    """A factory of running XOAUTH2 SMTP servers checking tokens with ``token_endpoint``."""
    peers = []

    def start(style="microsoft", tls_context=None) -> XOAuth2Peer:
        peer = XOAuth2Peer(issuer=token_endpoint, style=style, tls_context=tls_context).start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()


@pytest.fixture
def microsoft_server(token_endpoint, make_server):
    """A factory of Microsoft 365 servers whose app is registered at the token endpoint."""

    def make(*, peer=None, register=True, mailboxes=(MAILBOX,), **credentials) -> SmtpServer:
        document = {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        document.update(credentials)
        if register:
            token_endpoint.register_microsoft_app(
                tenant_id=TENANT_ID,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                mailboxes=mailboxes,
            )
        return make_server(
            sink=peer,
            use_auth=True,
            auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
            username=MAILBOX,
            credentials=json.dumps(document),
        )

    return make


@pytest.fixture(scope="session")
def service_account_key():
    """A service account's JSON key as Google issues it, with a key pair made for the tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": "club-mail",
        "private_key_id": "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4",
        "private_key": private_pem,
        "client_email": SERVICE_ACCOUNT_EMAIL,
        "client_id": "104857600000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    }
    return info, public_pem


@pytest.fixture
def google_server(token_endpoint, make_server, service_account_key):
    """A factory of Google Workspace servers (service account or refresh token)."""
    info, public_pem = service_account_key

    def make(*, peer=None, kind="service_account", delegated_users=(MAILBOX,)) -> SmtpServer:
        if kind == "service_account":
            token_endpoint.register_service_account(
                client_email=SERVICE_ACCOUNT_EMAIL,
                public_key_pem=public_pem,
                delegated_users=delegated_users,
            )
            document = {"service_account_info": info}
        else:
            token_endpoint.register_refresh_token(
                refresh_token=REFRESH_TOKEN,
                client_id=GOOGLE_CLIENT_ID,
                client_secret=GOOGLE_CLIENT_SECRET,
                user=MAILBOX,
            )
            document = {
                "client_id": GOOGLE_CLIENT_ID,
                "client_secret": GOOGLE_CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
            }
        return make_server(
            sink=peer,
            use_auth=True,
            auth_method=SmtpServer.AuthMethod.GOOGLE_OAUTH2,
            username=MAILBOX,
            credentials=json.dumps(document),
        )

    return make
