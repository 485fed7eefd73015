"""A member's history page: every message, newest first, paginated, with the reason."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from blacklist.models import BlacklistEntry
from mailadmin.roles import BLACKLIST_MANAGERS
from mailadmin.selectors import HISTORY_PAGE_SIZE
from mailadmin.templating import template_message
from smtpconfig.models import MailSettings, OutgoingMessage

MEMBER = "anne@members.example"


def send(n=1, **context):
    for index in range(n):
        template_message(
            name="convocation",
            language="fr",
            context={"member": {"first_name": f"Anne {index}"}, **context},
            to=[MEMBER],
        ).send()


def history(client, address=MEMBER, **params):
    return client.get(reverse("mailadmin_history", kwargs={"address": address}), params)


@pytest.mark.django_db
def test_history_needs_a_login_and_the_outbox_read_permission(client, django_user_model):
    assert history(client).status_code == 302
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    assert history(client).status_code == 403


def test_sent_and_suppressed_messages_name_the_server_and_the_blacklist_entry(
    client, staff, french_template, club_server, direct_delivery, sink
):
    send()
    BlacklistEntry.objects.create(email=MEMBER, reason=BlacklistEntry.Reason.PRIVACY)
    send()
    client.force_login(staff)
    page = history(client).content.decode()
    assert "Sent by server Club relay" in page
    assert "it answered “250”" in page
    assert f"Suppressed by the blacklist entry {MEMBER} (Data-protection settings)" in page
    # Staff may open each message's whole story in the outbox.
    for message in OutgoingMessage.objects.all():
        assert f'href="/admin/smtpconfig/outgoingmessage/{message.pk}/change/"' in page
    # Newest first: the suppressed message was sent last.
    assert page.index("Suppressed by") < page.index("Sent by server")
    assert len(sink.received) == 1


def test_the_address_matches_in_any_case(client, staff, french_template, club_server, db):
    send()
    client.force_login(staff)
    assert (
        "Convocation de Anne 0" in history(client, address="Anne@Members.Example").content.decode()
    )


def test_queued_messages_wait_and_pages_hold_the_newest_first(
    client, staff, french_template, club_server
):
    send(HISTORY_PAGE_SIZE + 2)
    client.force_login(staff)
    first = history(client).content.decode()
    assert f"Convocation de Anne {HISTORY_PAGE_SIZE + 1}" in first
    assert "Convocation de Anne 0<" not in first
    assert "Not sent yet: waiting to be sent by server Club relay." in first
    assert "Page 1 of 2" in first
    second = history(client, page=2).content.decode()
    assert "Convocation de Anne 0<" in second and "Convocation de Anne 1<" in second
    assert "Page 2 of 2" in second


def test_the_number_of_queries_does_not_grow_with_the_history(
    client, staff, french_template, club_server
):
    client.force_login(staff)
    send(2)
    history(client)
    with CaptureQueriesContext(connection) as few:
        history(client)
    send(HISTORY_PAGE_SIZE)
    with CaptureQueriesContext(connection) as many:
        history(client)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_an_address_without_mail_says_so(client, staff, db):
    client.force_login(staff)
    assert "No mail has been sent to this address." in history(client).content.decode()


def set_mail_client(value):
    settings_row = MailSettings.load()
    settings_row.mail_client = value
    settings_row.save()


def test_with_the_mail_module_the_address_links_to_compose_prefilled(client, staff, db):
    set_mail_client(MailSettings.MailClient.MODULE)
    client.force_login(staff)
    page = history(client).content.decode()
    assert 'href="/compose/?to=anne%40members.example"' in page
    composed = client.get("/compose/?to=anne%40members.example").content.decode()
    assert MEMBER in composed


def test_with_the_external_program_the_address_is_a_mailto_link(client, staff, db):
    set_mail_client(MailSettings.MailClient.EXTERNAL)
    client.force_login(staff)
    assert f'href="mailto:{MEMBER}"' in history(client).content.decode()


def test_who_may_not_compose_sees_the_address_without_a_compose_link(client, django_user_model, db):
    set_mail_client(MailSettings.MailClient.MODULE)
    manager = django_user_model.objects.create_user("lists", is_staff=True)
    manager.groups.add(Group.objects.get(name=BLACKLIST_MANAGERS))
    client.force_login(manager)
    page = history(client).content.decode()
    assert f'<span class="member-email">{MEMBER}</span>' in page
    assert "/compose/" not in page


def test_other_pages_use_the_tag_with_one_settings_query(staff, django_assert_num_queries, db):
    set_mail_client(MailSettings.MailClient.EXTERNAL)
    request = RequestFactory().get("/")
    request.user = staff
    template = Template(
        "{% load mailadmin_tags %}{% for a in addresses %}{% member_email_link a %}{% endfor %}"
    )
    with django_assert_num_queries(1):
        html = template.render(Context({"request": request, "addresses": ["a@x.example"] * 5}))
    assert html.count('href="mailto:a@x.example"') == 5


def test_the_lookup_box_opens_the_history_of_the_typed_address(client, staff, db):
    client.force_login(staff)
    lookup = client.get(reverse("mailadmin_history_lookup"))
    assert lookup.status_code == 200
    # Every page's header leads to the compose page and to this box.
    header = client.get(reverse("admin:index")).content.decode()
    assert 'href="/compose/"' in header and 'href="/history/"' in header
    response = client.get(reverse("mailadmin_history_lookup"), {"address": f" {MEMBER} "})
    assert response.status_code == 302
    assert response["Location"] == f"/history/{MEMBER}/"
    bad = client.get(reverse("mailadmin_history_lookup"), {"address": "not-an-address"})
    assert bad.status_code == 200 and "Enter a valid email address." in bad.content.decode()


def test_the_domain_may_be_typed_in_any_case_and_unicode(
    client, staff, french_template, club_server, db
):
    template_message(
        name="convocation", language="fr", context={}, to=["Zoe.Martin@Clüb.Example"]
    ).send()
    client.force_login(staff)
    page = history(client, address="Zoe.Martin@clüb.example").content.decode()
    assert "Convocation de" in page and "No mail has been sent" not in page
