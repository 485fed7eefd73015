"""Two servers, each with its own running sink: one for club.example, one the default."""

import pytest

from smtpconfig.models import MailSettings
from tests.signin import client_sign_in_verified


@pytest.fixture
def club_sink(smtp_sink):
    return smtp_sink()


@pytest.fixture
def default_sink(smtp_sink):
    return smtp_sink()


@pytest.fixture
def club_server(make_server, club_sink):
    return make_server(
        sink=club_sink, name="Club", from_filter="club.example", sender_email="office@club.example"
    )


@pytest.fixture
def default_server(make_server, default_sink):
    return make_server(
        sink=default_sink,
        name="Relay",
        sender_name="Golf Club",
        sender_email="noreply@relay.example",
        is_default=True,
    )


@pytest.fixture
def servers(club_server, default_server):
    return club_server, default_server


@pytest.fixture
def direct(db):
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.DIRECT
    settings_row.save()
    return settings_row


@pytest.fixture
def test_mode(direct):
    direct.test_mode = True
    direct.test_address = "tester@club.example"
    direct.save()
    return direct


@pytest.fixture(autouse=True)
def _routing_mailer(routing_mailer):
    """Every test here goes through the real backend."""


@pytest.fixture
def admin_browser(client, django_user_model):
    """A superuser signed in with both factors (administrators need the second one)."""
    user = django_user_model.objects.create_superuser("root", "root@club.example", "pw")
    client_sign_in_verified(client, user)
    client.user = user
    return client
