"""Two-factor sign-in: a real login with a computed TOTP code, enrolment, backup codes."""

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.services import AuditAction
from mailadmin.security.second_factor import second_factor_satisfied
from tests.security.conftest import (
    confirmed_authenticator,
    current_code,
    sign_in,
    verified_client,
)

pytestmark = pytest.mark.django_db

ADMIN_INDEX = reverse("admin:index")
VERIFY = reverse("security:two_factor_verify")
SETUP = reverse("security:two_factor_setup")


def test_real_sign_in_with_password_then_totp_code(administrator):
    device = confirmed_authenticator(administrator)
    client = Client()
    response = sign_in(client, "alice", next_url=ADMIN_INDEX)
    assert response.status_code == 302
    # The password alone opens nothing: every page leads to the second step.
    response = client.get(ADMIN_INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert client.get(response["Location"]).status_code == 200

    response = client.post(VERIFY, {"code": current_code(device), "next": ADMIN_INDEX})
    assert response.status_code == 302
    assert response["Location"] == ADMIN_INDEX
    assert client.get(ADMIN_INDEX).status_code == 200


def test_a_code_is_accepted_once(administrator):
    device = confirmed_authenticator(administrator)
    code = current_code(device)
    first, second = Client(), Client()
    sign_in(first, "alice")
    sign_in(second, "alice")
    assert first.post(VERIFY, {"code": code}).status_code == 302
    response = second.post(VERIFY, {"code": code})
    assert response.status_code == 200
    assert "This code is not right" in response.content.decode()


def test_a_wrong_code_is_refused_then_throttled(administrator):
    device = confirmed_authenticator(administrator)
    client = Client()
    sign_in(client, "alice")
    wrong = str((int(current_code(device)) + 500000) % 1000000).zfill(6)
    response = client.post(VERIFY, {"code": wrong})
    assert "This code is not right" in response.content.decode()
    # Straight after a failure django-otp's back-off refuses even the right code.
    response = client.post(VERIFY, {"code": current_code(device)})
    assert "Too many wrong codes" in response.content.decode()
    assert client.get(ADMIN_INDEX).status_code == 302


def test_the_admin_site_refuses_an_unverified_administrator(administrator):
    confirmed_authenticator(administrator)
    client = Client()
    sign_in(client, "alice")
    request = RequestFactory().get(ADMIN_INDEX)
    request.user = administrator
    administrator.is_verified = lambda: False
    assert not admin.site.has_permission(request)
    administrator.is_verified = lambda: True
    assert admin.site.has_permission(request)
    for url in [ADMIN_INDEX, reverse("admin:auth_user_changelist")]:
        assert client.get(url)["Location"].startswith(VERIFY)


def test_a_superuser_needs_the_second_factor_too(make_user):
    make_user("root", superuser=True)
    client = Client()
    sign_in(client, "root")
    assert client.get(ADMIN_INDEX)["Location"].startswith(SETUP)


def test_enrolment_with_qr_code_then_backup_codes(administrator):
    client = Client()
    sign_in(client, "alice", next_url=ADMIN_INDEX)
    response = client.get(ADMIN_INDEX, follow=True)
    assert response.redirect_chain[-1][0].startswith(SETUP)
    page = response.content.decode()
    assert "<svg" in page and "<path" in page
    assert "style=" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]  # CSP: no inline style
    assert "Your role needs two-factor sign-in" in page
    device = TOTPDevice.objects.get(user=administrator, confirmed=False)
    assert device.config_url.split("secret=")[1].split("&")[0][:4] in page.replace(" ", "")

    response = client.post(SETUP, {"code": current_code(device), "next": ADMIN_INDEX})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert code in response.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    assert response["Cache-Control"].startswith("max-age=0")
    assert client.get(ADMIN_INDEX).status_code == 200
    assert AuditEvent.objects.filter(
        action=AuditAction.TWO_FACTOR_ENABLED, user=administrator
    ).exists()


def test_enrolment_refuses_a_wrong_code(administrator):
    client = Client()
    sign_in(client, "alice")
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=administrator)
    response = client.post(SETUP, {"code": "000000" if current_code(device) != "000000" else "1"})
    assert "This code is not right" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(ADMIN_INDEX)["Location"].startswith(SETUP)


def test_a_backup_code_signs_in_once(administrator):
    device = confirmed_authenticator(administrator)
    client = verified_client(Client(), administrator, device)
    codes = client.post(reverse("security:backup_codes")).context["codes"]

    first = Client()
    sign_in(first, "alice")
    assert first.post(VERIFY, {"code": codes[0].upper()}).status_code == 302
    assert first.get(ADMIN_INDEX).status_code == 200
    second = Client()
    sign_in(second, "alice")
    assert second.post(VERIFY, {"code": codes[0]}).status_code == 200
    assert StaticToken.objects.filter(device__user=administrator).count() == 9


def test_staff_without_a_required_second_factor_may_work_without_one(staff_member):
    client = Client()
    sign_in(client, "bob")
    assert client.get(ADMIN_INDEX).status_code == 200
    assert second_factor_satisfied(user=staff_member)


def test_anybody_may_opt_in_and_is_then_asked_every_time(staff_member):
    client = Client()
    sign_in(client, "bob")
    assert client.get(reverse("security:two_factor")).status_code == 200
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=staff_member)
    client.post(SETUP, {"code": current_code(device)})
    assert client.get(ADMIN_INDEX).status_code == 200

    later = Client()
    sign_in(later, "bob")
    assert later.get(ADMIN_INDEX)["Location"].startswith(VERIFY)


def test_staff_may_turn_it_off_an_administrator_may_not(staff_member, administrator):
    bob = verified_client(Client(), staff_member)
    bob.post(reverse("security:two_factor_remove"))
    assert not TOTPDevice.objects.filter(user=staff_member).exists()
    assert AuditEvent.objects.filter(action=AuditAction.TWO_FACTOR_REMOVED).count() == 1

    alice = verified_client(Client(), administrator)
    response = alice.post(reverse("security:two_factor_remove"), follow=True)
    assert "cannot be removed" in response.content.decode()
    assert TOTPDevice.objects.filter(user=administrator).exists()


def test_next_never_leaves_the_site(administrator):
    device = confirmed_authenticator(administrator)
    client = Client()
    sign_in(client, "alice")
    response = client.post(VERIFY, {"code": current_code(device), "next": "https://evil.example/"})
    assert response["Location"] == ADMIN_INDEX


def test_an_unverified_session_can_sign_out(administrator):
    confirmed_authenticator(administrator)
    client = Client()
    sign_in(client, "alice")
    response = client.post(reverse("security:sign_out"))
    assert response["Location"] == reverse("admin:login")
    assert "_auth_user_id" not in client.session


def test_the_codes_computed_here_are_the_rfc_6238_ones():
    # RFC 6238 appendix B, SHA-1 at T = 59 s gives 94287082: the same algorithm as the
    # phone's, so the sign-in tests above really pass a second factor.
    check = TOTP(b"12345678901234567890", step=30, t0=0, digits=8)
    check.time = 59
    assert check.token() == 94287082


def test_every_admin_page_links_to_the_two_factor_page(staff_member):
    client = Client()
    sign_in(client, "bob")
    page = client.get(ADMIN_INDEX).content.decode()
    assert f'href="{reverse("security:two_factor")}"' in page


def test_a_password_alone_cannot_replace_the_authenticator(administrator):
    device = confirmed_authenticator(administrator)
    intruder = Client()
    sign_in(intruder, "alice")
    response = intruder.get(SETUP)
    assert response["Location"].startswith(VERIFY)
    response = intruder.post(SETUP, {"code": "123456"})
    assert response["Location"].startswith(VERIFY)
    assert list(TOTPDevice.objects.filter(user=administrator)) == [device]
    for url in [reverse("security:backup_codes"), reverse("security:two_factor_remove")]:
        assert intruder.post(url)["Location"].startswith(VERIFY)
    assert not StaticToken.objects.exists()


def test_backup_codes_need_an_authenticator_first(staff_member):
    client = Client()
    sign_in(client, "bob")
    response = client.post(reverse("security:backup_codes"), follow=True)
    assert "Set up your authenticator app first" in response.content.decode()
    assert not StaticToken.objects.exists()
