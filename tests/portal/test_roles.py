import pytest
from django.contrib.auth.models import Group

from mailadmin.roles import BLACKLIST_MANAGERS, CLUB_STAFF, MAIL_ADMINISTRATORS

pytestmark = pytest.mark.django_db


def codenames(group_name):
    group = Group.objects.get(name=group_name)
    return {f"{perm.content_type.app_label}.{perm.codename}" for perm in group.permissions.all()}


def test_mail_administrators_hold_every_mail_permission():
    perms = codenames(MAIL_ADMINISTRATORS)
    assert {
        "smtpconfig.change_smtpserver",
        "smtpconfig.change_mailsettings",
        "blacklist.delete_blacklistentry",
        "mailadmin.send_real_in_test_mode",
        "auth.change_user",
    } <= perms


def test_club_staff_compose_and_resend_but_never_touch_servers_or_settings():
    perms = codenames(CLUB_STAFF)
    assert {"mailadmin.compose_mail", "smtpconfig.resend_outgoingmessage"} <= perms
    assert "mailadmin.view_mailtemplate" in perms
    assert not {p for p in perms if "smtpserver" in p or "mailsettings" in p}
    assert "mailadmin.change_mailtemplate" not in perms
    assert "mailadmin.send_real_in_test_mode" not in perms


def test_blacklist_managers_edit_the_blacklist_and_only_read_the_outbox():
    perms = codenames(BLACKLIST_MANAGERS)
    assert "blacklist.delete_blacklistentry" in perms
    assert "smtpconfig.view_outgoingmessage" in perms
    assert "smtpconfig.resend_outgoingmessage" not in perms
    assert not {p for p in perms if "smtpserver" in p}
