"""One connection to one server, sending stored bytes and reporting per-recipient results.

Both direct delivery and the queue use this; neither re-implements SMTP: the connection is
Django's own ``smtp.EmailBackend`` built from the server's settings, whose smtplib client
only writes a message's commands in one group where the server allows it (PIPELINING).
"""

import contextlib
import itertools
import re
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


# RFC 2920: the client writes a group of commands and reads their replies in order. A group
# is bounded so that the server's replies always fit in the sockets' buffers while the client
# is still writing (an unbounded one could leave both sides waiting to write).
_PIPELINED_GROUP = 100


class _PipeliningClientMixin:
    """smtplib's client with two changes, for every message:

    - when the server advertises PIPELINING (RFC 2920), as nearly every server does, the
      message's MAIL, RCPT and DATA commands go in one write and their replies are read
      together: one round trip for the envelope instead of two plus one per recipient.
      Without PIPELINING, smtplib's own ``sendmail`` asks one command at a time;
    - ``before_data()`` is called once the message's first command is written, while the
      server reads it, and before its reply is read: always before the message's data.

    A server delivers nothing of a session that dies before the end of the message's data
    (the process killed, the callable raising). The queue uses the call to record the
    previous message's result while the server works on this one's envelope.

    ``sendmail`` keeps smtplib's contract: the refused recipients are returned, and the
    same exceptions are raised for the same replies, after the same RSET or close.
    """

    before_data: Callable[[], None] | None = None

    def getreply(self):
        # The first reply read for a message comes before its data, whichever way it goes.
        before_data, self.before_data = self.before_data, None
        before_data_wait(before_data)
        return super().getreply()

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        self.ehlo_or_helo_if_needed()
        if not (self.has_extn("pipelining") and isinstance(msg, bytes)):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        if isinstance(to_addrs, str):
            to_addrs = [to_addrs]
        options = [*([f"size={len(msg)}"] if self.has_extn("size") else []), *mail_options]
        if any(option.lower() == "smtputf8" for option in options):
            if not self.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
            self.command_encoding = "utf-8"
        commands = [
            ("mail", f"from:{_quoted(from_addr)}{_option_list(options)}"),
            *(("rcpt", f"to:{_quoted(each)}{_option_list(rcpt_options)}") for each in to_addrs),
            ("data", ""),
        ]
        (mail_code, mail_reply), *recipient_replies, (data_code, data_reply) = self._pipeline(
            commands
        )
        if mail_code != 250:
            self._transaction_end(mail_code, in_data=data_code == 354)
            raise smtplib.SMTPSenderRefused(mail_code, mail_reply, from_addr)
        refused = {
            each: (code, reply)
            for each, (code, reply) in zip(to_addrs, recipient_replies, strict=True)
            if code not in (250, 251)
        }
        if len(refused) == len(to_addrs):
            self._transaction_end(data_code, in_data=data_code == 354)
            raise smtplib.SMTPRecipientsRefused(refused)
        if data_code != 354:
            self._transaction_end(data_code, in_data=False)
            raise smtplib.SMTPDataError(data_code, data_reply)
        self.send(_data_lines(msg))
        code, reply = self.getreply()
        if code != 250:
            self._transaction_end(code, in_data=False)
            raise smtplib.SMTPDataError(code, reply)
        return refused

    def _pipeline(self, commands: list[tuple[str, str]]) -> list[tuple[int, bytes]]:
        """Each command's reply, in order, the commands written a group at a time.

        A server that answers an error and hangs up (421) leaves the commands after it
        unanswered: they get that reply too. A disconnect without an error reply raises
        ``SMTPServerDisconnected``, as smtplib does.
        """
        replies = []
        try:
            for group in itertools.batched(commands, _PIPELINED_GROUP):
                with self._one_write():
                    for command, arguments in group:
                        self.putcmd(command, arguments)
                for _ in group:
                    replies.append(self.getreply())
        except smtplib.SMTPServerDisconnected:
            if not replies or replies[-1][0] < 400:
                raise
            replies += [replies[-1]] * (len(commands) - len(replies))
        return replies

    @contextlib.contextmanager
    def _one_write(self):
        """``putcmd`` (smtplib's checks and encoding) into one buffer, written at the end."""
        written = []
        self.send = written.append
        try:
            yield
        finally:
            del self.send
        self.send(b"".join(line.encode(self.command_encoding) for line in written))

    def _transaction_end(self, code: int, *, in_data: bool) -> None:
        """End a transaction that will send nothing, as smtplib does (close after a 421,
        RSET otherwise); a server that opened the data anyway gets no end of data but a
        closed session, in which nothing can be delivered."""
        if code == 421 or in_data:
            self.close()
        else:
            self._rset()


# An address made only of what RFC 5321 allows in a plain mailbox, with none of the characters
# smtplib.quoteaddr's parser gives a meaning to: quoteaddr would only put it in angle brackets.
_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:@\"]+@[^\s<>()\[\]\\,;:@\"]+")


def _quoted(address: str) -> str:
    """``smtplib.quoteaddr(address)``, without parsing an address that is already plain (the
    queue's always are: parsed when the message was recorded)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _option_list(options) -> str:
    return "".join(f" {option}" for option in options)


def _data_lines(msg: bytes) -> bytes:
    """The message as DATA's lines, as smtplib's ``data()`` writes them: a leading dot
    doubled, the last line ended, then the lone dot."""
    lines = re.sub(rb"(?m)^\.", b"..", msg) if msg.startswith(b".") or b"\n." in msg else msg
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return lines + b".\r\n"


class _SMTP(_PipeliningClientMixin, smtplib.SMTP):
    pass


class _SMTP_SSL(_PipeliningClientMixin, smtplib.SMTP_SSL):  # noqa: N801  (smtplib's name)
    pass


class _PipeliningBackendMixin:
    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP


class _SmtpBackend(_PipeliningBackendMixin, DjangoSmtpBackend):
    pass


class _XOAuth2Backend(_PipeliningBackendMixin, XOAuth2EmailBackend):
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

        ``before_data`` is called once the message's first command is written, while the
        server reads it, and always before the message's data goes: what it raises comes out
        of ``send`` as ``MessageWithheld``, after the session was dropped (so that nothing is
        delivered). A ``send`` that ends before asking the server anything does not call it.
        """
        connection = self.backend.connection
        # Internationalised addresses need the server's SMTPUTF8; smtplib refuses (an
        # SMTPNotSupportedError, permanent) when the server lacks it.
        needs_utf8 = not all(address.isascii() for address in [envelope_from, *recipients])
        try:
            connection.ehlo_or_helo_if_needed()  # the session's, not the message's, command
            connection.before_data = before_data
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
            if any(code == 421 for code, _text in error.recipients.values()):
                self._forget_connection_if_dead(421)  # smtplib closed the session
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
