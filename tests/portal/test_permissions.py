"""Each role gets a 403 for every page it may not open, and a forbidden action changes nothing.

Club staff and blacklist managers sign in with a password alone (force_login here): the
second factor is required only of mail administrators, tested in tests/security.
"""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from blacklist.models import BlacklistEntry
from mailadmin.models import MailTemplate
from smtpconfig.models import MailSettings, OutgoingMessage, SmtpServer

pytestmark = pytest.mark.django_db

Status = OutgoingMessage.Status


@pytest.fixture
def objects(make_server):
    """One of everything a forbidden page could show or an action could change."""
    server = make_server(name="Club relay", is_default=True, limit_period="hour", limit_count=5)
    make_server(name="Second relay")
    template = MailTemplate.objects.create(name="Welcome", subject="Hello", body_text="Hi")
    entry = BlacklistEntry.objects.create(email="gone@member.example")
    failed = OutgoingMessage.objects.create(
        server=server,
        status=Status.FAILED,
        message_id="<failed@test>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        subject="Season opening",
        raw=b"Subject: Season opening\r\n\r\nbody",
        last_error="550 no",
    )
    deferred = OutgoingMessage.objects.create(
        server=server,
        status=Status.DEFERRED,
        message_id="<deferred@test>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        subject="Tee times",
        raw=b"Subject: Tee times\r\n\r\nbody",
    )
    return {
        "server": server,
        "template": template,
        "entry": entry,
        "failed": failed,
        "deferred": deferred,
        "settings": MailSettings.load(),
        "audit": AuditEvent.objects.first(),
    }


def server_pages(objects):
    pk = objects["server"].pk
    return [
        reverse("admin:smtpconfig_smtpserver_changelist"),
        reverse("admin:smtpconfig_smtpserver_add"),
        reverse("admin:smtpconfig_smtpserver_change", args=[pk]),
        reverse("admin:smtpconfig_smtpserver_delete", args=[pk]),
        reverse("admin:smtpconfig_smtpserver_history", args=[pk]),
        reverse("admin:smtpconfig_smtpserver_test_connection", args=[pk]),
        reverse("admin:smtpconfig_smtpserver_send_test_mail", args=[pk]),
        reverse("smtpconfig_server_domain_health", args=[pk]),
        reverse("admin:smtpconfig_mailsettings_changelist"),
        reverse("admin:smtpconfig_mailsettings_change", args=[objects["settings"].pk]),
        reverse("admin:smtpconfig_mailsettings_history", args=[objects["settings"].pk]),
        reverse("admin:smtpconfig_dkimkey_changelist"),
        reverse("admin:smtpconfig_dkimkey_generate"),
        reverse("admin:smtpconfig_providerevent_changelist"),
    ]


def administration_pages():
    return [
        reverse("admin:audit_auditevent_changelist"),
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_group_changelist"),
        reverse("admin:django_q_schedule_changelist"),
        reverse("admin:django_q_failure_changelist"),
        reverse("admin:axes_accessattempt_changelist"),
        reverse("admin:otp_totp_totpdevice_changelist"),
    ]


def blacklist_pages(objects):
    pk = objects["entry"].pk
    return [
        reverse("admin:blacklist_blacklistentry_changelist"),
        reverse("admin:blacklist_blacklistentry_add"),
        reverse("admin:blacklist_blacklistentry_change", args=[pk]),
        reverse("admin:blacklist_blacklistentry_delete", args=[pk]),
        reverse("admin:blacklist_blacklistentry_history", args=[pk]),
        reverse("admin:blacklist_blacklistentry_import"),
        reverse("admin:blacklist_blacklistentry_export"),
        reverse("admin:blacklist_historicalblacklistentry_changelist"),
    ]


def template_pages(objects):
    pk = objects["template"].pk
    return [
        reverse("admin:mailadmin_mailtemplate_changelist"),
        reverse("admin:mailadmin_mailtemplate_add"),
        reverse("admin:mailadmin_mailtemplate_change", args=[pk]),
        reverse("admin:mailadmin_mailtemplate_delete", args=[pk]),
        reverse("admin:mailadmin_mailtemplate_preview"),
    ]


def assert_forbidden(client, urls):
    refused = {url: client.get(url).status_code for url in urls}
    assert refused == dict.fromkeys(urls, 403)


def post_action(client, changelist: str, action: str, *objects):
    return client.post(
        reverse(changelist),
        {"action": action, "index": 0, "_selected_action": [obj.pk for obj in objects]},
    )


def test_club_staff_open_no_server_settings_blacklist_or_administration_page(
    client, club_staff, objects
):
    client.force_login(club_staff)
    assert_forbidden(client, server_pages(objects))
    assert_forbidden(client, blacklist_pages(objects))
    assert_forbidden(client, administration_pages())


def test_club_staff_read_templates_but_cannot_add_change_or_delete_them(
    client, club_staff, objects
):
    client.force_login(club_staff)
    template = objects["template"]
    change = reverse("admin:mailadmin_mailtemplate_change", args=[template.pk])
    assert client.get(reverse("admin:mailadmin_mailtemplate_changelist")).status_code == 200
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()

    assert client.get(reverse("admin:mailadmin_mailtemplate_add")).status_code == 403
    assert (
        client.get(reverse("admin:mailadmin_mailtemplate_delete", args=[template.pk])).status_code
        == 403
    )
    posted = client.post(
        change, {"name": "Changed", "language": "en", "subject": "Changed", "body_text": "x"}
    )
    assert posted.status_code == 403
    posted = client.post(
        reverse("admin:mailadmin_mailtemplate_delete", args=[template.pk]), {"post": "yes"}
    )
    assert posted.status_code == 403
    post_action(client, "admin:mailadmin_mailtemplate_changelist", "duplicate_to_fr", template)
    post_action(client, "admin:mailadmin_mailtemplate_changelist", "delete_selected", template)
    assert list(MailTemplate.objects.values_list("name", "subject")) == [("Welcome", "Hello")]


def test_club_staff_cannot_act_on_servers_settings_or_the_blacklist(client, club_staff, objects):
    client.force_login(club_staff)
    server, settings_row = objects["server"], objects["settings"]
    second = SmtpServer.objects.get(name="Second relay")
    assert (
        post_action(client, "admin:smtpconfig_smtpserver_changelist", "set_default", second)
    ).status_code == 403
    assert (
        post_action(client, "admin:smtpconfig_smtpserver_changelist", "reset_limit", server)
    ).status_code == 403
    change_settings = reverse("admin:smtpconfig_mailsettings_change", args=[settings_row.pk])
    assert (
        client.post(change_settings, {"test_mode": "on", "test_address": "me@club.example"})
    ).status_code == 403
    assert (
        client.post(reverse("admin:blacklist_blacklistentry_add"), {"email": "new@m.example"})
    ).status_code == 403
    assert (
        client.post(
            reverse("admin:blacklist_blacklistentry_delete", args=[objects["entry"].pk]),
            {"post": "yes"},
        )
    ).status_code == 403

    server.refresh_from_db()
    settings_row.refresh_from_db()
    assert server.is_default and server.limit_reset_at is None
    assert not settings_row.test_mode
    assert list(BlacklistEntry.objects.values_list("email", flat=True)) == ["gone@member.example"]


def test_club_staff_may_resend_but_not_delete_or_edit_messages(client, club_staff, objects):
    client.force_login(club_staff)
    failed = objects["failed"]
    change = reverse("admin:smtpconfig_outgoingmessage_change", args=[failed.pk])
    assert client.post(change, {"subject": "edited"}).status_code == 403
    assert (
        client.get(reverse("admin:smtpconfig_outgoingmessage_delete", args=[failed.pk]))
    ).status_code == 403
    post_action(client, "admin:smtpconfig_outgoingmessage_changelist", "delete_selected", failed)
    failed.refresh_from_db()
    assert failed.subject == "Season opening"


def test_blacklist_managers_open_no_server_template_compose_or_administration_page(
    client, blacklist_manager, objects
):
    client.force_login(blacklist_manager)
    assert_forbidden(client, server_pages(objects))
    assert_forbidden(client, template_pages(objects))
    assert_forbidden(client, administration_pages())
    assert_forbidden(client, [reverse("mailadmin_compose")])
    assert (
        client.post(reverse("mailadmin_compose"), {"template": objects["template"].pk})
    ).status_code == 403
    # Their own pages do open.
    assert client.get(reverse("admin:blacklist_blacklistentry_changelist")).status_code == 200
    assert client.get(reverse("admin:smtpconfig_outgoingmessage_changelist")).status_code == 200


def test_blacklist_managers_read_the_outbox_but_cannot_resend_cancel_or_retry(
    client, blacklist_manager, objects
):
    client.force_login(blacklist_manager)
    failed, deferred = objects["failed"], objects["deferred"]
    for action in ("resend", "cancel", "retry_now", "delete_selected"):
        post_action(client, "admin:smtpconfig_outgoingmessage_changelist", action, failed, deferred)
    change = reverse("admin:smtpconfig_outgoingmessage_change", args=[failed.pk])
    assert client.post(change, {"subject": "edited"}).status_code == 403

    assert dict(OutgoingMessage.objects.values_list("message_id", "status")) == {
        "<failed@test>": Status.FAILED,
        "<deferred@test>": Status.DEFERRED,
    }
    failed.refresh_from_db()
    assert failed.attempts == 0 and failed.subject == "Season opening"


def test_the_dashboard_shows_each_role_only_what_it_may_see(
    client, club_staff, blacklist_manager, objects
):
    client.force_login(club_staff)
    page = client.get(reverse("admin:index")).content.decode()
    assert "ma-servers" not in page  # no server panel without the server permission
    assert "Season opening" in page  # failures that need attention: staff resend them

    client.force_login(blacklist_manager)
    page = client.get(reverse("admin:index")).content.decode()
    assert "ma-servers" not in page


def test_portal_pages_refuse_users_who_are_not_staff(client, django_user_model, objects):
    member = django_user_model.objects.create_user("member", password="pw")
    client.force_login(member)
    assert_forbidden(
        client,
        [
            reverse("routing_check"),
            reverse("mailadmin_compose"),
            reverse("mailadmin_history_lookup"),
        ],
    )
    assert client.get(reverse("admin:index")).status_code == 302  # the admin's own login


def test_anonymous_visitors_are_sent_to_sign_in(client, objects):
    for url in (reverse("routing_check"), reverse("mailadmin_compose"), reverse("admin:index")):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
