"""One connection to one server, sending stored bytes and reporting per-recipient results.

Both direct delivery and the queue use this; neither re-implements SMTP: the connection is
Django's own ``smtp.EmailBackend`` built from the server's settings.
"""

import contextlib
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend

from smtpconfig.conf import mailadmin_setting
from smtpconfig.hosts import UnsafeHost, host_check
from smtpconfig.oauth import CredentialsRejected, oauth_uses_xoauth2
from smtpconfig.replies import Outcome, classify_reply
from smtpconfig.xoauth2 import XOAuth2EmailBackend


@dataclass(frozen=True)
class RecipientResult:
    email: str
    outcome: Outcome
    code: int | None = None
    reply: str = ""


@dataclass(frozen=True)
class SendResult:
    """What became of one message on one attempt.

    ``outcome`` is the message's: ACCEPTED when at least one recipient was accepted;
    ``recipients`` tells each recipient's own fate.
    """

    outcome: Outcome
    code: int | None = None
    reply: str = ""
    recipients: list[RecipientResult] = field(default_factory=list)


class ConnectionFailed(OSError):
    """The server could not be reached or refused the session; carries the classification."""

    def __init__(self, message: str, *, outcome: Outcome, code: int | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.code = code


def _decode(reply) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply or "")


class _WaitBeforeDataMixin:
    """smtplib's client that, once the server took the envelope (MAIL, RCPT), waits for
    ``before_data()`` to return before it sends the message (DATA).

    A server delivers nothing of a session that dies before the message's data (the
    process killed, the callable raising). The queue uses the wait to record the previous
    message's result while this one's envelope is on the wire.
    """

    before_data: Callable[[], None] | None = None

    def data(self, msg):
        before_data_wait(self.before_data)
        return super().data(msg)


class _SMTP(_WaitBeforeDataMixin, smtplib.SMTP):
    pass


class _SMTP_SSL(_WaitBeforeDataMixin, smtplib.SMTP_SSL):  # noqa: N801  (smtplib's name)
    pass


class _WaitBeforeDataBackendMixin:
    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP


class _SmtpBackend(_WaitBeforeDataBackendMixin, DjangoSmtpBackend):
    pass


class _XOAuth2Backend(_WaitBeforeDataBackendMixin, XOAuth2EmailBackend):
    pass


class MessageWithheld(Exception):  # noqa: N818  (not an error of its own: see __cause__)
    """``before_data`` raised: the message's data was never sent, the session was dropped,
    and nothing was delivered. Its ``__cause__`` is what was raised."""


def before_data_wait(before_data: Callable[[], None] | None) -> None:
    """Call a connection's ``before_data`` (if any) before the message goes; what it raises
    comes out as ``MessageWithheld``."""
    if before_data is None:
        return
    try:
        before_data()
    except BaseException as error:
        raise MessageWithheld from error


def smtp_backend_for(server) -> DjangoSmtpBackend:
    """Django's SMTP backend configured from ``server`` (one connection, reused for a batch)."""
    options = {
        "alias": f"mailadmin-server-{server.pk}",
        "host": server.host,
        "port": server.port,
        "use_tls": server.security == server.Security.STARTTLS,
        "use_ssl": server.security == server.Security.SSL,
        # The site-wide MAILADMIN['SMTP_TIMEOUT'] stands in for a server without its own.
        "timeout": server.timeout or mailadmin_setting("SMTP_TIMEOUT"),
    }
    if oauth_uses_xoauth2(server=server):
        # Microsoft 365 / Google Workspace: AUTH XOAUTH2 with the shared token, no password.
        backend = _XOAuth2Backend(server=server, **options)
    else:
        backend = _SmtpBackend(
            username=server.username if server.use_auth else None,
            password=str(server.password) if server.use_auth else None,
            **options,
        )
    ca_file = mailadmin_setting("SMTP_CA_FILE")
    if ca_file:
        # Replaces Django's default context (public CAs); hostname checks stay on.
        backend.ssl_context = ssl.create_default_context(cafile=ca_file)
    return backend


class SmtpConnection:
    """An open-once, send-many connection to one SMTP server."""

    def __init__(self, server):
        self.server = server
        self.backend = smtp_backend_for(server)

    def open(self) -> None:
        try:
            # Before every connection, not only at save: a name can change what it resolves to.
            host_check(host=self.server.host, port=self.server.port)
            self.backend.open()
        except UnsafeHost as error:
            raise ConnectionFailed(error.messages[0], outcome=Outcome.PERMANENT) from error
        except CredentialsRejected as error:
            # The provider's own words, without an SMTP code in front of them.
            raise ConnectionFailed(
                str(error), outcome=Outcome.CREDENTIALS, code=error.smtp_code
            ) from error
        except smtplib.SMTPAuthenticationError as error:
            raise ConnectionFailed(
                f"{error.smtp_code} {_decode(error.smtp_error)}",
                outcome=Outcome.CREDENTIALS,
                code=error.smtp_code,
            ) from error
        except smtplib.SMTPResponseException as error:
            text = _decode(error.smtp_error)
            raise ConnectionFailed(
                f"{error.smtp_code} {text}",
                outcome=classify_reply(error.smtp_code, text),
                code=error.smtp_code,
            ) from error
        except ConnectionRefusedError as error:
            raise ConnectionFailed(str(error), outcome=Outcome.SERVER_BUSY) from error
        except ssl.SSLError as error:
            raise ConnectionFailed(f"TLS: {error}", outcome=Outcome.TEMPORARY) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ConnectionFailed(
                str(error) or type(error).__name__, outcome=Outcome.TEMPORARY
            ) from error

    def send(
        self,
        *,
        envelope_from: str,
        recipients: list[str],
        raw: bytes,
        before_data: Callable[[], None] | None = None,
    ) -> SendResult:
        """Send ``raw`` as it is; never raises for what the server answers.

        Raises for what is wrong with the message itself (an address smtplib will not put
        on the wire); the caller then fails that message and calls ``discard()``.

        ``before_data`` is called once the server took the envelope, before the message
        goes: what it raises comes out of ``send`` as ``MessageWithheld``, after the session
        was dropped (so that nothing is delivered).
        """
        connection = self.backend.connection
        # Internationalised addresses need the server's SMTPUTF8; smtplib refuses (an
        # SMTPNotSupportedError, permanent) when the server lacks it.
        needs_utf8 = not all(address.isascii() for address in [envelope_from, *recipients])
        connection.before_data = before_data
        try:
            refused = connection.sendmail(
                envelope_from, recipients, raw, mail_options=["SMTPUTF8"] if needs_utf8 else []
            )
        except MessageWithheld:
            self.discard()
            raise
        except smtplib.SMTPNotSupportedError as error:
            self._forget_connection_if_dead(0)
            return SendResult(Outcome.PERMANENT, None, str(error))
        except smtplib.SMTPRecipientsRefused as error:
            results = [
                RecipientResult(address, classify_reply(code, _decode(text)), code, _decode(text))
                for address, (code, text) in error.recipients.items()
            ]
            worst = min(results, key=lambda result: result.outcome != Outcome.TEMPORARY)
            return SendResult(worst.outcome, worst.code, worst.reply, results)
        except smtplib.SMTPResponseException as error:
            text = _decode(error.smtp_error)
            self._forget_connection_if_dead(error.smtp_code)
            return SendResult(classify_reply(error.smtp_code, text), error.smtp_code, text)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            self._forget_connection_if_dead(None)
            return SendResult(Outcome.TEMPORARY, None, str(error) or type(error).__name__)
        finally:
            connection.before_data = None
        results = []
        for address in recipients:
            if address in refused:
                code, text = refused[address]
                text = _decode(text)
                results.append(RecipientResult(address, classify_reply(code, text), code, text))
            else:
                results.append(RecipientResult(address, Outcome.ACCEPTED, 250, ""))
        return SendResult(Outcome.ACCEPTED, 250, "", results)

    def _forget_connection_if_dead(self, code: int | None) -> None:
        # After a disconnect, a timeout or a 421 the session is unusable: drop it so the next
        # message of the batch opens a fresh one instead of failing on a dead socket.
        if self.backend.connection is None:
            return
        if code is None or code == 421:
            with contextlib.suppress(OSError):
                self.backend.connection.close()
            self.backend.connection = None
        else:
            try:
                self.backend.connection.rset()
            except (smtplib.SMTPException, OSError):
                self.backend.connection = None

    def discard(self) -> None:
        """Drop the session after an error left it in an unknown state (mid-transaction)."""
        self._forget_connection_if_dead(None)

    @property
    def is_open(self) -> bool:
        return self.backend.connection is not None

    def close(self) -> None:
        """Close the connection; never raises (the results are already recorded)."""
        try:
            self.backend.close()
        except (smtplib.SMTPException, OSError):
            self.backend.connection = None
