"""A programmable SMTP server (aiosmtpd) on a free loopback port, for tests.

It records what it received (envelope and parsed message) and can be told to answer
4xx/5xx per recipient or per message, to drop the connection mid-DATA, to stall, to
require AUTH or to offer STARTTLS.
"""

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    # reply to MAIL instead of 250, e.g. "553 5.7.1 Sender not allowed"
    mail_reply: str | None = None
    # address (lower case) -> reply, e.g. "550 5.1.1 No such user"; after a 421 the server
    # hangs up, as a server going down does
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    # reply to DATA instead of 250, e.g. "451 4.3.0 Try again later"
    data_reply: str | None = None
    # close the connection during DATA without answering
    drop_in_data: bool = False
    # seconds to wait before answering DATA (a slow or stalled server)
    data_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # SMTP sessions opened (one EHLO each without STARTTLS): proves connection reuse
    sessions: int = 0
    # advertise PIPELINING (RFC 2920), as nearly every real server does; aiosmtpd reads
    # commands in order from its stream, so it handles pipelined groups without saying so
    pipelining: bool = True
    # what the client had already written after each MAIL command, before its answer: the
    # rest of the envelope's group when the client pipelines, nothing when it asks and waits
    after_mail: list[bytes] = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.after_mail.append(bytes(server._reader._buffer))  # asyncio's read-ahead
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply and reply.startswith("421"):
            server.transport.write(f"{reply}\r\n".encode())
            server.transport.close()  # after the reply is written
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            # A blocking sleep stalls this connection's answer like a hung server would.
            time.sleep(self.data_delay)
        if self.drop_in_data:
            server.transport.close()
            return "421 closing"
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 Accepted"


class Sink:
    """One running SMTP server; ``received`` lists what it accepted, in order."""

    def __init__(
        self,
        *,
        username=None,
        password=None,
        tls_context=None,
        require_starttls=False,
        smtputf8=True,
    ):
        self.handler = SinkHandler()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.auth_attempts: list[tuple[str, str]] = []
        kwargs = {}
        if username is not None:
            kwargs.update(
                authenticator=self._authenticator(username, password),
                auth_require_tls=require_starttls,
            )
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            enable_SMTPUTF8=smtputf8,
            ready_timeout=10,
            **kwargs,
        )

    def _authenticator(self, username, password):
        def authenticate(server, session, envelope, mechanism, auth_data):
            login = auth_data.login.decode() if auth_data.login else ""
            secret = auth_data.password.decode() if auth_data.password else ""
            self.auth_attempts.append((mechanism, login))
            # handled=False: aiosmtpd answers 535 itself on failure (True would leave the
            # client waiting for a reply that never comes).
            return AuthResult(
                success=(login == username and secret == password),
                handled=False,
                auth_data=auth_data,
            )

        return authenticate

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def recipients(self) -> list[str]:
        return [address for item in self.received for address in item.rcpt_tos]

    def start(self) -> "Sink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def self_signed_tls_context(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate made now for 127.0.0.1; returns it and the cert path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)
