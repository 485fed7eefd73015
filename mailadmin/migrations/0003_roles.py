"""The three roles of the portal, as groups with their permissions.

Mail administrators: everything. Club staff: compose, outbox and member history, templates
read-only, resend; no servers (credentials), no settings. Blacklist managers: the blacklist,
and the outbox read-only.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MAIL_ADMINISTRATORS = "Mail administrators"
CLUB_STAFF = "Club staff"
BLACKLIST_MANAGERS = "Blacklist managers"

ADMIN_APPS = ["smtpconfig", "blacklist", "mailadmin", "django_q", "auth"]
OUTBOX_READ = [
    ("smtpconfig", "view_outgoingmessage"),
    ("smtpconfig", "view_recipient"),
    ("smtpconfig", "view_messageevent"),
]
CLUB_STAFF_PERMISSIONS = [
    *OUTBOX_READ,
    ("smtpconfig", "resend_outgoingmessage"),
    ("mailadmin", "view_mailtemplate"),
    ("mailadmin", "compose_mail"),
]
BLACKLIST_MANAGER_PERMISSIONS = [
    *OUTBOX_READ,
    ("blacklist", "view_blacklistentry"),
    ("blacklist", "add_blacklistentry"),
    ("blacklist", "change_blacklistentry"),
    ("blacklist", "delete_blacklistentry"),
    ("blacklist", "view_historicalblacklistentry"),
]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def permissions(pairs):
        found = []
        for app_label, codename in pairs:
            found.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return found

    administrators, _ = Group.objects.get_or_create(name=MAIL_ADMINISTRATORS)
    administrators.permissions.set(
        Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
    )
    staff, _ = Group.objects.get_or_create(name=CLUB_STAFF)
    staff.permissions.set(permissions(CLUB_STAFF_PERMISSIONS))
    managers, _ = Group.objects.get_or_create(name=BLACKLIST_MANAGERS)
    managers.permissions.set(permissions(BLACKLIST_MANAGER_PERMISSIONS))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=[MAIL_ADMINISTRATORS, CLUB_STAFF, BLACKLIST_MANAGERS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mailadmin", "0002_permissions"),
        ("smtpconfig", "0002_permissions"),
        ("blacklist", "0001_initial"),
        ("django_q", "__latest__"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
