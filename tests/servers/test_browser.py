"""In Chromium: picking a preset fills the new server's fields, under the site's CSP."""

import pytest
from django.conf import settings
from django.test import Client

from smtpconfig.models import SmtpServer
from tests.servers.conftest import sign_in_with_second_factor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(browser, live_server, admin_user):
    """A page signed in as a superuser who has passed the second factor."""
    client = Client()
    sign_in_with_second_factor(client, admin_user)
    session = client.session
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
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.csp_violations = violations
    return page


def test_preset_fills_the_fields_without_a_reload(admin_page, live_server):
    add_url = f"{live_server.url}/admin/smtpconfig/smtpserver/add/"
    admin_page.goto(add_url)
    assert admin_page.locator("#preset-information").is_hidden()

    admin_page.click("a[data-preset=office365]")

    assert admin_page.url == add_url  # filled by the script, not by a reload
    assert admin_page.input_value("#id_host") == "smtp.office365.com"
    assert admin_page.input_value("#id_port") == "587"
    assert admin_page.input_value("#id_security") == "starttls"
    assert admin_page.is_checked("#id_use_auth")
    assert admin_page.input_value("#id_limit_period") == "day"
    assert admin_page.input_value("#id_limit_count") == "10000"
    information = admin_page.locator("#preset-information")
    assert information.is_visible()
    assert "10,000 recipients per day, 30 messages per minute" in information.inner_text()
    warnings = admin_page.locator("#preset-warnings p").all_inner_texts()
    assert len(warnings) == 2
    assert "hosted mail domain" in warnings[0]
    assert "December 2026" in warnings[1]

    admin_page.click("a[data-preset=generic]")

    assert admin_page.input_value("#id_host") == ""
    assert admin_page.input_value("#id_limit_period") == "none"
    assert admin_page.input_value("#id_limit_count") == ""
    assert admin_page.locator("#preset-information").is_hidden()
    assert admin_page.locator("#preset-warnings p").count() == 0
    assert admin_page.csp_violations == []


def test_server_saved_from_a_preset(admin_page, live_server):
    admin_page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/add/")
    admin_page.click("a[data-preset=google]")
    admin_page.fill("#id_name", "Workspace")
    admin_page.fill("#id_sender_email", "office@club.example")
    admin_page.fill("#id_username", "office@club.example")
    admin_page.fill("#id_new_password", "App-Password-1")
    admin_page.click("input[name=_save]")

    admin_page.locator(".messagelist .success").wait_for()
    server = SmtpServer.objects.get()
    assert (server.host, server.port, server.limit_count) == ("smtp.gmail.com", 587, 2000)
    assert server.is_default
    assert "★" in admin_page.locator("td.field-default_star").first.inner_text()
    assert admin_page.csp_violations == []


def test_the_form_shows_only_what_the_transport_and_sign_in_method_use(admin_page, live_server):
    admin_page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/add/")
    connection = admin_page.locator("fieldset.smtp-only").first
    microsoft = admin_page.locator("fieldset.auth-microsoft_oauth2")
    google = admin_page.locator("fieldset.auth-google_oauth2")
    postmark = admin_page.locator("fieldset.transport-postmark")
    assert connection.is_visible()
    assert microsoft.is_hidden() and google.is_hidden() and postmark.is_hidden()
    assert admin_page.locator("#id_new_password").is_visible()

    admin_page.select_option("#id_transport", "postmark")

    assert postmark.is_visible()
    assert admin_page.locator("fieldset.transport-mailgun").is_hidden()
    assert connection.is_hidden()
    assert microsoft.is_hidden()

    admin_page.select_option("#id_transport", "smtp")
    admin_page.click("a[data-preset=office365]")

    assert admin_page.input_value("#id_auth_method") == "microsoft_oauth2"
    assert microsoft.is_visible() and google.is_hidden()
    assert "SMTP.SendAsApp" in microsoft.inner_text()
    assert admin_page.locator("#id_new_password").is_hidden()

    admin_page.select_option("#id_auth_method", "google_oauth2")

    assert google.is_visible() and microsoft.is_hidden()
    assert "Manage Domain Wide Delegation" in google.inner_text()
    assert admin_page.csp_violations == []


def test_a_service_server_saved_from_the_browser_keeps_its_key_hidden(admin_page, live_server):
    admin_page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/add/")
    admin_page.fill("#id_name", "Mailings")
    admin_page.fill("#id_sender_email", "office@club.example")
    admin_page.select_option("#id_transport", "postmark")
    admin_page.fill("#id_esp_postmark_server_token", "pm-browser-token-1")
    admin_page.click("input[name=_save]")

    admin_page.locator(".messagelist .success").wait_for()
    server = SmtpServer.objects.get()
    assert server.transport == "postmark"
    assert server.credentials == '{"server_token": "pm-browser-token-1"}'
    assert "pm-browser-token-1" not in admin_page.content()
    admin_page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/{server.pk}/change/")
    assert "pm-browser-token-1" not in admin_page.content()
    assert admin_page.locator("fieldset.transport-postmark").is_visible()
    assert admin_page.locator("fieldset.smtp-only").first.is_hidden()
    assert admin_page.csp_violations == []
