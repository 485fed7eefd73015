"""Fixtures of the server admin tests: a signed-in administrator and a local-only resolver."""

import ipaddress
import socket

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

REAL_GETADDRINFO = socket.getaddrinfo


def _is_local(host) -> bool:
    if host in (None, "localhost"):
        return True
    try:
        ipaddress.ip_address(str(host).strip("[]"))
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def local_resolver(monkeypatch):
    """Resolve only addresses and ``localhost``; any other name does not exist.

    The system's resolver is outside the process, and tests send no traffic off loopback:
    a name like ``smtp.office365.com`` must be saved and connected to without a DNS query.
    """

    def getaddrinfo(host, port, *args, **kwargs):
        if _is_local(host):
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@club.example", password="correct horse battery"
    )


def sign_in_with_second_factor(client, user) -> None:
    """Sign ``client`` in as ``user``, as if the authenticator code had just been typed."""
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def admin_client(client, admin_user):
    """A client signed in as a superuser who has passed the second factor."""
    sign_in_with_second_factor(client, admin_user)
    return client
