"""Diagnostics for one server: "Test connection" and "Send test mail".

Both go through the same connection code as real delivery (``smtpconfig.transport``), so a
passing test means the queue can connect too. A test mail is sent straight through the
transport: it is a diagnostic, not a club message, and never enters the outbox.
"""

import enum
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.utils import formataddr, make_msgid

from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

from smtpconfig.connections import server_connection
from smtpconfig.models import SmtpServer
from smtpconfig.oauth import CredentialsRejected, oauth_mailbox_for, oauth_uses_xoauth2
from smtpconfig.replies import Outcome
from smtpconfig.transport import ConnectionFailed
from smtpconfig.wire import wire_bytes


class Failure(enum.StrEnum):
    NAME_NOT_RESOLVED = "name_not_resolved"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "tls"
    AUTHENTICATION = "authentication"
    MISSING_CREDENTIALS = "missing_credentials"
    DISCONNECTED = "disconnected"
    REJECTED = "rejected"
    NETWORK = "network"


@dataclass(frozen=True)
class DiagnosticReport:
    """What a test found: a sentence for the administrator and the server's own words."""

    ok: bool
    summary: str
    detail: str = ""
    failure: Failure | None = None


def _reply_text(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{error.smtp_code} {text}".strip()


def _where(server: SmtpServer) -> str:
    """What the test talks to: the SMTP server's address, or the e-mail service's name."""
    if server.transport != SmtpServer.Transport.SMTP:
        return str(server.get_transport_display())
    return f"{server.host}:{server.port}"


def _service_failure_report(*, server: SmtpServer, error: ConnectionFailed) -> DiagnosticReport:
    """Why an e-mail service's client could not be built: its stored credentials, mostly.

    The text names missing or unknown keys, never a value.
    """
    if error.outcome == Outcome.CREDENTIALS:
        return DiagnosticReport(
            False,
            _(
                "%(service)s cannot be used with the stored credentials: %(reason)s Enter them "
                "again on the server's page."
            )
            % {"service": _where(server), "reason": str(error)},
            str(error),
            Failure.MISSING_CREDENTIALS,
        )
    return DiagnosticReport(
        False,
        _("Could not reach %(service)s: %(error)s") % {"service": _where(server), "error": error},
        str(error),
        Failure.NETWORK,
    )


def _open_failure_report(*, server: SmtpServer, error: ConnectionFailed) -> DiagnosticReport:
    if server.transport != SmtpServer.Transport.SMTP:
        return _service_failure_report(server=server, error=error)
    return _failure_report(server=server, error=error.__cause__ or error)


def _failure_report(*, server: SmtpServer, error: BaseException) -> DiagnosticReport:
    """Name the precise reason ``error`` (the transport's underlying one) stopped the test."""
    where = _where(server)
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(
        error.__context__, TimeoutError
    ):
        # smtplib reports a read timeout as a disconnect; the timeout is the reason.
        error = error.__context__
    if isinstance(error, socket.gaierror):
        return DiagnosticReport(
            False,
            _("The name “%(host)s” could not be resolved: check the server name.")
            % {"host": server.host},
            str(error),
            Failure.NAME_NOT_RESOLVED,
        )
    if isinstance(error, ConnectionRefusedError):
        return DiagnosticReport(
            False,
            _(
                "%(where)s refused the connection: no mail server listens on that port, "
                "or a firewall refuses it. Check the port."
            )
            % {"where": where},
            str(error),
            Failure.REFUSED,
        )
    if isinstance(error, TimeoutError):
        return DiagnosticReport(
            False,
            _(
                "%(where)s did not answer within %(seconds)s seconds (timeout). A firewall may "
                "drop the connection, or the port expects another security setting."
            )
            % {"where": where, "seconds": server.timeout},
            str(error) or "timeout",
            Failure.TIMEOUT,
        )
    if isinstance(error, ssl.SSLError):
        return DiagnosticReport(
            False,
            _(
                "The TLS handshake with %(where)s failed (%(reason)s). Check the security "
                "setting for this port, and that the server's certificate is valid for "
                "“%(host)s”."
            )
            % {"where": where, "reason": error.reason or error, "host": server.host},
            str(error),
            Failure.TLS,
        )
    if isinstance(error, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(error):
        return DiagnosticReport(
            False,
            _("%(where)s does not offer STARTTLS. Choose another security setting or port.")
            % {"where": where},
            str(error),
            Failure.TLS,
        )
    if isinstance(error, CredentialsRejected) and error.smtp_code is None:
        # The provider's token endpoint refused before any SMTP sign-in: its words, not a
        # reply code.
        return DiagnosticReport(
            False,
            _("%(provider)s refused the OAuth2 sign-in: %(reason)s")
            % {"provider": error.provider, "reason": error},
            str(error),
            Failure.AUTHENTICATION,
        )
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DiagnosticReport(
            False,
            _("The server refused the user name or password. It answered: %(reply)s")
            % {"reply": _reply_text(error)},
            _reply_text(error),
            Failure.AUTHENTICATION,
        )
    if isinstance(error, smtplib.SMTPNotSupportedError) or (
        type(error) is smtplib.SMTPException and "authentication" in str(error).lower()
    ):
        return DiagnosticReport(
            False,
            _(
                "The server offers no authentication method Mailadmin can use (%(reason)s). "
                "Untick SMTP authentication, or turn on STARTTLS: many servers offer "
                "authentication only over TLS."
            )
            % {"reason": error},
            str(error),
            Failure.AUTHENTICATION,
        )
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DiagnosticReport(
            False,
            _(
                "%(where)s closed the connection unexpectedly. The port may expect SSL/TLS "
                "from the first byte, or the server refuses this client."
            )
            % {"where": where},
            str(error),
            Failure.DISCONNECTED,
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return DiagnosticReport(
            False,
            _("%(where)s refused the session. It answered: %(reply)s")
            % {"where": where, "reply": _reply_text(error)},
            _reply_text(error),
            Failure.REJECTED,
        )
    return DiagnosticReport(
        False,
        _("Could not talk to %(where)s: %(error)s")
        % {"where": where, "error": str(error) or type(error).__name__},
        str(error),
        Failure.NETWORK,
    )


def _missing_password(server: SmtpServer) -> DiagnosticReport | None:
    # Django's backend silently skips AUTH without a password: say so instead of reporting
    # a success the queue would then not have.
    if (
        server.transport == SmtpServer.Transport.SMTP
        and server.use_auth
        and server.auth_method == SmtpServer.AuthMethod.PASSWORD
        and not (server.username and server.password)
    ):
        return DiagnosticReport(
            False,
            _(
                "SMTP authentication is on but no user name or password is stored. Enter them, "
                "or untick SMTP authentication."
            ),
            failure=Failure.MISSING_CREDENTIALS,
        )
    return None


def _session_description(server: SmtpServer, session: smtplib.SMTP) -> str:
    sock = session.sock
    tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    parts = [
        _("Connected to %(where)s") % {"where": f"{server.host}:{server.port}"},
        _("encrypted with %(tls)s") % {"tls": tls_version}
        if tls_version
        else _("without encryption"),
    ]
    if oauth_uses_xoauth2(server=server):
        parts.append(
            _("signed in with OAuth2 as %(user)s") % {"user": oauth_mailbox_for(server=server)}
        )
    elif server.use_auth:
        parts.append(_("signed in as %(user)s") % {"user": server.username})
    return ", ".join(parts)


def server_connection_test(*, server: SmtpServer) -> DiagnosticReport:
    """Connect, secure and sign in as delivery would, then leave without sending anything."""
    missing = _missing_password(server)
    if missing is not None:
        return missing
    connection = server_connection(server)
    try:
        connection.open()
    except ConnectionFailed as error:
        return _open_failure_report(server=server, error=error)
    try:
        session = getattr(connection.backend, "connection", None)
        if not isinstance(session, smtplib.SMTP):
            # An e-mail service's API has no session to open: its client was built from the
            # credentials, and only a real send reaches the service.
            return DiagnosticReport(
                True,
                _(
                    "The e-mail service's settings are complete. Its API is only reached by a "
                    "mail: use “Send test mail” to try it."
                ),
            )
        description = _session_description(server, session)
        greeting = (session.ehlo_resp or b"").decode("utf-8", "replace").splitlines()
    finally:
        connection.close()
    return DiagnosticReport(
        True,
        _("%(description)s. No mail was sent.") % {"description": description},
        greeting[0] if greeting else "",
    )


def diagnostic_mail_build(*, server: SmtpServer, recipient: str) -> bytes:
    """The bytes of a short test mail from the server's sender to ``recipient``."""
    domain = server.sender_email.rpartition("@")[2]
    message = EmailMessage(
        subject=_("Mailadmin test mail through “%(server)s”") % {"server": server.name},
        body=_(
            "This is a test mail sent from Mailadmin through the server “%(server)s” "
            "(%(where)s). If you can read it, the server delivers mail.\n"
        )
        % {"server": server.name, "where": _where(server)},
        from_email=formataddr((server.sender_name, server.sender_email)),
        to=[recipient],
        reply_to=[server.reply_to] if server.reply_to else [],
        headers={"Message-ID": make_msgid(domain=domain)},
    )
    return wire_bytes(message)


def server_test_mail_send(*, server: SmtpServer, recipient: str) -> DiagnosticReport:
    """Send one test mail to ``recipient`` through ``server``, outside the outbox."""
    missing = _missing_password(server)
    if missing is not None:
        return missing
    raw = diagnostic_mail_build(server=server, recipient=recipient)
    connection = server_connection(server)
    try:
        connection.open()
    except ConnectionFailed as error:
        return _open_failure_report(server=server, error=error)
    try:
        result = connection.send(envelope_from=server.sender_email, recipients=[recipient], raw=raw)
    finally:
        connection.close()
    refused = [item for item in result.recipients if item.outcome != Outcome.ACCEPTED]
    if result.outcome == Outcome.ACCEPTED and not refused:
        return DiagnosticReport(
            True,
            _("The server accepted the test mail for %(recipient)s.") % {"recipient": recipient},
        )
    reply = refused[0].reply if refused else result.reply
    code = refused[0].code if refused else result.code
    answer = f"{code} {reply}".strip() if code else reply
    return DiagnosticReport(
        False,
        _("The server did not accept the test mail for %(recipient)s. It answered: %(reply)s")
        % {"recipient": recipient, "reply": answer},
        answer,
        Failure.REJECTED,
    )
