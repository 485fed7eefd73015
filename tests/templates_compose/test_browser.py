"""In Chromium: the editor's preview follows typing; a staff member composes in test mode."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from mailadmin.models import MailTemplate
from smtpconfig.models import MailSettings, Recipient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "templates_compose"
PERMISSIONS = [
    "view_mailtemplate",
    "change_mailtemplate",
    "compose_mail",
    "view_recipient",
]


@pytest.fixture
def browser_page(browser):
    return browser.new_page(locale="en")


def sign_in(page, live_server, django_user_model):
    user = django_user_model.objects.create_user("desk", password="desk-pw-2026", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=PERMISSIONS))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "desk")
    page.fill("#id_password", "desk-pw-2026")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_preview_follows_typing_then_compose_in_test_mode_lands_in_history(
    browser_page, live_server, django_user_model, sink, make_server
):
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    make_server(sink=sink, name="Club relay", is_default=True)
    MailSettings.objects.update_or_create(
        pk=1,
        defaults={"delivery": "direct", "test_mode": True, "test_address": "tester@club.example"},
    )
    template = MailTemplate.objects.create(
        name="convocation",
        language="fr",
        subject="Convocation de {{ member.first_name }}",
        body_text="Bonjour {{ member.first_name }}",
        body_html="<p style='color:#064'>Bonjour <b>{{ member.first_name }}</b></p>",
        sender_email="office@club.example",
        sample_context={"member": {"first_name": "Anne"}},
    )
    sign_in(page, live_server, django_user_model)

    page.goto(f"{live_server.url}/admin/mailadmin/mailtemplate/{template.pk}/change/")
    assert "Club relay" in page.inner_text("#mail-preview")
    page.fill("#id_body_text", "Bonjour {{ member.first_name }}, à bientôt {{ date }}")
    expect(page.locator("#mail-preview")).to_contain_text("à bientôt «missing: date»")
    frame = page.frame_locator("iframe.mail-preview-html")
    assert frame.locator("b").inner_text() == "Anne"
    page.screenshot(path=ARTIFACTS / "template-editor.png", full_page=True)
    page.locator("iframe.mail-preview-html").screenshot(path=ARTIFACTS / "html-preview.png")

    page.goto(f"{live_server.url}/compose/?template={template.pk}")
    page.fill("#id_recipients", "anne@members.example\nbruno@members.example")
    page.fill("[name='var:member.first_name']", "Anne")
    page.click("input[name=_preview]")
    expect(page.locator("#mail-preview")).to_contain_text("Convocation de Anne")
    page.screenshot(path=ARTIFACTS / "compose-preview.png", full_page=True)
    page.click("input[name=_send]")
    page.wait_for_selector("button[name=_send_test]")
    assert page.locator("button[name=_send_real]").count() == 0
    page.screenshot(path=ARTIFACTS / "compose-confirm.png", full_page=True)
    page.click("button[name=_send_test]")
    page.wait_for_selector(".messagelist .success")
    assert sink.recipients() == ["tester@club.example", "tester@club.example"]

    page.click("text=bruno@members.example")
    assert "Redirected by test mode to tester@club.example" in page.inner_text("#result_list")
    page.screenshot(path=ARTIFACTS / "member-history.png", full_page=True)
    assert Recipient.objects.filter(status=Recipient.Status.REDIRECTED).count() == 2
