"""The outbox admin tells each message's story; staff resend; the settings singleton."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.mail import EmailMessage, send_mail, send_mass_mail
from django.utils import timezone

from blacklist.models import BlacklistEntry
from smtpconfig.exceptions import DeliveryFailed
from smtpconfig.models import MailSettings, MessageEvent, OutgoingMessage, Recipient

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/smtpconfig/outgoingmessage/"


def detail(client, message) -> str:
    response = client.get(f"{CHANGELIST}{message.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_detail_page_tells_route_rewrite_suppression_and_reply(
    servers, direct, club_sink, admin_browser
):
    BlacklistEntry.objects.create(email="gone@golf.example", reason="complaint")
    club_sink.handler.rcpt_replies["refused@golf.example"] = "550 5.1.1 No such user"
    with pytest.raises(DeliveryFailed):
        EmailMessage(
            "Greens",
            "Body",
            "info@club.example",
            ["refused@golf.example", "gone@golf.example"],
        ).send()
    send_mail("Other", "Body", "someone@else.example", ["m@golf.example"])

    failed = OutgoingMessage.objects.get(subject="Greens")
    page = detail(admin_browser, failed)
    assert "matched domain club.example on server Club" in page
    assert "gone@golf.example suppressed: blacklisted as gone@golf.example (Spam complaint)" in page
    assert "550 5.1.1 No such user" in page
    assert "Refused" in page and "Suppressed" in page and "Failed" in page

    rewritten = OutgoingMessage.objects.get(subject="Other")
    page = detail(admin_browser, rewritten)
    assert "no filter matched; default server Relay; From rewritten to Golf Club" in page
    assert "original sender moved to Reply-To" in page


def test_detail_page_shows_the_test_redirect(servers, test_mode, admin_browser):
    send_mail("Hi", "Body", "info@club.example", ["a@golf.example", "b@golf.example"])
    page = detail(admin_browser, OutgoingMessage.objects.get())
    assert "Test mode: 2 recipient(s) redirected to tester@club.example." in page
    assert "Redirected to the test address" in page


def test_search_by_recipient_subject_and_message_id(servers, direct, admin_browser):
    send_mail("Alpha", "Body", "info@club.example", ["first@golf.example"])
    send_mail("Beta", "Body", "info@club.example", ["second@golf.example"])
    beta = OutgoingMessage.objects.get(subject="Beta")
    for query in ("second@golf", "Beta", beta.message_id.strip("<>")):
        response = admin_browser.get(CHANGELIST, {"q": query})
        assert list(response.context["cl"].result_list) == [beta], query


def test_resend_in_direct_mode_sends_at_once_and_records_who(
    servers, direct, club_sink, admin_browser
):
    club_sink.handler.rcpt_replies["late@golf.example"] = "550 5.1.1 Not yet"
    with pytest.raises(DeliveryFailed):
        send_mass_mail([("Hi", "Body", "info@club.example", ["late@golf.example"])])
    failed = OutgoingMessage.objects.get()
    sent_before = OutgoingMessage.objects.create(
        server=failed.server, status="sent", message_id="<x@y>", raw=b"x", envelope_from="a@b.c"
    )
    club_sink.handler.rcpt_replies.clear()

    response = admin_browser.post(
        CHANGELIST,
        {"action": "resend", "_selected_action": [failed.pk, sent_before.pk]},
        follow=True,
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == OutgoingMessage.Status.SENT
    assert failed.attempts == 2
    assert club_sink.recipients() == ["late@golf.example"]
    assert failed.recipients.get().status == Recipient.Status.SENT
    resent = failed.events.get(kind=MessageEvent.Kind.RESENT)
    assert resent.user == admin_browser.user
    texts = [str(message) for message in response.context["messages"]]
    assert "1 message resent." in texts
    assert "1 message was not resent: only failed messages can be." in texts
    assert "root" in detail(admin_browser, failed)


def test_resend_in_queue_mode_queues_again(servers, direct, club_sink, admin_browser):
    club_sink.handler.rcpt_replies["late@golf.example"] = "550 5.1.1 Not yet"
    with pytest.raises(DeliveryFailed):
        send_mail("Hi", "Body", "info@club.example", ["late@golf.example"])
    direct.delivery = MailSettings.Delivery.QUEUE
    direct.save()
    failed = OutgoingMessage.objects.get()
    admin_browser.post(CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == OutgoingMessage.Status.QUEUED
    assert failed.recipients.get().status == Recipient.Status.PENDING


def test_outbox_is_read_only(servers, direct, admin_browser):
    send_mail("Hi", "Body", "info@club.example", ["a@golf.example"])
    message = OutgoingMessage.objects.get()
    assert admin_browser.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_browser.get(f"{CHANGELIST}{message.pk}/delete/").status_code == 403
    admin_browser.post(f"{CHANGELIST}{message.pk}/change/", {"subject": "Changed"})
    message.refresh_from_db()
    assert message.subject == "Hi"


def test_mail_settings_list_leads_to_the_single_row(admin_browser):
    response = admin_browser.get("/admin/smtpconfig/mailsettings/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/smtpconfig/mailsettings/1/change/"


def test_test_mode_needs_an_address_and_changes_record_who(admin_browser):
    url = "/admin/smtpconfig/mailsettings/1/change/"
    fields = {"delivery": "direct", "mail_client": "module", "test_mode": "on", "test_address": ""}
    response = admin_browser.post(url, fields)
    assert response.status_code == 200
    assert "enter one to turn it on" in response.content.decode()
    assert not MailSettings.load().test_mode

    response = admin_browser.post(url, {**fields, "test_address": "tester@club.example"})
    assert response.status_code == 302
    settings_row = MailSettings.load()
    assert settings_row.test_mode and settings_row.test_address == "tester@club.example"
    assert settings_row.updated_by == admin_browser.user
    assert settings_row.history.first().history_user == admin_browser.user


def test_banner_shows_on_every_admin_page_while_test_mode_is_on(admin_browser):
    pages = ["/admin/", "/admin/smtpconfig/outgoingmessage/", "/admin/smtpconfig/smtpserver/"]
    for page in pages:
        assert "Test mode is on." not in admin_browser.get(page).content.decode()
    MailSettings.objects.filter(pk=MailSettings.load().pk).update(
        test_mode=True, test_address="tester@club.example"
    )
    for page in pages:
        content = admin_browser.get(page).content.decode()
        assert "Test mode is on." in content, page
        assert "tester@club.example" in content


def test_cancel_and_retry_now_apply_where_they_may_and_record_who(servers, admin_browser):
    send_mass_mail(
        [
            ("Queued", "Body", "info@club.example", ["a@golf.example"]),
            ("Deferred", "Body", "info@club.example", ["b@golf.example"]),
        ]
    )
    queued = OutgoingMessage.objects.get(subject="Queued")
    deferred = OutgoingMessage.objects.get(subject="Deferred")
    later = timezone.now() + timedelta(hours=1)
    OutgoingMessage.objects.filter(pk=deferred.pk).update(status="deferred", next_attempt_at=later)

    response = admin_browser.post(
        CHANGELIST,
        {"action": "retry_now", "_selected_action": [queued.pk, deferred.pk]},
        follow=True,
    )
    texts = [str(message) for message in response.context["messages"]]
    assert "1 message will be retried at once." in texts
    assert "1 message was left as it was: the action does not apply to it." in texts
    deferred.refresh_from_db()
    assert deferred.next_attempt_at < later
    assert deferred.events.get(kind=MessageEvent.Kind.RETRY_NOW).user == admin_browser.user

    admin_browser.post(CHANGELIST, {"action": "cancel", "_selected_action": [queued.pk]})
    queued.refresh_from_db()
    assert queued.status == OutgoingMessage.Status.CANCELLED
    assert queued.events.get(kind=MessageEvent.Kind.CANCELLED).user == admin_browser.user


def test_staff_without_the_resend_permission_see_no_actions(servers, client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_outgoingmessage"))
    client.force_login(viewer)
    send_mail("Hi", "Body", "info@club.example", ["a@golf.example"])
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    # Resend, cancel and retry-now are all the outbox offers: without the permission, no
    # action form at all.
    assert response.context["action_form"] is None
