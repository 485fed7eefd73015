"""Every page that shows a member's address links it as the mail program setting says."""

import pytest
from django.contrib.auth.models import Group
from django.core import checks
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from blacklist.admin import blacklist_write_link
from blacklist.models import BlacklistEntry
from blacklist.services import blacklist_add
from mailadmin.roles import BLACKLIST_MANAGERS
from mailadmin.templating import template_message
from smtpconfig.links import member_email_link
from smtpconfig.models import MailSettings, OutgoingMessage

MEMBER = "anne@members.example"
COMPOSE_HREF = 'href="/compose/?to=anne%40members.example"'
MAILTO_HREF = f'href="mailto:{MEMBER}"'
OUTBOX = reverse("admin:smtpconfig_outgoingmessage_changelist")
BLACKLIST = reverse("admin:blacklist_blacklistentry_changelist")
BLACKLIST_HISTORY = reverse("admin:blacklist_historicalblacklistentry_changelist")
EXPECTED = {
    MailSettings.MailClient.MODULE: COMPOSE_HREF,
    MailSettings.MailClient.EXTERNAL: MAILTO_HREF,
}
OTHER = {
    MailSettings.MailClient.MODULE: MAILTO_HREF,
    MailSettings.MailClient.EXTERNAL: COMPOSE_HREF,
}

pytestmark = pytest.mark.django_db


def set_mail_client(value):
    settings_row = MailSettings.load()
    settings_row.mail_client = value
    settings_row.save()


@pytest.fixture
def message(french_template, club_server):
    template_message(
        name="convocation",
        language="fr",
        context={"member": {"first_name": "Anne"}},
        to=[MEMBER, "bob@members.example"],
    ).send()
    return OutgoingMessage.objects.get()


@pytest.fixture
def manager(django_user_model):
    """A blacklist manager: the blacklist and the outbox, but no compose permission."""
    user = django_user_model.objects.create_user("lists", is_staff=True)
    user.groups.add(Group.objects.get(name=BLACKLIST_MANAGERS))
    return user


@pytest.fixture
def composing_manager(staff):
    """Club staff who also manage the blacklist: they may compose."""
    staff.groups.add(Group.objects.get(name=BLACKLIST_MANAGERS))
    return type(staff).objects.get(pk=staff.pk)


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_outbox_list_links_each_recipient(client, staff, message, mail_client):
    set_mail_client(mail_client)
    client.force_login(staff)
    page = client.get(OUTBOX).content.decode()
    assert EXPECTED[mail_client] in page
    assert OTHER[mail_client] not in page
    assert "bob@members.example</a>" in page


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_message_page_links_each_recipient_and_its_history(client, staff, message, mail_client):
    set_mail_client(mail_client)
    client.force_login(staff)
    page = client.get(
        reverse("admin:smtpconfig_outgoingmessage_change", args=[message.pk])
    ).content.decode()
    assert EXPECTED[mail_client] in page
    assert OTHER[mail_client] not in page
    assert f'href="{reverse("mailadmin_history", kwargs={"address": MEMBER})}"' in page


def test_the_outbox_shows_the_address_without_link_to_who_may_not_compose(client, manager, message):
    set_mail_client(MailSettings.MailClient.MODULE)
    client.force_login(manager)
    detail = client.get(
        reverse("admin:smtpconfig_outgoingmessage_change", args=[message.pk])
    ).content.decode()
    listing = client.get(OUTBOX).content.decode()
    for page in (detail, listing):
        assert f'<span class="member-email">{MEMBER}</span>' in page
        assert "/compose/?" not in page


def test_the_outbox_list_names_how_many_more_recipients(
    client, staff, french_template, club_server
):
    template_message(
        name="convocation",
        language="fr",
        context={},
        to=[f"m{index}@members.example" for index in range(5)],
    ).send()
    client.force_login(staff)
    page = client.get(OUTBOX).content.decode()
    assert "m2@members.example</a> and 2 more" in page
    assert "m3@members.example" not in page


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_blacklist_list_offers_to_write_to_each_address(client, composing_manager, mail_client):
    set_mail_client(mail_client)
    blacklist_add(email=MEMBER, reason=BlacklistEntry.Reason.BOUNCE, source="staff")
    blacklist_add(email="@spam.example", reason=BlacklistEntry.Reason.COMPLAINT, source="staff")
    client.force_login(composing_manager)
    page = client.get(BLACKLIST).content.decode()
    assert EXPECTED[mail_client] in page
    assert OTHER[mail_client] not in page
    # A whole domain is not somebody to write to: one link, for the address.
    assert page.count('class="member-email"') == 1


def test_the_blacklist_list_offers_no_compose_link_to_who_may_not_compose(client, manager):
    set_mail_client(MailSettings.MailClient.MODULE)
    blacklist_add(email=MEMBER, reason=BlacklistEntry.Reason.BOUNCE, source="staff")
    client.force_login(manager)
    page = client.get(BLACKLIST).content.decode()
    assert MEMBER in page
    assert "/compose/" not in page.split("<tbody>", 1)[1]
    set_mail_client(MailSettings.MailClient.EXTERNAL)
    assert MAILTO_HREF in client.get(BLACKLIST).content.decode()


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_blacklist_history_offers_to_write_to_each_address(
    client, composing_manager, mail_client
):
    set_mail_client(mail_client)
    blacklist_add(email=MEMBER, reason=BlacklistEntry.Reason.BOUNCE, source="staff")
    client.force_login(composing_manager)
    page = client.get(BLACKLIST_HISTORY).content.decode()
    assert EXPECTED[mail_client] in page
    assert OTHER[mail_client] not in page


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_history_page_links_the_address(client, staff, mail_client):
    set_mail_client(mail_client)
    client.force_login(staff)
    page = client.get(reverse("mailadmin_history", kwargs={"address": MEMBER})).content.decode()
    assert EXPECTED[mail_client] in page
    assert OTHER[mail_client] not in page


@pytest.mark.parametrize("mail_client", list(EXPECTED))
def test_the_tag_the_admin_and_the_blacklist_agree(staff, mail_client):
    """One rule: the template tag is the admin's helper, the blacklist links the same way."""
    set_mail_client(mail_client)
    request = RequestFactory().get("/")
    request.user = staff
    tag = Template("{% load mailadmin_tags %}{% member_email_link address %}").render(
        Context({"request": request, "address": MEMBER})
    )
    helper = member_email_link(address=MEMBER, user=staff)
    assert tag == helper
    assert EXPECTED[mail_client] in helper
    blacklist = blacklist_write_link(address=MEMBER, user=staff, mail_client=mail_client)
    assert EXPECTED[mail_client] in blacklist


def test_an_address_needing_escapes_stays_one_link(staff):
    set_mail_client(MailSettings.MailClient.EXTERNAL)
    link = member_email_link(address='o"brien+<x>@members.example', user=staff)
    assert 'href="mailto:o%22brien%2B%3Cx%3E@members.example"' in link
    assert "&lt;x&gt;" in link
    assert member_email_link(address="", user=staff) == ""


def test_the_admins_pass_the_system_checks():
    errors = [
        message
        for message in checks.run_checks(tags=[checks.Tags.admin])
        if message.level >= checks.ERROR
    ]
    assert errors == []
