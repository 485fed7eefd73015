"""In Chromium, as a manager would: find an address, see why, since when and by whom it is
blocked, remove it, add it again, and import a CSV with bad lines, then a good one."""

import pytest
from django.conf import settings
from django.test import Client

from blacklist.models import BlacklistEntry
from blacklist.services import blacklist_add

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager_page(browser, live_server, manager):
    client = Client()
    client.force_login(manager)
    context = browser.new_context(locale="en")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
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


def test_a_manager_finds_removes_re_adds_and_imports(manager_page, live_server, plain_staff):
    page = manager_page
    blacklist_add(
        email="jörg@müller.example",
        reason="privacy",
        source="crm",
        note="member 4711",
        acting_user=plain_staff,
    )
    changelist = f"{live_server.url}/admin/blacklist/blacklistentry/"

    # Find the address as the member wrote it; see why, since when and who added it.
    page.goto(changelist)
    page.fill("#searchbar", "Jörg@Müller.example")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr")
    assert row.count() == 1
    text = row.inner_text()
    assert "jörg@xn--mller-kva.example" in text
    assert "Data-protection settings" in text and "CRM" in text and "stefan" in text

    # Remove it, saying why.
    row.locator("th a").click()
    page.click("a.deletelink")
    page.fill("#id_change_reason", "member consented again")
    page.click("input[type=submit]")
    assert "was deleted successfully" in page.inner_text(".messagelist")
    assert not BlacklistEntry.objects.exists()

    # Add it again by hand.
    page.goto(f"{changelist}add/")
    page.fill("#id_email", "Jörg@Müller.example")
    page.select_option("#id_reason", "manual")
    page.click("input[name=_save]")
    assert "was added successfully" in page.inner_text(".messagelist")
    entry = BlacklistEntry.objects.get()
    assert (entry.reason, entry.source) == ("manual", "staff")
    assert BlacklistEntry.history.filter(history_change_reason="member consented again").exists()

    # Import a file with bad lines: every one is listed, nothing is imported.
    page.goto(f"{changelist}import/")
    page.set_input_files(
        "#id_import_file",
        files=[
            {
                "name": "opt-outs.csv",
                "mimeType": "text/csv",
                "buffer": (
                    b"email;reason\na@club.example;bounce\nnobody;bounce\nb@club.example;spite\n"
                ),
            }
        ],
    )
    page.click("input[type=submit]")
    errors = page.inner_text("table.import-errors")
    assert "“nobody” is not a valid e-mail address." in errors
    assert "“spite” is not a known reason" in errors
    lines = page.locator("table.import-errors td.line-number").all_inner_texts()
    assert lines == ["3", "4"]
    assert BlacklistEntry.objects.count() == 1

    # The corrected file: a preview first, then the import after confirming.
    page.set_input_files(
        "#id_import_file",
        files=[
            {
                "name": "opt-outs.csv",
                "mimeType": "text/csv",
                "buffer": b"email;reason\na@club.example;bounce\nb@club.example;privacy\n",
            }
        ],
    )
    page.click("input[type=submit]")
    assert "Nothing has been imported yet" in page.inner_text(".import-summary")
    assert BlacklistEntry.objects.count() == 1
    page.click("input[name=confirm]")
    assert "Import finished: 2 added, 0 changed, 0 unchanged." in page.inner_text(".messagelist")
    assert BlacklistEntry.objects.count() == 3
    assert page.csp_violations == []
