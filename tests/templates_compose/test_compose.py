"""The compose page end to end: the routing backend, direct delivery, a real SMTP sink."""

import re

import pytest
from django.urls import reverse

from mailadmin.models import MailTemplate
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient

MEMBERS = "anne@members.example,\nbruno@members.example"


def compose_post(client, template, **extra):
    data = {
        "template": template.pk,
        "recipients": MEMBERS,
        "var:member.first_name": "Anne",
        "var:date": "12 mai",
        "context_json": "",
    }
    data.update(extra)
    return client.post(reverse("mailadmin_compose"), data)


@pytest.mark.django_db
def test_compose_needs_a_login_and_the_compose_permission(client, django_user_model):
    response = client.get(reverse("mailadmin_compose"))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    assert client.get(reverse("mailadmin_compose")).status_code == 403


def test_the_page_offers_a_field_per_variable_with_the_sample_as_a_hint(
    client, staff, french_template, direct_delivery
):
    client.force_login(staff)
    url = f"{reverse('mailadmin_compose')}?template={french_template.pk}&to=anne@members.example"
    page = client.get(url).content.decode()
    assert 'name="var:member.first_name"' in page and 'placeholder="Anne"' in page
    assert 'value="Anne"' not in page
    assert 'name="var:date"' in page
    assert "anne@members.example" in page


def test_preview_marks_missing_values_and_names_the_server(
    client, staff, french_template, club_server, direct_delivery
):
    client.force_login(staff)
    response = compose_post(client, french_template, _preview="1", **{"var:date": ""})
    page = response.content.decode()
    assert "Convocation de Anne" in page
    assert "«missing: date»" in page
    assert "Club relay" in page
    assert not OutgoingMessage.objects.exists()


def test_bad_recipients_are_named_and_nothing_is_sent(
    client, staff, french_template, club_server, direct_delivery, sink
):
    client.force_login(staff)
    response = compose_post(
        client, french_template, recipients="anne@members.example, anne@", _send="1"
    )
    assert response.status_code == 200
    assert "“anne@” is not an e-mail address." in response.content.decode()
    assert sink.received == [] and not OutgoingMessage.objects.exists()


def test_without_test_mode_each_member_gets_a_message_recorded_with_the_author(
    client, staff, french_template, club_server, direct_delivery, sink
):
    client.force_login(staff)
    response = compose_post(client, french_template, _send="1")
    assert response.status_code == 302
    assert sorted(sink.recipients()) == ["anne@members.example", "bruno@members.example"]
    assert all(len(item.rcpt_tos) == 1 for item in sink.received)
    message = sink.received[0].message
    assert message["Subject"] == "Convocation de Anne"
    assert "Rendez-vous le 12 mai." in message.get_body(("plain",)).get_content()
    records = list(OutgoingMessage.objects.all())
    assert len(records) == 2
    assert {record.created_by for record in records} == {staff}
    assert {record.status for record in records} == {OutgoingMessage.Status.SENT}
    # One story per message, written with it before sending: who composed it comes first.
    events = MessageEvent.objects.filter(user=staff)
    assert events.count() == 2
    assert list(MessageEvent.objects.filter(kind=MessageEvent.Kind.RECORDED)) == list(events)
    assert events.first().detail.startswith(
        f"Composed from the template “{french_template}” by {staff.get_username()}.\nRoute: "
    )


def test_in_test_mode_send_asks_first_and_staff_see_only_the_test_choice(
    client, staff, french_template, club_server, test_mode, sink
):
    client.force_login(staff)
    response = compose_post(client, french_template, _send="1")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="_send_test"' in page and "tester@club.example" in page
    assert 'name="_send_real"' not in page
    assert sink.received == [] and not OutgoingMessage.objects.exists()


def test_real_recipients_in_test_mode_without_the_permission_is_forbidden(
    client, staff, french_template, club_server, test_mode, sink
):
    client.force_login(staff)
    response = compose_post(client, french_template, _send_real="1")
    assert response.status_code == 403
    assert sink.received == [] and not OutgoingMessage.objects.exists()


def test_french_template_to_two_members_in_test_mode_reaches_the_test_address_and_history(
    client, staff, french_template, club_server, test_mode, sink
):
    client.force_login(staff)
    confirm = compose_post(client, french_template, _send="1")
    assert confirm.status_code == 200
    # The confirmation page carries the values on; its "test address" button posts them back.
    hidden = confirm.context["context_json"]
    response = client.post(
        reverse("mailadmin_compose"),
        {
            "template": french_template.pk,
            "recipients": "anne@members.example, bruno@members.example",
            "context_json": hidden,
            "_send_test": "1",
        },
    )
    assert response.status_code == 302
    assert sink.recipients() == ["tester@club.example", "tester@club.example"]
    assert all(item.message["Subject"].startswith("[TEST]") for item in sink.received)
    assert {r.status for r in Recipient.objects.all()} == {Recipient.Status.REDIRECTED}

    for member in ("anne@members.example", "bruno@members.example"):
        page = client.get(reverse("mailadmin_history", kwargs={"address": member}))
        text = page.content.decode()
        assert "Convocation de Anne" in text
        assert "Redirected to the test address" in text
        assert "Redirected by test mode to tester@club.example" in text
        assert "Club relay" in text


def test_test_address_chosen_after_test_mode_was_switched_off_sends_nothing(
    client, staff, french_template, club_server, direct_delivery, sink
):
    client.force_login(staff)
    response = compose_post(client, french_template, _send_test="1")
    assert response.status_code == 200
    assert "Test mode was switched off" in response.content.decode()
    assert sink.received == [] and not OutgoingMessage.objects.exists()


def test_real_recipients_in_test_mode_with_the_permission_are_recorded_with_the_user(
    client, trusted_staff, french_template, club_server, test_mode, sink
):
    client.force_login(trusted_staff)
    confirm = compose_post(client, french_template, _send="1")
    assert 'name="_send_real"' in confirm.content.decode()
    response = compose_post(client, french_template, _send_real="1")
    assert response.status_code == 302
    assert sorted(sink.recipients()) == ["anne@members.example", "bruno@members.example"]
    assert {r.status for r in Recipient.objects.all()} == {Recipient.Status.SENT}
    records = OutgoingMessage.objects.all()
    assert {record.created_by for record in records} == {trusted_staff}
    events = MessageEvent.objects.filter(user=trusted_staff)
    assert events.count() == 2
    assert all("although test mode is on" in event.detail for event in events)


def test_a_refused_delivery_is_reported_and_shows_in_the_history(
    client, staff, french_template, club_server, direct_delivery, sink
):
    sink.handler.rcpt_replies["bruno@members.example"] = "550 5.1.1 No such user"
    client.force_login(staff)
    response = compose_post(client, french_template, _send="1")
    assert sink.recipients() == ["anne@members.example"]
    page = client.get(reverse("mailadmin_history", kwargs={"address": "bruno@members.example"}))
    assert "550 5.1.1 No such user" in page.content.decode()
    assert "Refused by server Club relay" in page.content.decode()
    assert response.status_code == 302


def test_a_failed_delivery_is_reported_with_history_links_and_keeps_the_author(
    client, staff, french_template, club_server, direct_delivery, sink
):
    sink.handler.rcpt_replies["bruno@members.example"] = "550 5.1.1 No such user"
    client.force_login(staff)
    response = client.post(
        reverse("mailadmin_compose"),
        {
            "template": french_template.pk,
            "recipients": MEMBERS,
            "var:member.first_name": "Anne",
            "_send": "1",
        },
        follow=True,
    )
    text = response.content.decode()
    assert "Sending failed:" in text
    assert 'href="/history/bruno@members.example/"' in text
    failed = OutgoingMessage.objects.get(status=OutgoingMessage.Status.FAILED)
    assert failed.created_by == staff


def test_without_any_server_nothing_is_recorded_and_the_reason_is_shown(
    client, staff, french_template, direct_delivery, sink
):
    client.force_login(staff)
    response = client.post(
        reverse("mailadmin_compose"),
        {"template": french_template.pk, "recipients": MEMBERS, "_send": "1"},
        follow=True,
    )
    assert "No active SMTP server can send mail" in response.content.decode()
    assert not OutgoingMessage.objects.exists()


def test_an_empty_json_box_stays_empty_after_a_preview(
    client, staff, french_template, club_server, direct_delivery
):
    client.force_login(staff)
    page = compose_post(client, french_template, _preview="1").content.decode()
    assert ">null</textarea>" not in page
    assert re.search(r'id="id_context_json">\s*</textarea>', page)


def test_the_templates_sender_picks_the_server_whose_filter_matches(
    client, staff, french_template, direct_delivery, smtp_sink, make_server
):
    club_sink, default_sink = smtp_sink(), smtp_sink()
    make_server(sink=club_sink, name="Club domain", from_filter="club.example")
    make_server(sink=default_sink, name="Default relay", is_default=True)
    client.force_login(staff)
    preview = compose_post(client, french_template, _preview="1").content.decode()
    assert "matched domain club.example on server Club domain" in preview
    compose_post(client, french_template, _send="1")
    assert len(club_sink.received) == 2 and default_sink.received == []
    assert club_sink.received[0].message["From"] == "Golf Club <office@club.example>"


def test_a_template_broken_outside_the_editor_is_refused_with_the_reason(
    client, staff, club_server, direct_delivery, sink
):
    broken = MailTemplate.objects.create(
        name="broken", language="en", subject="Hi", body_text="{{ x|nofilter }}"
    )
    client.force_login(staff)
    data = {"template": broken.pk, "recipients": MEMBERS}
    preview = client.post(reverse("mailadmin_compose"), {**data, "_preview": "1"})
    assert "cannot be rendered (body_text)" in preview.content.decode()
    sent = client.post(reverse("mailadmin_compose"), {**data, "_send": "1"}, follow=True)
    assert "Sending failed:" in sent.content.decode()
    assert sink.received == [] and not OutgoingMessage.objects.exists()


def test_with_queued_delivery_the_page_says_queued_and_nothing_is_sent_yet(
    client, staff, french_template, club_server, sink, db
):
    client.force_login(staff)
    response = client.post(
        reverse("mailadmin_compose"),
        {"template": french_template.pk, "recipients": MEMBERS, "_send": "1"},
        follow=True,
    )
    assert "Queued for sending to:" in response.content.decode()
    assert sink.received == []
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {"queued"}
