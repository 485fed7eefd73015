"""The every-minute drain of the outbox, as a django-q2 schedule.

A safety net: queued mail asks for a drain when it is recorded, but a broker may lose that
request (Redis keeps no receipts) and deferred mail becomes due with nobody asking.
"""

from django.db import migrations

NAME = "Drain the outbox"


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": "smtpconfig.tasks.drain_outbox",
            "schedule_type": "I",  # Schedule.MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("smtpconfig", "0002_permissions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
