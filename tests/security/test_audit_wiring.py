"""The services of the other features write the audit trail, with who and from where."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import MASK, AuditAction
from blacklist.models import BlacklistEntry
from blacklist.services import blacklist_remove
from smtpconfig.mail_settings import mail_settings_update
from smtpconfig.models import MailSettings
from smtpconfig.services import server_reset_limit, server_set_default, server_update
from tests.security.conftest import verified_client

pytestmark = pytest.mark.django_db

OFFICE = "192.0.2.10"


def test_default_server_change_from_the_admin(make_server, administrator):
    first = make_server(name="First", is_default=True)
    second = make_server(name="Second")
    client = verified_client(Client(), administrator)
    client.post(
        reverse("admin:smtpconfig_smtpserver_changelist"),
        {"action": "set_default", "_selected_action": [second.pk]},
        REMOTE_ADDR=OFFICE,
    )
    event = AuditEvent.objects.get(action=AuditAction.DEFAULT_SERVER_CHANGED)
    assert event.before == {"default_server": first.name}
    assert event.after == {"default_server": "Second"}
    assert (event.user, event.ip_address) == (administrator, OFFICE)
    # Setting the default that already is records nothing.
    server_set_default(server=second, acting_user=administrator)
    assert AuditEvent.objects.filter(action=AuditAction.DEFAULT_SERVER_CHANGED).count() == 1


def test_limit_reset_from_the_admin(make_server, administrator):
    server = make_server(name="Relay", limit_period="hour", limit_count=10)
    client = verified_client(Client(), administrator)
    client.post(
        reverse("admin:smtpconfig_smtpserver_changelist"),
        {"action": "reset_limit", "_selected_action": [server.pk]},
        REMOTE_ADDR=OFFICE,
    )
    event = AuditEvent.objects.get(action=AuditAction.LIMIT_RESET)
    assert event.before == {"limit_reset_at": None}
    assert event.after["limit_reset_at"]
    assert event.ip_address == OFFICE
    server_reset_limit(server=server, acting_user=administrator)
    assert AuditEvent.objects.filter(action=AuditAction.LIMIT_RESET).count() == 2


def test_credentials_change_is_recorded_without_the_values(make_server, administrator):
    server = make_server(name="Relay", use_auth=True, username="old", password="first-secret")
    server.username = "new"
    server_update(server=server, password="second-secret", acting_user=administrator)
    event = AuditEvent.objects.get(action=AuditAction.SERVER_CREDENTIALS_CHANGED)
    assert event.before == {"username": "old", "auth_method": "password"}
    assert event.after == {
        "changed": ["username", "password"],
        "username": "new",
        "auth_method": "password",
    }
    assert "secret" not in str(AuditEvent.objects.values().get(pk=event.pk))
    # A change that leaves the credentials alone is not a credentials change.
    server.name = "Relay 2"
    server_update(server=server, acting_user=administrator)
    assert AuditEvent.objects.filter(action=AuditAction.SERVER_CREDENTIALS_CHANGED).count() == 1


def test_test_mode_switch_is_recorded(administrator):
    settings_row = MailSettings.load()
    settings_row.test_mode = True
    settings_row.test_address = "tester@club.example"
    mail_settings_update(mail_settings=settings_row, acting_user=administrator)
    event = AuditEvent.objects.get(action=AuditAction.TEST_MODE_CHANGED)
    assert event.before == {"test_mode": False}
    assert event.after["test_mode"] is True


def test_blacklist_removal_is_recorded(administrator):
    entry = BlacklistEntry.objects.create(email="gone@golf.example", reason="complaint")
    blacklist_remove(entry=entry, acting_user=administrator, change_reason="Asked again")
    event = AuditEvent.objects.get(action=AuditAction.BLACKLIST_REMOVED)
    assert event.before["email"] == "gone@golf.example"
    assert event.after == {"removed_because": "Asked again"}
    assert event.user == administrator
    assert MASK not in str(event.before)
