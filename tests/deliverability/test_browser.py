"""In Chromium: the domain-health page and the unsubscribe page, as a user meets them."""

import pytest
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist.models import BlacklistEntry
from smtpconfig.unsubscribe import unsubscribe_headers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch_csp(page):
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            page.csp_violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


@pytest.fixture
def admin_page(browser, live_server, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@club.test", "pw")
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    context = browser.new_context(locale="en")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )
    return watch_csp(context.new_page())


def test_domain_without_spf_shows_red_and_the_record_to_publish(
    admin_page, live_server, make_server, dns_zone
):
    dns_zone("smtp.club.test. 300 IN A 192.0.2.25\nclub.test. 300 IN MX 10 mx.club.test.\n")
    server = make_server(host="smtp.club.test", sender_email="office@club.test")
    admin_page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/{server.pk}/domain-health/")
    spf = admin_page.locator("tr[data-check=spf]")
    assert spf.locator(".ma-verdict").inner_text() == "Fail"
    assert "v=spf1 a:smtp.club.test ~all" in spf.inner_text()
    colour = spf.locator(".ma-verdict").evaluate("cell => getComputedStyle(cell).color")
    assert colour == "rgb(179, 38, 30)"  # the stylesheet loaded under the site's CSP
    assert admin_page.locator("tr[data-check=mx] .ma-verdict").inner_text() == "OK"
    assert admin_page.csp_violations == []


def test_unsubscribe_link_confirm_then_listed(browser, live_server, settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "PUBLIC_URL": live_server.url}
    link = unsubscribe_headers(address="member@example.test")["List-Unsubscribe"][1:-1]
    page = watch_csp(browser.new_context(locale="en").new_page())
    page.goto(link)
    assert "member@example.test" in page.inner_text("main")
    assert not BlacklistEntry.objects.exists()
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "You are unsubscribed"
    entry = BlacklistEntry.objects.get()
    assert (entry.email, entry.reason) == ("member@example.test", BlacklistEntry.Reason.UNSUBSCRIBE)
    assert page.csp_violations == []
