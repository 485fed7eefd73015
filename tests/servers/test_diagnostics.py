"""'Test connection' and 'Send test mail' against real SMTP servers on loopback."""

import contextlib
import socket
import threading

import pytest
from django.test import override_settings

from smtpconfig.diagnostics import Failure, server_connection_test, server_test_mail_send
from smtpconfig.models import SmtpServer
from tests.smtp_sink import free_port, self_signed_tls_context

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def tls(tmp_path):
    """A server-side TLS context and the path of its certificate, made for this test."""
    return self_signed_tls_context(tmp_path)


@pytest.fixture
def starttls_sink(smtp_sink, tls):
    """A server that offers AUTH only after STARTTLS, with a certificate made now."""
    context, _cert_path = tls
    return smtp_sink(username="club", password=PASSWORD, tls_context=context, require_starttls=True)


@pytest.fixture
def trust_test_ca(tls, settings):
    _context, cert_path = tls
    settings.MAILADMIN = {**settings.MAILADMIN, "SMTP_CA_FILE": cert_path}


def starttls_server(make_server, sink, **fields):
    return make_server(
        sink=sink,
        security=SmtpServer.Security.STARTTLS,
        use_auth=True,
        username="club",
        password=PASSWORD,
        **fields,
    )


def test_starttls_and_auth_succeed_without_sending_mail(make_server, starttls_sink, trust_test_ca):
    server = starttls_server(make_server, starttls_sink)

    report = server_connection_test(server=server)

    assert report.ok, report
    assert "encrypted with TLSv1" in report.summary
    assert "signed in as club" in report.summary
    assert "No mail was sent" in report.summary
    assert [login for _mechanism, login in starttls_sink.auth_attempts] == ["club"]
    assert starttls_sink.received == []


def test_plain_auth_succeeds(make_server, smtp_sink):
    sink = smtp_sink(username="club", password=PASSWORD)
    server = make_server(sink=sink, use_auth=True, username="club", password=PASSWORD)

    report = server_connection_test(server=server)

    assert report.ok, report
    assert "without encryption" in report.summary
    assert [login for _mechanism, login in sink.auth_attempts] == ["club"]


def test_wrong_password_reports_the_servers_reply_and_never_the_password(make_server, smtp_sink):
    sink = smtp_sink(username="club", password=PASSWORD)
    server = make_server(sink=sink, use_auth=True, username="club", password="wrong-guess-123")

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.AUTHENTICATION
    assert report.summary.startswith("The server refused the user name or password.")
    assert "535" in report.summary and "535" in report.detail
    assert "wrong-guess-123" not in report.summary + report.detail
    assert PASSWORD not in report.summary + report.detail


def test_untrusted_certificate_is_a_tls_failure(make_server, starttls_sink):
    # No SMTP_CA_FILE: the certificate made for the test is trusted by nobody.
    server = starttls_server(make_server, starttls_sink)

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.TLS
    assert "TLS handshake" in report.summary
    assert "CERTIFICATE_VERIFY_FAILED" in report.summary


def test_starttls_not_offered_is_a_tls_failure(make_server, sink):
    server = make_server(sink=sink, security=SmtpServer.Security.STARTTLS)

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.TLS
    assert "does not offer STARTTLS" in report.summary


def test_ssl_against_a_plain_port_fails_clearly(make_server, sink):
    server = make_server(sink=sink, security=SmtpServer.Security.SSL, timeout=5)

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure in {Failure.TLS, Failure.DISCONNECTED, Failure.TIMEOUT}


def test_refused_port(make_server):
    server = make_server(host="127.0.0.1", port=free_port())

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.REFUSED
    assert f"127.0.0.1:{server.port} refused the connection" in report.summary


def test_unresolvable_name(make_server):
    server = make_server(host="smtp.club.invalid", port=587)

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.NAME_NOT_RESOLVED
    assert "“smtp.club.invalid” could not be resolved" in report.summary


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word, like a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    held = []

    def accept():
        # The listener is closed at teardown whether or not a client came.
        with contextlib.suppress(OSError):
            held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()
    thread.join(timeout=5)


def test_silent_server_times_out(make_server, silent_port):
    server = make_server(host="127.0.0.1", port=silent_port, timeout=1)

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.TIMEOUT
    assert f"127.0.0.1:{silent_port} did not answer within 1 seconds" in report.summary


def test_server_closing_at_once_is_reported_as_a_disconnect(make_server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def accept_and_close():
        connection, _address = listener.accept()
        connection.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    server = make_server(host="127.0.0.1", port=listener.getsockname()[1], timeout=5)

    report = server_connection_test(server=server)
    thread.join(timeout=5)
    listener.close()

    assert not report.ok
    assert report.failure == Failure.DISCONNECTED
    assert "closed the connection unexpectedly" in report.summary


def test_server_refusing_the_session_reports_its_reply(make_server):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def greet_with_refusal():
        connection, _address = listener.accept()
        connection.sendall(b"554 5.3.2 No service for you\r\n")
        connection.close()

    thread = threading.Thread(target=greet_with_refusal, daemon=True)
    thread.start()
    server = make_server(host="127.0.0.1", port=listener.getsockname()[1], timeout=5)

    report = server_connection_test(server=server)
    thread.join(timeout=5)
    listener.close()

    assert not report.ok
    assert report.failure == Failure.REJECTED
    assert "refused the session" in report.summary
    assert report.detail == "554 5.3.2 No service for you"


def test_missing_password_is_reported_without_connecting(make_server):
    server = make_server(host="127.0.0.1", port=free_port(), use_auth=True, username="club")

    report = server_connection_test(server=server)

    assert not report.ok
    assert report.failure == Failure.MISSING_CREDENTIALS


def test_test_mail_goes_through_starttls_and_auth(make_server, starttls_sink, trust_test_ca):
    server = starttls_server(make_server, starttls_sink, reply_to="answers@club.example")

    report = server_test_mail_send(server=server, recipient="secretary@club.example")

    assert report.ok, report
    assert report.summary == "The server accepted the test mail for secretary@club.example."
    [received] = starttls_sink.received
    assert received.mail_from == "office@club.example"
    assert received.rcpt_tos == ["secretary@club.example"]
    message = received.message
    assert message["From"] == "Golf Club <office@club.example>"
    assert message["To"] == "secretary@club.example"
    assert message["Reply-To"] == "answers@club.example"
    assert server.name in message["Subject"]
    assert message["Message-ID"].endswith("@club.example>")


def test_test_mail_refused_recipient_reports_the_reply(make_server, sink):
    sink.handler.rcpt_replies["nobody@club.example"] = "550 5.1.1 No such user"
    server = make_server(sink=sink)

    report = server_test_mail_send(server=server, recipient="nobody@club.example")

    assert not report.ok
    assert report.failure == Failure.REJECTED
    assert "550 5.1.1 No such user" in report.summary
    assert sink.received == []


def test_test_mail_to_an_unreachable_server(make_server):
    server = make_server(host="127.0.0.1", port=free_port())

    report = server_test_mail_send(server=server, recipient="secretary@club.example")

    assert not report.ok
    assert report.failure == Failure.REFUSED


@override_settings(LANGUAGE_CODE="en")
def test_test_mail_rejected_at_data(make_server, sink):
    sink.handler.data_reply = "554 5.7.1 Message refused"
    server = make_server(sink=sink)

    report = server_test_mail_send(server=server, recipient="secretary@club.example")

    assert not report.ok
    assert "554 5.7.1 Message refused" in report.summary
