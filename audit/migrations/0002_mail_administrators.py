"""Mail administrators read the audit trail, as they did while it lived in the mailadmin app.

``mailadmin/migrations/0003_roles.py`` gives them every permission of the apps it lists; the
trail's permissions now belong to this app, so they are added to the group here.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MAIL_ADMINISTRATORS = "Mail administrators"


def grant_audit_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the group needs them now.
    app_config = apps.get_app_config("audit")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    administrators, _ = Group.objects.get_or_create(name=MAIL_ADMINISTRATORS)
    administrators.permissions.add(*Permission.objects.filter(content_type__app_label="audit"))


def revoke_audit_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for administrators in Group.objects.filter(name=MAIL_ADMINISTRATORS):
        administrators.permissions.remove(
            *Permission.objects.filter(content_type__app_label="audit")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("mailadmin", "0003_roles"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
    ]

    operations = [migrations.RunPython(grant_audit_permissions, revoke_audit_permissions)]
