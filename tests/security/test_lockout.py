"""Brute force: lockout by username and address together, the message, unlocking."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import AuditAction
from mailadmin.security.network import client_ip_address
from tests.security.conftest import sign_in, verified_client

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"
OFFICE = "192.0.2.10"


def fail_five_times(client, username, address=ATTACKER):
    responses = [sign_in(client, username, "wrong", address=address) for _ in range(5)]
    return responses


def test_five_wrong_passwords_lock_the_account_with_the_time_to_retry(staff_member):
    client = Client()
    responses = fail_five_times(client, "bob")
    assert [r.status_code for r in responses[:4]] == [200] * 4  # the form again, with an error
    assert responses[4].status_code == 429
    # Locked: even the right password is refused from that address now.
    response = sign_in(client, "bob", address=ATTACKER)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-in attempts for this account from your address" in page
    # English TIME_FORMAT ("P"): "9:45 a.m.", and on the hour "10 a.m.", "noon", "midnight".
    retry_at = r"(\d{1,2}(:\d{2})? [ap]\.m\.|noon|midnight)"
    assert re.search(rf"You can try again\s+at {retry_at} \(in 15 minutes\)", page)
    assert "(in 15 minutes)" in page
    assert "_auth_user_id" not in client.session


def test_a_colleague_at_another_address_still_signs_in(staff_member, make_user):
    fail_five_times(Client(), "bob")
    # The same account from the office, and another account from the attacker's address.
    response = sign_in(Client(), "bob", address=OFFICE)
    assert response.status_code == 302
    make_user("carol")
    response = sign_in(Client(), "carol", address=ATTACKER)
    assert response.status_code == 302


def test_the_lock_ends_after_the_cool_off(staff_member):
    fail_five_times(Client(), "bob")
    assert sign_in(Client(), "bob", address=ATTACKER).status_code == 429
    # Move the failures back in time instead of waiting.
    cool_off = settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= cool_off
        attempt.save()
    assert sign_in(Client(), "bob", address=ATTACKER).status_code == 302


def test_the_admin_login_goes_through_axes(staff_member):
    fail_five_times(Client(), "bob")
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address) == ("bob", ATTACKER)
    assert attempt.failures_since_start == 5
    assert "wrong" not in attempt.post_data  # axes masks the password it stores


def test_a_mail_administrator_unlocks_from_the_admin(staff_member, administrator):
    fail_five_times(Client(), "bob")
    admin_client = verified_client(Client(), administrator)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "unlock_sign_in", "_selected_action": [staff_member.pk]},
        REMOTE_ADDR=OFFICE,
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert sign_in(Client(), "bob", address=ATTACKER).status_code == 302
    event = AuditEvent.objects.get(action=AuditAction.USER_UNLOCKED)
    assert event.user == administrator
    assert event.ip_address == OFFICE
    assert event.after == {"lockouts_lifted": 1}


def test_the_axes_command_unlocks(staff_member):
    fail_five_times(Client(), "bob")
    call_command("axes_reset_username", "bob")
    assert sign_in(Client(), "bob", address=ATTACKER).status_code == 302


def test_a_lockout_cannot_be_dodged_by_forging_x_forwarded_for(staff_member):
    client = Client()
    for number in range(5):
        client.post(
            reverse("admin:login"),
            {"username": "bob", "password": "wrong"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{number}",
        )
    assert sign_in(client, "bob", address=ATTACKER).status_code == 429


@override_settings(MAILADMIN={**settings.MAILADMIN, "TRUSTED_PROXY_COUNT": 1})
def test_behind_a_trusted_proxy_each_client_is_locked_on_its_own(staff_member):
    proxy = "10.0.0.2"
    client = Client()
    for _ in range(5):
        client.post(
            reverse("admin:login"),
            {"username": "bob", "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=ATTACKER,
        )
    locked = client.post(
        reverse("admin:login"),
        {"username": "bob", "password": "correct horse battery staple 42"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR=ATTACKER,
    )
    assert locked.status_code == 429
    colleague = Client().post(
        reverse("admin:login"),
        {"username": "bob", "password": "correct horse battery staple 42"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR=OFFICE,
    )
    assert colleague.status_code == 302


@pytest.mark.parametrize(
    "proxies, forwarded, remote, expected",
    [
        (0, "", "192.0.2.1", "192.0.2.1"),
        (0, "203.0.113.9", "192.0.2.1", "192.0.2.1"),  # no proxy: the header is a lie
        (1, "203.0.113.9", "10.0.0.2", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "10.0.0.2", "203.0.113.9"),  # forged left part ignored
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.3", "10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.2", "203.0.113.9"),  # shorter chain: leftmost
        (1, "", "10.0.0.2", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2", "10.0.0.2"),
        (1, "2001:db8::7", "10.0.0.2", "2001:db8::7"),
    ],
)
def test_client_address(proxies, forwarded, remote, expected):
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    with override_settings(MAILADMIN={**settings.MAILADMIN, "TRUSTED_PROXY_COUNT": proxies}):
        assert client_ip_address(request) == expected
