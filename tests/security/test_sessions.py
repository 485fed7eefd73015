"""Sessions: idle timeout, absolute lifetime, logout, deactivation, password change."""

import time

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import AuditAction
from mailadmin.roles import BLACKLIST_MANAGERS, CLUB_STAFF
from mailadmin.security.sessions import SEEN_KEY, STARTED_KEY
from tests.security.conftest import PASSWORD, sign_in, verified_client

pytestmark = pytest.mark.django_db

ADMIN_INDEX = reverse("admin:index")


def age_session(client, *, started_ago: float, seen_ago: float):
    session = client.session
    now = time.time()
    session[STARTED_KEY] = int(now - started_ago)
    session[SEEN_KEY] = int(now - seen_ago)
    session.save()


def signed_in(client):
    return "_auth_user_id" in client.session


def test_a_real_sign_in_starts_the_clocks(staff_member):
    client = Client()
    sign_in(client, "bob")
    session = client.session
    assert abs(session[STARTED_KEY] - time.time()) < 60
    assert session[SEEN_KEY] == session[STARTED_KEY]


def test_idle_timeout_signs_out(staff_member):
    client = Client()
    sign_in(client, "bob")
    idle = settings.MAILADMIN["SESSION_IDLE_TIMEOUT"]
    assert idle == 30 * 60
    age_session(client, started_ago=idle + 10, seen_ago=idle - 60)
    assert client.get(ADMIN_INDEX).status_code == 200
    age_session(client, started_ago=idle + 10, seen_ago=idle + 1)
    response = client.get(ADMIN_INDEX, follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("admin:login"))
    assert "signed out after 30 minutes without activity" in response.content.decode()
    assert not signed_in(client)


def test_activity_keeps_the_session_alive(staff_member):
    client = Client()
    sign_in(client, "bob")
    age_session(client, started_ago=3600, seen_ago=20 * 60)
    assert client.get(ADMIN_INDEX).status_code == 200
    assert time.time() - client.session[SEEN_KEY] < 60


def test_absolute_lifetime_ends_even_an_active_session(staff_member):
    client = Client()
    sign_in(client, "bob")
    age_session(client, started_ago=settings.SESSION_COOKIE_AGE + 1, seen_ago=5)
    response = client.get(ADMIN_INDEX, follow=True)
    assert "maximum length" in response.content.decode()
    assert not signed_in(client)


def test_logout_ends_the_session_on_the_server(staff_member):
    client = Client()
    sign_in(client, "bob")
    key = client.session.session_key
    client.post(reverse("admin:logout"))
    assert not Session.objects.filter(session_key=key).exists()
    # Replaying the old cookie gets nobody signed in.
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.get(ADMIN_INDEX).status_code == 302


def user_change_form(user, **changes):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [group.pk for group in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value not in ("", None)}


def test_deactivating_a_user_ends_their_sessions(staff_member, administrator):
    laptop, phone = Client(), Client()
    sign_in(laptop, "bob")
    sign_in(phone, "bob", address="192.0.2.77")
    assert laptop.get(ADMIN_INDEX).status_code == 200

    admin_client = verified_client(Client(), administrator)
    response = admin_client.post(
        reverse("admin:auth_user_change", args=[staff_member.pk]),
        user_change_form(staff_member, is_active=""),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    staff_member.refresh_from_db()
    assert not staff_member.is_active
    for client in (laptop, phone):
        assert not Session.objects.filter(session_key=client.session.session_key).exists()
        assert client.get(ADMIN_INDEX).status_code == 302
    assert AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED).after == {
        "sessions_ended": 2
    }
    # The administrator's own session is untouched.
    assert admin_client.get(ADMIN_INDEX).status_code == 200


def test_role_changes_are_audited(staff_member, administrator):
    admin_client = verified_client(Client(), administrator)
    managers = Group.objects.get(name=BLACKLIST_MANAGERS)
    staff = Group.objects.get(name=CLUB_STAFF)
    admin_client.post(
        reverse("admin:auth_user_change", args=[staff_member.pk]),
        user_change_form(staff_member, groups=[staff.pk, managers.pk]),
        REMOTE_ADDR="192.0.2.44",
    )
    event = AuditEvent.objects.get(action=AuditAction.USER_ROLES_CHANGED)
    assert event.before["groups"] == [CLUB_STAFF]
    assert event.after["groups"] == sorted([BLACKLIST_MANAGERS, CLUB_STAFF])
    assert event.user == administrator
    assert event.ip_address == "192.0.2.44"
    assert event.object_repr.endswith("bob")
    # Saving without a change records nothing.
    staff_member.refresh_from_db()
    admin_client.post(
        reverse("admin:auth_user_change", args=[staff_member.pk]),
        user_change_form(staff_member),
    )
    assert AuditEvent.objects.filter(action=AuditAction.USER_ROLES_CHANGED).count() == 1


def test_a_password_change_signs_out_the_other_sessions(staff_member):
    here, elsewhere = Client(), Client()
    sign_in(here, "bob")
    sign_in(elsewhere, "bob", address="192.0.2.77")
    response = here.post(
        reverse("admin:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a new and long passphrase 7",
            "new_password2": "a new and long passphrase 7",
        },
    )
    assert response.status_code == 302
    assert here.get(ADMIN_INDEX).status_code == 200
    assert elsewhere.get(ADMIN_INDEX).status_code == 302
    assert not signed_in(elsewhere)


def test_end_sessions_command(staff_member):
    client = Client()
    sign_in(client, "bob")
    call_command("end_sessions", "bob")
    assert client.get(ADMIN_INDEX).status_code == 302
