"""Django's SMTP backend signing in with SASL XOAUTH2 and the server's OAuth2 access token.

Microsoft 365 and Google Workspace accept ``AUTH XOAUTH2`` with the mailbox address and a
bearer token instead of a password. Everything else (connection, STARTTLS, sending) is
Django's ``smtp.EmailBackend`` unchanged.
"""

import smtplib

from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend
from django.utils.translation import gettext_lazy as _

from smtpconfig.models import SmtpServer
from smtpconfig.oauth import (
    CredentialsRejected,
    oauth_mailbox_for,
    oauth_token_get,
    oauth_token_invalidate,
)

# The reply of Microsoft 365 and Google to a token they do not accept (expired, revoked,
# not allowed for this mailbox).
_REFUSED = 535


def xoauth2_initial_response(*, user: str, token: str) -> str:
    """The SASL XOAUTH2 initial client response (smtplib base64-encodes it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


class _XOAuth2Responder:
    """smtplib's ``authobject``: the initial response, then an empty line to an error challenge.

    Google answers a refused token with a 334 challenge holding a JSON error; the client
    must answer it with an empty line to get the final 535. The JSON is kept for the report.
    """

    def __init__(self, *, user: str, token: str):
        self._initial = xoauth2_initial_response(user=user, token=token)
        self.server_error = ""

    def __call__(self, challenge=None):
        if challenge is None:
            return self._initial
        self.server_error = challenge.decode("utf-8", "replace")
        return ""

    def __repr__(self):
        return "<XOAUTH2 responder>"


class XOAuth2EmailBackend(DjangoSmtpBackend):
    """An SMTP backend for one server whose ``auth_method`` is an OAuth2 one.

    ``open()`` gets the shared token, connects (and upgrades with STARTTLS) as Django does,
    then authenticates with ``AUTH XOAUTH2``. A 535 from the SMTP server discards the cached
    token and tries once more with a new one (it may have been revoked before it expired);
    a second refusal raises ``CredentialsRejected``, as does a provider refusing the
    credentials. Both are ``SMTPAuthenticationError``s.
    """

    def __init__(self, *, server: SmtpServer, **kwargs):
        # Without user and password Django's open() never calls login().
        kwargs.update(username=None, password=None)
        super().__init__(**kwargs)
        self.server = server
        self.mailbox = oauth_mailbox_for(server=server)
        self._last_responder = None

    def open(self):
        if self.connection:
            return False
        try:
            token = oauth_token_get(server=self.server)
        except OSError:
            if not self.fail_silently:
                raise
            return None
        opened = super().open()
        if not opened:
            return opened
        try:
            self._authenticate(token)
        except (OSError, smtplib.SMTPException):
            self._discard_connection()
            if not self.fail_silently:
                raise
            return None
        return True

    def _authenticate(self, token: str) -> None:
        if not self.mailbox.isascii():
            # XOAUTH2 carries the user in ASCII; smtplib would fail with an encoding error.
            raise CredentialsRejected(
                _("The mailbox address %(mailbox)s cannot sign in with OAuth2: use its ASCII form.")
                % {"mailbox": self.mailbox},
                provider=str(self.server.get_auth_method_display()),
                error="mailbox_not_ascii",
            )
        self.connection.ehlo_or_helo_if_needed()
        try:
            self._auth(token)
            return
        except smtplib.SMTPAuthenticationError as error:
            if error.smtp_code != _REFUSED:
                raise
        oauth_token_invalidate(server=self.server, token=token)
        token = oauth_token_get(server=self.server)
        try:
            self._auth(token)
        except smtplib.SMTPAuthenticationError as error:
            reply = error.smtp_error
            if isinstance(reply, bytes):
                reply = reply.decode("utf-8", "replace")
            detail = f"{error.smtp_code} {reply}"
            if self._last_responder.server_error:
                detail = f"{detail} {self._last_responder.server_error}"
            raise CredentialsRejected(
                _("The SMTP server refused the OAuth2 sign-in of %(mailbox)s: %(reply)s")
                % {"mailbox": self.mailbox, "reply": detail},
                provider=str(self.server.get_auth_method_display()),
                error="smtp_auth_refused",
                smtp_code=error.smtp_code,
            ) from None

    def _auth(self, token: str) -> None:
        self._last_responder = _XOAuth2Responder(user=self.mailbox, token=token)
        self.connection.auth("XOAUTH2", self._last_responder, initial_response_ok=True)

    def _discard_connection(self) -> None:
        connection, self.connection = self.connection, None
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()
