"""Shared fixtures: real SMTP servers on loopback, servers configured in the database."""

import pytest

from tests.smtp_sink import Sink


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
