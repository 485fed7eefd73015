"""System checks: misconfiguration fails at start-up, with an id, not at the first mail."""

from django.conf import settings
from django.core.checks import Error, register

from smtpconfig.conf import mailadmin_setting


@register()
def check_queue_and_timeouts(app_configs, **kwargs):
    errors = []
    q_cluster = getattr(settings, "Q_CLUSTER", {})
    retry, timeout = q_cluster.get("retry"), q_cluster.get("timeout")
    if timeout is None or retry is None or retry <= timeout:
        errors.append(
            Error(
                "Q_CLUSTER['retry'] must be greater than Q_CLUSTER['timeout'].",
                hint="Otherwise a drain pass still running is handed to a second worker.",
                id="smtpconfig.E001",
            )
        )
    if not mailadmin_setting("SMTP_TIMEOUT"):
        errors.append(
            Error(
                "MAILADMIN['SMTP_TIMEOUT'] is not set.",
                hint="Without a timeout a stalled SMTP server blocks a worker forever.",
                id="smtpconfig.E002",
            )
        )
    if not mailadmin_setting("ENCRYPTION_KEYS"):
        errors.append(
            Error(
                "MAILADMIN['ENCRYPTION_KEYS'] is empty.",
                hint="Set MAILADMIN_ENCRYPTION_KEYS to one or more Fernet keys.",
                id="smtpconfig.E003",
            )
        )
    return errors
