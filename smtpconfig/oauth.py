"""OAuth2 access tokens for SMTP servers that sign in with Microsoft 365 or Google Workspace.

Tokens come from the providers' own libraries (msal, google-auth) and are cached in
``OAuthToken``, one row per server, shared by every web process and worker: a token serves
every message until shortly before it expires, and a row lock makes the workers that find
it expired wait for the one that fetches the next, instead of each asking the provider.

Secrets (client secret, private key, refresh token) and access tokens are never logged and
never put in exception text; a token is handed out as ``Secret`` so its ``repr`` hides it.
"""

import functools
import json
import logging
import re
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import msal
import msal.exceptions
import requests
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from google.oauth2 import service_account

from smtpconfig.conf import mailadmin_setting
from smtpconfig.crypto import Secret
from smtpconfig.exceptions import MailadminError
from smtpconfig.models import OAuthToken, SmtpServer

logger = logging.getLogger(__name__)

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"

# A token is replaced this long before it expires, so no message starts a session with a
# token that runs out during it (and clocks of hosts may differ by a minute or two).
REFRESH_MARGIN = timedelta(minutes=5)
# Both providers document one-hour tokens; used only if an answer omits ``expires_in``.
DEFAULT_LIFETIME = timedelta(hours=1)

OAUTH_METHODS = (SmtpServer.AuthMethod.MICROSOFT_OAUTH2, SmtpServer.AuthMethod.GOOGLE_OAUTH2)

# Token endpoint errors that say "try again later", not "these credentials are wrong".
_TEMPORARY_ERRORS = {"temporarily_unavailable", "server_error", "internal_failure"}
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$")
_LONG_EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


class OAuthError(MailadminError):
    """Base of the errors of OAuth2 sign-in."""


class OAuthCredentialsInvalid(OAuthError, ValueError):
    """The stored credentials document is not usable (missing field, not JSON, bad key)."""


class CredentialsRejected(OAuthError, smtplib.SMTPAuthenticationError):
    """The provider refused the server's credentials, or the SMTP server refused the token.

    An ``SMTPAuthenticationError`` so every caller that already treats refused passwords as
    "credentials rejected" treats this the same. ``str()`` is the text for administrators:
    the provider's or SMTP server's own error, never a secret. ``smtp_code`` is the SMTP
    server's reply code, or ``None`` when the token endpoint refused.
    """

    def __init__(self, message: str, *, provider: str, error: str = "", smtp_code=None):
        smtplib.SMTPAuthenticationError.__init__(self, smtp_code, message)
        self.message = message
        self.provider = provider
        self.error = error

    def __str__(self):
        return self.message


class TokenUnavailable(OAuthError, OSError):
    """The token endpoint could not be reached or asked to try later: a temporary failure."""

    def __init__(self, message: str, *, provider: str):
        OSError.__init__(self, message)
        self.message = message
        self.provider = provider

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class MicrosoftCredentials:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)

    provider = "Microsoft 365"

    @property
    def secrets(self) -> list[str]:
        return [self.client_secret]


@dataclass(frozen=True)
class GoogleServiceAccount:
    info: dict = field(repr=False)

    provider = "Google Workspace"

    @property
    def secrets(self) -> list[str]:
        return [self.info.get("private_key", ""), self.info.get("private_key_id", "")]


@dataclass(frozen=True)
class GoogleRefreshToken:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    provider = "Google Workspace"

    @property
    def secrets(self) -> list[str]:
        return [self.client_secret, self.refresh_token]


@dataclass(frozen=True)
class AccessToken:
    token: Secret = field(repr=False)
    expires_at: datetime


def _required_text(document: dict, key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise OAuthCredentialsInvalid(
            _("The OAuth2 credentials lack “%(field)s”.") % {"field": key}
        )
    return value.strip()


def oauth_credentials_parse(
    *, auth_method: str, credentials: str
) -> MicrosoftCredentials | GoogleServiceAccount | GoogleRefreshToken:
    """Read a server's credentials document; raise ``OAuthCredentialsInvalid`` saying what is wrong.

    Microsoft: ``{"tenant_id", "client_id", "client_secret"}``. Google: ``{"service_account_info":
    <the service account's JSON key, as an object or as its text>}`` or ``{"client_id",
    "client_secret", "refresh_token"}``. Forms call this to validate what an administrator
    entered; the error text never repeats a secret.
    """
    try:
        document = json.loads(str(credentials or ""))
    except ValueError:
        # ``from None``: the decode error keeps the whole document, secrets included.
        raise OAuthCredentialsInvalid(
            _("The OAuth2 credentials are not a JSON document.")
        ) from None
    if not isinstance(document, dict):
        raise OAuthCredentialsInvalid(_("The OAuth2 credentials are not a JSON object."))

    if auth_method == SmtpServer.AuthMethod.MICROSOFT_OAUTH2:
        tenant_id = _required_text(document, "tenant_id")
        if not _TENANT_ID.match(tenant_id):
            raise OAuthCredentialsInvalid(
                _(
                    "The directory (tenant) ID must be a GUID or a domain name "
                    "such as club.onmicrosoft.com."
                )
            )
        return MicrosoftCredentials(
            tenant_id=tenant_id,
            client_id=_required_text(document, "client_id"),
            client_secret=_required_text(document, "client_secret"),
        )

    if auth_method == SmtpServer.AuthMethod.GOOGLE_OAUTH2:
        if "service_account_info" in document:
            return GoogleServiceAccount(
                info=_service_account_info(document["service_account_info"])
            )
        return GoogleRefreshToken(
            client_id=_required_text(document, "client_id"),
            client_secret=_required_text(document, "client_secret"),
            refresh_token=_required_text(document, "refresh_token"),
        )

    raise OAuthCredentialsInvalid(
        _("The authentication method “%(method)s” does not use OAuth2.") % {"method": auth_method}
    )


def _service_account_info(value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise OAuthCredentialsInvalid(
                _("The service account key is not the JSON file Google provides.")
            ) from None
    if not isinstance(value, dict) or value.get("type") != "service_account":
        raise OAuthCredentialsInvalid(
            _("The service account key is not the JSON file Google provides.")
        )
    for key in ("client_email", "private_key"):
        _required_text(value, key)
    try:
        service_account.Credentials.from_service_account_info(
            {**value, "token_uri": mailadmin_setting("OAUTH_GOOGLE_TOKEN_URI")}
        )
    except (ValueError, TypeError, IndexError):
        # Without the library's text: it may quote the key it could not read.
        raise OAuthCredentialsInvalid(
            _("The private key of the service account key cannot be read.")
        ) from None
    return value


def oauth_mailbox_for(*, server: SmtpServer) -> str:
    """The mailbox an OAuth2 server signs in as: its SMTP user, else its sender address."""
    return (server.username or server.sender_email).strip()


def oauth_uses_xoauth2(*, server: SmtpServer) -> bool:
    """Whether ``server`` signs in with an OAuth2 token instead of a password."""
    return bool(server.use_auth) and server.auth_method in OAUTH_METHODS


def _scrubbed(text: str, secrets: list[str]) -> str:
    # The provider's text is shown to administrators; a provider (or a proxy in between)
    # that echoes the request must not turn it into a secret leak.
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


def _provider_text(raw: str) -> str:
    """The ``error_description`` inside an error text that embeds the provider's JSON answer."""
    start = raw.find("{")
    if start >= 0:
        try:
            answer = json.loads(raw[start:])
        except ValueError:
            return raw
        if isinstance(answer, dict) and answer.get("error_description"):
            return f"{answer.get('error', '')}: {answer['error_description']}".strip(": ")
    return raw


class _ProviderSession(requests.Session):
    """The HTTP session to a token endpoint: the configured timeout and CA bundle on every request.

    Set per request because requests lets ``REQUESTS_CA_BUNDLE`` in the environment override a
    session's ``verify``; a bundle the administrator configured for the providers must win.
    """

    def __init__(self):
        super().__init__()
        self.ca_bundle = mailadmin_setting("OAUTH_CA_BUNDLE")
        self.timeout = mailadmin_setting("OAUTH_TIMEOUT")

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return super().request(method, url, **kwargs)


def _microsoft_token(credentials: MicrosoftCredentials) -> AccessToken:
    authority = (
        f"{mailadmin_setting('OAUTH_MICROSOFT_AUTHORITY_HOST').rstrip('/')}/{credentials.tenant_id}"
    )
    with _ProviderSession() as session:
        return _microsoft_token_over(session, credentials, authority=authority)


def _microsoft_token_over(
    session, credentials: MicrosoftCredentials, *, authority: str
) -> AccessToken:
    provider = credentials.provider
    try:
        application = msal.ConfidentialClientApplication(
            credentials.client_id,
            client_credential=str(credentials.client_secret),
            authority=authority,
            # The authority is given, not looked up: no call to Microsoft's instance
            # discovery, so the configured authority host is the only host contacted.
            instance_discovery=False,
            http_client=session,
            # A new application, with an empty cache, for every request: the shared cache is
            # OAuthToken; msal's own would keep serving a token the SMTP server refused.
            token_cache=msal.TokenCache(),
        )
    except ValueError as error:
        # msal raises ValueError when the tenant's OpenID configuration answers 4xx: the
        # directory does not exist. The provider's answer is in the chained error.
        detail = _provider_text(str(error.__context__ or error))
        raise CredentialsRejected(
            _("Microsoft 365 does not know the directory (tenant) ID %(tenant)s: %(detail)s")
            % {"tenant": credentials.tenant_id, "detail": _scrubbed(detail, credentials.secrets)},
            provider=provider,
            error="invalid_tenant",
        ) from None
    except (requests.RequestException, msal.exceptions.MsalServiceError) as error:
        raise TokenUnavailable(
            _("Microsoft 365 sign-in cannot be reached: %(error)s") % {"error": error},
            provider=provider,
        ) from None

    now = timezone.now()
    try:
        result = application.acquire_token_for_client(scopes=[MICROSOFT_SCOPE])
    except (requests.RequestException, msal.exceptions.MsalServiceError, ValueError) as error:
        # 5xx, or an answer that is not JSON: the service is not itself right now.
        raise TokenUnavailable(
            _("Microsoft 365 sign-in did not answer properly: %(error)s") % {"error": error},
            provider=provider,
        ) from None
    if result.get("access_token"):
        lifetime = timedelta(seconds=int(result.get("expires_in") or DEFAULT_LIFETIME.seconds))
        return AccessToken(token=Secret(result["access_token"]), expires_at=now + lifetime)

    error_code = str(result.get("error") or "")
    detail = _scrubbed(
        f"{error_code}: {result.get('error_description') or ''}".strip(": "), credentials.secrets
    )
    if error_code in _TEMPORARY_ERRORS:
        raise TokenUnavailable(
            _("Microsoft 365 sign-in is unavailable: %(detail)s") % {"detail": detail},
            provider=provider,
        )
    raise CredentialsRejected(
        _("Microsoft 365 refused the credentials: %(detail)s") % {"detail": detail},
        provider=provider,
        error=error_code,
    )


def _google_token(credentials: GoogleServiceAccount | GoogleRefreshToken, *, mailbox: str):
    provider = credentials.provider
    token_uri = mailadmin_setting("OAUTH_GOOGLE_TOKEN_URI")
    if isinstance(credentials, GoogleServiceAccount):
        google_credentials = service_account.Credentials.from_service_account_info(
            {**credentials.info, "token_uri": token_uri}, scopes=[GOOGLE_SCOPE], subject=mailbox
        )
    else:
        google_credentials = google.oauth2.credentials.Credentials(
            token=None,
            refresh_token=str(credentials.refresh_token),
            token_uri=token_uri,
            client_id=credentials.client_id,
            client_secret=str(credentials.client_secret),
            scopes=[GOOGLE_SCOPE],
        )
    with _ProviderSession() as session:
        request = functools.partial(
            google.auth.transport.requests.Request(session=session), timeout=session.timeout
        )
        now = timezone.now()
        try:
            google_credentials.refresh(request)
        except google.auth.exceptions.RefreshError as error:
            detail = _scrubbed(str(error.args[0] if error.args else error), credentials.secrets)
            if error.retryable:
                raise TokenUnavailable(
                    _("Google sign-in is unavailable: %(detail)s") % {"detail": detail},
                    provider=provider,
                ) from None
            raise CredentialsRejected(
                _("Google refused the credentials: %(detail)s") % {"detail": detail},
                provider=provider,
                error=detail.split(":", 1)[0],
            ) from None
        except (google.auth.exceptions.TransportError, requests.RequestException) as error:
            raise TokenUnavailable(
                _("Google sign-in cannot be reached: %(error)s") % {"error": error},
                provider=provider,
            ) from None
    if google_credentials.expiry is None:
        expires_at = now + DEFAULT_LIFETIME
    else:
        # google-auth keeps expiry as a naive UTC datetime.
        expires_at = google_credentials.expiry.replace(tzinfo=UTC)
    return AccessToken(token=Secret(google_credentials.token), expires_at=expires_at)


def oauth_token_request(*, server: SmtpServer) -> AccessToken:
    """Ask the provider for a new access token for ``server`` (no cache: see ``oauth_token_get``).

    Raises ``CredentialsRejected`` when the provider refuses (or the stored credentials are
    unusable) and ``TokenUnavailable`` when it cannot answer now.
    """
    provider = (
        MicrosoftCredentials.provider
        if server.auth_method == SmtpServer.AuthMethod.MICROSOFT_OAUTH2
        else GoogleServiceAccount.provider
    )
    try:
        credentials = oauth_credentials_parse(
            auth_method=server.auth_method, credentials=server.credentials
        )
    except OAuthCredentialsInvalid as error:
        raise CredentialsRejected(
            str(error), provider=provider, error="invalid_credentials"
        ) from None

    if isinstance(credentials, MicrosoftCredentials):
        token = _microsoft_token(credentials)
    else:
        token = _google_token(credentials, mailbox=oauth_mailbox_for(server=server))
    logger.info(
        "OAuth2 token for server %s obtained from %s, valid until %s",
        server.pk,
        provider,
        token.expires_at.isoformat(timespec="seconds"),
    )
    return token


def oauth_token_get(*, server: SmtpServer) -> Secret:
    """A valid access token for ``server``: the shared cached one, or a new one stored for all.

    Raises what ``oauth_token_request`` raises.
    """
    cached = (
        OAuthToken.objects.filter(server=server, expires_at__gt=timezone.now() + REFRESH_MARGIN)
        .values_list("access_token", flat=True)
        .first()
    )
    if cached:
        return cached

    OAuthToken.objects.get_or_create(
        server=server, defaults={"access_token": "", "expires_at": _LONG_EXPIRED}
    )
    with transaction.atomic():
        row = OAuthToken.objects.select_for_update().get(server=server)
        if row.access_token and row.expires_at > timezone.now() + REFRESH_MARGIN:
            # Another worker fetched it while this one waited for the lock.
            return row.access_token
        # The token request runs under the row lock on purpose: the other workers wait
        # a moment and reuse this token instead of each asking the provider. (SQLite has no
        # row locks: its transactions begin IMMEDIATE, so there every writer waits; this
        # happens about once an hour, each request bounded by OAUTH_TIMEOUT.)
        fresh = oauth_token_request(server=server)
        row.access_token = fresh.token
        row.expires_at = fresh.expires_at
        row.save(update_fields=["access_token", "expires_at", "updated_at"])
    return fresh.token


def oauth_token_invalidate(*, server: SmtpServer, token: str) -> None:
    """Forget ``token`` (the SMTP server refused it) unless another worker already replaced it."""
    with transaction.atomic():
        row = OAuthToken.objects.select_for_update().filter(server=server).first()
        if row is not None and row.access_token == token:
            row.delete()
            logger.info(
                "OAuth2 token of server %s refused by the SMTP server, discarded", server.pk
            )


def oauth_token_discard(*, server: SmtpServer) -> None:
    """Forget ``server``'s cached token: its credentials, method or mailbox just changed."""
    OAuthToken.objects.filter(server=server).delete()
