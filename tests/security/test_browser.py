"""In Chromium: the lockout message, enrolment with the QR code, and pages that obey the CSP."""

import base64
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp.oath import TOTP

from mailadmin.roles import MAIL_ADMINISTRATORS
from tests.security.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "security"


def csp_violations(page) -> list[str]:
    found = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def sign_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_five_wrong_passwords_show_the_lockout_while_a_colleague_signs_in(
    browser, live_server, settings
):
    # The portal behind one reverse proxy: each browser's address is in X-Forwarded-For.
    settings.MAILADMIN = {**settings.MAILADMIN, "TRUSTED_PROXY_COUNT": 1}
    get_user_model().objects.create_user("bob", password=PASSWORD, is_staff=True)

    attacker = browser.new_context(
        locale="en", extra_http_headers={"X-Forwarded-For": "198.51.100.66"}
    ).new_page()
    violations = csp_violations(attacker)
    for _ in range(5):
        sign_in(attacker, live_server, "bob", "not-the-password")
    message = attacker.locator("#lockout-message")
    message.wait_for()
    text = message.inner_text()
    assert "Too many failed sign-in attempts for this account from your address" in text
    assert "You can try again at" in text and "(in 15 minutes)" in text
    attacker.screenshot(path=str(ARTIFACTS / "lockout.png"), full_page=True)
    sign_in(attacker, live_server, "bob", PASSWORD)
    assert attacker.locator("#lockout-message").is_visible()

    colleague = browser.new_context(
        locale="en", extra_http_headers={"X-Forwarded-For": "192.0.2.10"}
    ).new_page()
    sign_in(colleague, live_server, "bob", PASSWORD)
    colleague.wait_for_url(f"{live_server.url}/admin/")
    assert not violations


def test_an_administrator_enrols_with_the_qr_code_and_works_under_the_csp(browser, live_server):
    user = get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)
    group, _created = Group.objects.get_or_create(name=MAIL_ADMINISTRATORS)
    user.groups.add(group)
    user.is_superuser = True  # all pages open, so the CSP check covers the admin widely
    user.save()

    page = browser.new_context(locale="en").new_page()
    violations = csp_violations(page)
    sign_in(page, live_server, "alice", PASSWORD)
    page.wait_for_url(f"{live_server.url}/account/two-factor/setup/**")
    assert page.locator(".qr-code svg").is_visible()
    page.screenshot(path=str(ARTIFACTS / "enrolment.png"), full_page=True)
    # What a phone would do after scanning: compute the current code from the shared key.
    secret = page.locator(".otp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.fill("#id_code", str(TOTP(key).token()).zfill(6))
    page.click("input[type=submit]")
    assert page.locator(".backup-codes li").count() == 10
    page.click("text=Continue")
    page.wait_for_url(f"{live_server.url}/admin/")

    for path in [
        "/admin/",
        "/admin/smtpconfig/smtpserver/",
        "/admin/smtpconfig/smtpserver/add/",
        f"/admin/auth/user/{user.pk}/change/",
        "/admin/audit/auditevent/",
        "/account/two-factor/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}
        page.wait_for_load_state("networkidle")
    assert not violations, violations
