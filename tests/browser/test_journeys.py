"""What a mail administrator does in a day, in Chromium, against the real queue and SMTP.

One live server, one `qcluster` and one catching SMTP server serve the whole module. Each
journey saves a screenshot under test-artifacts/browser/; two of them are the README's.
"""

import pytest
from django_otp.oath import totp

from blacklist.models import BlacklistEntry
from mailadmin.models import MailTemplate
from smtpconfig.models import MailSettings, OutgoingMessage, Recipient, SmtpServer
from tests.browser.conftest import (
    PASSWORD,
    open_page,
    screenshot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Status = OutgoingMessage.Status
TABLET = {"width": 820, "height": 1180}


def current_code(device) -> str:
    """The code the administrator's phone shows now (RFC 6238)."""
    return str(totp(device.bin_key, device.step, device.t0, device.digits, device.drift)).zfill(
        device.digits
    )


@pytest.fixture
def relay(catching_server):
    """The club's default server: the catching SMTP server."""
    return SmtpServer.objects.create(
        name="Club relay",
        sender_name="Golf Club",
        sender_email="office@club.example",
        host=catching_server.host,
        port=catching_server.port,
        security=SmtpServer.Security.NONE,
        use_auth=False,
        timeout=5,
        is_default=True,
    )


@pytest.fixture
def newsletter():
    return MailTemplate.objects.create(
        name="Season opening",
        subject="The course opens on Saturday",
        body_text="Dear member, the course opens on Saturday at 8 o'clock.",
        sender_email="office@club.example",
    )


def outbox_story(queue_worker) -> str:
    """What the outbox and the worker say, when a message does not arrive."""
    statuses = list(OutgoingMessage.objects.values_list("status", "last_error"))
    return f"outbox {statuses}; worker log:\n{queue_worker.log_path.read_text()[-3000:]}"


def compose(page, live_server, template, recipients: str):
    page.goto(f"{live_server.url}/compose/?template={template.pk}")
    page.fill("#id_recipients", recipients)
    page.click("input[name=_send]")


def test_sign_in_with_password_and_authenticator_code(chromium, live_server, administrator):
    page = open_page(chromium, live_server)
    page.goto(f"{live_server.url}/admin/")
    assert page.get_by_label("Language").is_visible()  # switchable before signing in
    screenshot(page, "sign-in-page")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.locator("#verify-form").wait_for()
    assert "/account/two-factor/verify/" in page.url
    page.fill("#id_code", current_code(administrator.device))
    page.click("#verify-form input[type=submit]")

    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator(".ma-dashboard").is_visible()
    assert page.locator("#mailadmin-nav").get_by_role("link", name="Routing check").is_visible()
    screenshot(page, "sign-in")
    assert page.csp_violations == []


def test_server_from_the_office_365_preset(chromium, live_server, administrator, relay):
    page = open_page(chromium, live_server, user=administrator)
    page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/add/")
    page.click("a[data-preset=office365]")
    page.fill("#id_name", "Office 365")
    page.fill("#id_sender_email", "office@club.example")
    page.fill("#id_username", "office@club.example")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "server-form", docs="server-form")
    # The preset starts with the sign-in Microsoft recommends; a password where one is asked.
    if page.locator("#id_ms_tenant_id").is_visible():
        page.fill("#id_ms_tenant_id", "club.onmicrosoft.com")
        page.fill("#id_ms_client_id", "6731de76-14a6-49ae-97bc-6eba6914391e")
        page.fill("#id_ms_client_secret", "App-Secret-1")
    if page.locator("#id_new_password").is_visible():
        page.fill("#id_new_password", "App-Secret-1")
    page.click("input[name=_save]")

    page.locator(".messagelist .success").wait_for()
    server = SmtpServer.objects.get(name="Office 365")
    assert (server.host, server.port, server.security) == ("smtp.office365.com", 587, "starttls")
    assert (server.limit_period, server.limit_count) == ("day", 10000)
    assert server.use_auth and not server.is_default
    assert "App-Secret-1" not in page.content()
    screenshot(page, "server-saved")
    assert page.csp_violations == []


def test_make_a_server_default_and_the_star_moves(chromium, live_server, administrator, relay):
    other = SmtpServer.objects.create(
        name="Office 365", host="smtp.office365.com", port=587, sender_email="o@club.example"
    )
    page = open_page(chromium, live_server, user=administrator)
    page.goto(f"{live_server.url}/admin/smtpconfig/smtpserver/")

    def star_row() -> str:
        return page.locator("tr", has=page.locator("span.default-server")).inner_text()

    assert "Club relay" in star_row()
    page.check(f"input[name=_selected_action][value='{other.pk}']")
    page.select_option("select[name=action]", "set_default")
    page.click("#changelist-form button[name=index]")

    page.locator(".messagelist .success").wait_for()
    assert "“Office 365” is now the default server." in page.locator(".messagelist").inner_text()
    assert page.locator("span.default-server").count() == 1
    assert "Office 365" in star_row()
    relay.refresh_from_db()
    other.refresh_from_db()
    assert other.is_default and not relay.is_default
    screenshot(page, "default-star")
    assert page.csp_violations == []


def test_test_mode_on_shows_the_banner_on_every_page(chromium, live_server, administrator, relay):
    page = open_page(chromium, live_server, user=administrator)
    page.goto(f"{live_server.url}/admin/smtpconfig/mailsettings/")
    assert page.locator("#mailadmin-test-mode").count() == 0
    page.check("#id_test_mode")
    page.fill("#id_test_address", "tester@club.example")
    page.click("input[name=_save]")

    banner = page.locator("#mailadmin-test-mode")
    banner.wait_for()
    assert "Every message goes only to tester@club.example" in banner.inner_text()
    assert MailSettings.load().test_mode
    for path in ("/admin/", "/routing/", "/admin/smtpconfig/outgoingmessage/"):
        page.goto(f"{live_server.url}{path}")
        assert page.locator("#mailadmin-test-mode").is_visible(), path
    screenshot(page, "test-mode-banner")
    assert page.csp_violations == []


def test_compose_in_test_mode_asks_then_sends_only_to_the_test_address(
    chromium, live_server, administrator, relay, newsletter, catching_server, queue_worker
):
    MailSettings.objects.update_or_create(
        pk=MailSettings.load().pk,
        defaults={"test_mode": True, "test_address": "tester@club.example", "delivery": "queue"},
    )
    page = open_page(chromium, live_server, user=administrator)
    compose(page, live_server, newsletter, "anne@members.example\nbruno@members.example")

    send_test = page.locator("button[name=_send_test]")
    send_test.wait_for()
    assert "tester@club.example" in send_test.inner_text()
    assert page.locator("button[name=_send_real]").is_visible()
    screenshot(page, "compose-test-mode-confirmation")
    send_test.click()
    page.locator(".messagelist .success").wait_for()

    # One message per member, each to the test address only.
    received = wait_for(
        lambda: len(catching_server.received) == 2 and list(catching_server.received),
        what="the two test messages",
        explain=lambda: outbox_story(queue_worker),
    )
    assert [item.rcpt_tos for item in received] == [["tester@club.example"]] * 2
    assert all(OutgoingMessage.objects.values_list("test_mode", flat=True))
    assert set(Recipient.objects.values_list("email", "status")) == {
        ("anne@members.example", Recipient.Status.REDIRECTED),
        ("bruno@members.example", Recipient.Status.REDIRECTED),
    }
    assert page.csp_violations == []


def test_a_message_reaches_the_catching_server_and_the_outbox(
    chromium, live_server, administrator, relay, newsletter, catching_server, queue_worker
):
    page = open_page(chromium, live_server, user=administrator)
    compose(page, live_server, newsletter, "anne@members.example")
    page.locator(".messagelist .success").wait_for()

    received = wait_for(lambda: list(catching_server.received), what="the member's message")
    assert received[0].rcpt_tos == ["anne@members.example"]
    assert received[0].message["Subject"] == "The course opens on Saturday"
    message = wait_for(
        lambda: OutgoingMessage.objects.filter(status=Status.SENT).first(), what="sent status"
    )
    assert message.server == relay

    page.goto(f"{live_server.url}/admin/smtpconfig/outgoingmessage/")
    row = page.locator("#result_list tbody tr").first
    assert "The course opens on Saturday" in row.inner_text()
    assert "Sent" in row.locator("td.field-status").inner_text()
    row.locator("a").first.click()
    assert "anne@members.example" in page.locator("#content-main").inner_text()
    screenshot(page, "outbox-message")

    page.goto(f"{live_server.url}/admin/")
    assert "Club relay" in page.locator(".ma-servers").inner_text()
    screenshot(page, "dashboard", docs="dashboard")
    assert page.csp_violations == []


def test_a_blacklisted_address_gets_no_more_mail(
    chromium, live_server, administrator, relay, newsletter, catching_server, queue_worker
):
    page = open_page(chromium, live_server, user=administrator)
    page.goto(f"{live_server.url}/admin/blacklist/blacklistentry/add/")
    page.fill("#id_email", "Gone@Members.example")
    page.select_option("#id_reason", "manual")
    page.click("input[name=_save]")
    page.locator(".messagelist .success").wait_for()
    assert BlacklistEntry.objects.filter(email__iexact="gone@members.example").exists()

    compose(page, live_server, newsletter, "gone@members.example\nanne@members.example")
    page.locator(".messagelist .success").wait_for()

    received = wait_for(lambda: list(catching_server.received), what="the message to Anne")
    assert [item.rcpt_tos for item in received] == [["anne@members.example"]]
    suppressed = Recipient.objects.get(email="gone@members.example")
    assert suppressed.status == Recipient.Status.SUPPRESSED

    compose(page, live_server, newsletter, "gone@members.example")
    page.locator(".messagelist").wait_for()
    alone = wait_for(
        lambda: OutgoingMessage.objects.filter(status=Status.SUPPRESSED).first(),
        what="the suppressed message",
    )
    assert list(alone.recipients.values_list("status", flat=True)) == [Recipient.Status.SUPPRESSED]
    page.goto(f"{live_server.url}/admin/smtpconfig/outgoingmessage/?status__exact=suppressed")
    assert "Suppressed" in page.locator("#result_list td.field-status").first.inner_text()
    screenshot(page, "blacklist-suppressed")
    assert len(catching_server.received) == 1  # still only Anne's, checked after the 2nd send
    assert page.csp_violations == []


def test_switch_the_language_to_french_on_a_tablet(chromium, live_server, administrator, relay):
    page = open_page(chromium, live_server, user=administrator, viewport=TABLET)
    page.goto(f"{live_server.url}/routing/?sender=info%40club.example")
    assert page.locator("html").get_attribute("lang") == "en"
    # Nothing wider than the tablet's screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change", exact=True).click()

    page.wait_for_url("**/routing/?sender=info%40club.example")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("button", name="Déconnexion").is_visible()
    assert page.locator("#mailadmin-nav").get_by_role("link", name="Tableau de bord").is_visible()
    assert page.get_by_label("Adresse de l'expéditeur").is_visible()
    assert page.get_by_role("button", name="Changer", exact=True).is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The language stays for the next page.
    page.goto(f"{live_server.url}/admin/")
    assert page.locator("html").get_attribute("lang") == "fr"
    screenshot(page, "french-tablet")
    assert page.csp_violations == []
