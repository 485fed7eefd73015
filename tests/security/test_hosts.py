"""Safe outbound hosts: the refused ranges, names that resolve into them, the narrowing."""

import socket

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse

from smtpconfig import hosts
from smtpconfig.hosts import UnsafeHost, host_check
from smtpconfig.models import SmtpServer
from smtpconfig.replies import Outcome
from smtpconfig.transport import ConnectionFailed, SmtpConnection
from tests.security.conftest import verified_client


def mailadmin_with(**values):
    return override_settings(MAILADMIN={**settings.MAILADMIN, **values})


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",  # cloud metadata
        "169.254.1.1",  # link-local
        "fe80::1",
        "[fe80::1]",
        "fd00:ec2::254",  # AWS metadata over IPv6, a unique-local address
        "100.100.100.200",
        "224.0.0.1",  # multicast
        "ff02::1",
        "0.0.0.0",  # noqa: S104 (unspecified, "this host" to Linux)
        "0.1.2.3",
        "::",
        "255.255.255.255",
        "240.0.0.1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2852039166",  # 169.254.169.254 written as one number
        "0xa9.0xfe.0xa9.0xfe",
    ],
)
def test_refused_addresses(host):
    with pytest.raises(UnsafeHost) as caught:
        host_check(host=host, port=25)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.code == "unsafe_host"
    assert "never connects there" in caught.value.messages[0]


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("::1", ["::1"]),
        ("10.1.2.3", ["10.1.2.3"]),
        ("192.168.1.20", ["192.168.1.20"]),
        ("fd12:3456::25", ["fd12:3456::25"]),
        ("198.51.100.7", ["198.51.100.7"]),
        ("localhost", ["127.0.0.1"]),
    ],
)
def test_loopback_private_and_public_are_allowed_by_default(host, expected):
    assert host_check(host=host, port=587)[: len(expected)] == expected


def test_empty_host_is_refused():
    with pytest.raises(UnsafeHost):
        host_check(host="  ", port=25)


def test_a_name_that_does_not_resolve_returns_no_address(monkeypatch):
    # The resolver is outside the process; this test must not send a DNS query.
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(hosts.socket, "getaddrinfo", fail)
    assert host_check(host="relay.club.example", port=25) == []


def test_every_resolved_address_counts(monkeypatch):
    def resolve(name, port, *args, **kwargs):
        assert name == "relay.club.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.10", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr(hosts.socket, "getaddrinfo", resolve)
    with pytest.raises(UnsafeHost) as caught:
        host_check(host="relay.club.example", port=25)
    assert caught.value.address == "169.254.169.254"
    assert "relay.club.example resolves to 169.254.169.254" in caught.value.messages[0]


def test_ipv6_zone_ids_are_ignored(monkeypatch):
    def resolve(name, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", port, 0, 2))]

    monkeypatch.setattr(hosts.socket, "getaddrinfo", resolve)
    with pytest.raises(UnsafeHost):
        host_check(host="printer.local", port=25)


def test_loopback_can_be_narrowed():
    with mailadmin_with(OUTBOUND_ALLOW_LOOPBACK=False):
        for host in ("127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"):
            with pytest.raises(UnsafeHost, match="loopback"):
                host_check(host=host, port=25)
        assert host_check(host="10.0.0.5", port=25) == ["10.0.0.5"]


def test_private_ranges_can_be_narrowed():
    with mailadmin_with(OUTBOUND_ALLOW_PRIVATE=False):
        for host in ("10.0.0.5", "172.16.0.1", "192.168.0.1", "fd12::1"):
            with pytest.raises(UnsafeHost, match="private"):
                host_check(host=host, port=25)
        assert host_check(host="127.0.0.1", port=25) == ["127.0.0.1"]
        # Only parsed, never contacted.
        assert host_check(host="1.1.1.1", port=25) == ["1.1.1.1"]


def test_connect_time_check_refuses_a_name_that_now_resolves_to_metadata(
    make_server, sink, monkeypatch
):
    server = make_server(sink=sink, host="relay.club.example")
    answers = {"relay.club.example": sink.host}
    real_getaddrinfo = socket.getaddrinfo

    def resolve(name, port, *args, **kwargs):
        # The resolver is outside the process: a stand-in whose answer changes, as DNS can.
        return real_getaddrinfo(answers.get(name, name), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert host_check(host=server.host, port=server.port) == ["127.0.0.1"]
    connection = SmtpConnection(server)
    connection.open()
    connection.close()

    answers["relay.club.example"] = "169.254.169.254"
    connection = SmtpConnection(server)
    with pytest.raises(ConnectionFailed) as caught:
        connection.open()
    assert caught.value.outcome == Outcome.PERMANENT
    assert "169.254.169.254" in str(caught.value)
    assert not connection.is_open


@pytest.mark.django_db
def test_a_server_pointing_at_the_metadata_address_cannot_be_saved(make_user):
    client = verified_client(Client(), make_user("root", superuser=True))
    data = {
        "name": "Cloud",
        "is_active": "on",
        "sender_name": "Golf Club",
        "sender_email": "office@club.example",
        "host": "169.254.169.254",
        "port": "25",
        "security": "none",
        "timeout": "30",
        "max_connections": "1",
        "limit_period": "none",
        "_save": "Save",
    }
    response = client.post(reverse("admin:smtpconfig_smtpserver_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "a cloud metadata address" in errors["host"][0]
    assert not SmtpServer.objects.exists()
    data["host"] = "127.0.0.1"
    response = client.post(reverse("admin:smtpconfig_smtpserver_add"), data)
    assert response.status_code == 302
    assert SmtpServer.objects.get().host == "127.0.0.1"
