"""Shared fixtures: real SMTP servers on loopback, servers configured in the database."""

import ipaddress
import socket
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from tests.chromium import chromium_launched
from tests.smtp_sink import Sink

REAL_GETADDRINFO = socket.getaddrinfo


def _resolves_locally(host) -> bool:
    name = host.decode() if isinstance(host, bytes) else host
    if name in (None, "localhost"):
        return True
    try:
        ipaddress.ip_address(str(name).strip("[]"))
    except ValueError:
        pass
    else:
        return True
    try:
        # Numeric forms such as "2852039166" or "0xa9.0xfe.0xa9.0xfe" need no resolver either.
        socket.inet_aton(str(name))
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """A request in French or German leaves its language active in the test's thread (the
    locale middleware never resets it): undo it, so the next test reads the default language."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def local_resolver(monkeypatch):
    """Resolve only addresses and ``localhost``; any other name does not exist.

    The system's resolver is outside this machine's loopback, and tests send nothing off it:
    a server saved as ``smtp.office365.com`` is checked and connected to without a DNS query.
    """

    def getaddrinfo(host, port, *args, **kwargs):
        if _resolves_locally(host):
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def smtp_sink():
    """A factory of running SMTP sinks, each on its own free loopback port; all stopped after."""
    sinks = []

    def start(**kwargs) -> Sink:
        sink = Sink(**kwargs).start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
def sink(smtp_sink):
    """One plain SMTP sink."""
    return smtp_sink()


@pytest.fixture
def make_server(db):
    """Create an ``SmtpServer`` pointing at a sink (or anywhere), with sane test defaults."""
    from smtpconfig.models import SmtpServer

    def make(*, sink=None, **fields) -> SmtpServer:
        defaults = {
            "name": f"server-{SmtpServer.objects.count() + 1}",
            "sender_email": "office@club.example",
            "sender_name": "Golf Club",
            "host": sink.host if sink else "127.0.0.1",
            "port": sink.port if sink else 2525,
            "security": SmtpServer.Security.NONE,
            "use_auth": False,
            "timeout": 5,
        }
        defaults.update(fields)
        return SmtpServer.objects.create(**defaults)

    return make


def pytest_sessionfinish(session, exitstatus):
    """The SQLite test database is a file (tests/settings.py); pytest-django removes it, and
    this removes the write-ahead log and shared-memory files SQLite keeps beside it."""
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def routing_mailer(settings):
    """Mailadmin's backend as ``MAILERS["default"]``: Django's test setup swaps every mailer
    for the in-memory one, and tests of the CRM's path need the real one."""
    settings.MAILERS = {"default": {"BACKEND": "smtpconfig.backends.routing.EmailBackend"}}


@pytest.fixture
def browser():
    """Chromium for one test (tests/browser keeps one for its whole module)."""
    with chromium_launched() as launched:
        yield launched


@pytest.fixture
def broker():
    """The test run's task broker (django-q2's ORM broker, or Redis when REDIS_URL is set),
    empty before and after the test."""
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


@pytest.fixture
def fresh_session():
    """PostgreSQL: this test's connection with nothing prepared, and as new to
    ``core.compiled`` (which prepares a session's reads and writes once)."""
    from django.db import connection

    from core.compiled import _Session

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    _Session._sessions.pop(connection.connection, None)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    _Session._sessions.pop(connection.connection, None)
