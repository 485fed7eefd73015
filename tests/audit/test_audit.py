"""The audit trail: secrets stripped, who and from where, read-only filterable admin."""

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from audit.secrets import Secret
from audit.services import MASK, AuditAction, audit_record
from tests.security.conftest import sign_in, verified_client

pytestmark = pytest.mark.django_db

SMTP_PASSWORD = "Pa55-audit-never-stored"


def test_secret_values_never_reach_the_trail(make_server, administrator):
    server = make_server(password=SMTP_PASSWORD, use_auth=True, username="relay-user")
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.8")
    request.user = administrator
    event = audit_record(
        action=AuditAction.SERVER_CREDENTIALS_CHANGED,
        obj=server,
        before={"username": "old-user", "password": "", "credentials": {"api_key": "k-1"}},
        after={
            "username": "relay-user",
            "password": server.password,
            "SMTP_Password": SMTP_PASSWORD,
            "note": Secret(SMTP_PASSWORD),
            "nested": [{"api_key": "k-2"}, {"token": "t"}],
        },
        request=request,
    )
    event.refresh_from_db()
    assert event.before == {"username": "old-user", "password": "", "credentials": MASK}
    assert event.after == {
        "username": "relay-user",
        "password": MASK,
        "SMTP_Password": MASK,
        "note": MASK,
        "nested": [{"api_key": MASK}, {"token": MASK}],
    }
    assert SMTP_PASSWORD not in repr(AuditEvent.objects.values().get(pk=event.pk))
    assert event.user == administrator
    assert event.ip_address == "192.0.2.8"
    assert event.object_repr == f"SMTP server: {server.name}"


@override_settings(MAILADMIN={**settings.MAILADMIN, "TRUSTED_PROXY_COUNT": 1})
def test_the_address_is_the_clients_behind_the_proxy(administrator):
    request = RequestFactory().post(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.40"
    )
    request.user = administrator
    event = audit_record(action=AuditAction.USER_UNLOCKED, obj=administrator, request=request)
    assert event.ip_address == "203.0.113.40"


def test_without_a_request_the_user_is_given_and_no_address(administrator):
    event = audit_record(
        action=AuditAction.LIMIT_RESET, obj="server-1", before={"at": None}, user=administrator
    )
    assert (event.user, event.ip_address, event.object_repr) == (administrator, None, "server-1")


def test_a_service_called_from_a_view_gets_the_request_it_serves(administrator, staff_member):
    # The unlock action calls the service without the address; the trail still has it.
    client = verified_client(Client(), administrator)
    client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "unlock_sign_in", "_selected_action": [staff_member.pk]},
        REMOTE_ADDR="192.0.2.99",
    )
    assert AuditEvent.objects.get().ip_address == "192.0.2.99"


def test_mail_administrators_read_and_filter_the_trail(administrator, staff_member):
    audit_record(action=AuditAction.LIMIT_RESET, obj="Main relay", user=administrator)
    audit_record(action=AuditAction.USER_ROLES_CHANGED, obj="bob", user=administrator)
    client = verified_client(Client(), administrator)
    url = reverse("admin:audit_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "Main relay" in page and "Send limit reset" in page
    filtered = client.get(url, {"action": AuditAction.USER_ROLES_CHANGED}).content.decode()
    assert "bob" in filtered and "Main relay" not in filtered
    event = AuditEvent.objects.get(action=AuditAction.LIMIT_RESET)
    detail = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert detail.status_code == 200
    assert "Main relay" in detail.content.decode()


def test_nobody_edits_the_trail(make_user):
    root = make_user("root", superuser=True)
    event = audit_record(action=AuditAction.LIMIT_RESET, obj="Main relay", user=root)
    client = verified_client(Client(), root)
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    delete_url = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert client.post(delete_url).status_code == 403
    response = client.post(
        reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "x"}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.action == AuditAction.LIMIT_RESET


def test_club_staff_cannot_read_the_trail(staff_member):
    client = Client()
    sign_in(client, "bob")
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
