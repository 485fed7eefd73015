"""Fixtures of the deliverability tests: loopback DNS servers serving fixture zones."""

import pytest

from tests.deliverability.dns_server import SilentServer, ZoneServer


@pytest.fixture
def dns_zone(settings):
    """Start a DNS server for a zone (text) and point Mailadmin's resolver at it."""
    servers = []

    def start(zone: str = "") -> ZoneServer:
        server = ZoneServer(zone).start()
        servers.append(server)
        settings.MAILADMIN = {
            **settings.MAILADMIN,
            "DNS_NAMESERVERS": [server.host],
            "DNS_PORT": server.port,
            "DNS_TIMEOUT": 3,
        }
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def silent_dns(settings):
    """Point Mailadmin's resolver at a name server that never answers."""
    server = SilentServer()
    settings.MAILADMIN = {
        **settings.MAILADMIN,
        "DNS_NAMESERVERS": [server.host],
        "DNS_PORT": server.port,
        "DNS_TIMEOUT": 1,
    }
    yield server
    server.stop()
