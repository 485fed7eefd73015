"""The verb on the global mail settings: change them, recording who did."""

from django.db import transaction
from django.http import HttpRequest

from audit.services import AuditAction, audit_record
from smtpconfig.models import MailSettings


@transaction.atomic
def mail_settings_update(
    *, mail_settings: MailSettings, acting_user, request: HttpRequest | None = None
) -> MailSettings:
    """Save the edited settings row, stamped with ``acting_user``.

    Its history (django-simple-history) keeps every version with the user; switching test
    mode on or off, which decides whether members receive mail at all, is also written to
    the audit trail.
    """
    mail_settings.full_clean()
    before = MailSettings.objects.filter(pk=mail_settings.pk).first()
    mail_settings.updated_by = acting_user
    mail_settings._history_user = acting_user
    mail_settings.save()
    was_on = before.test_mode if before is not None else False
    if was_on != mail_settings.test_mode:
        audit_record(
            action=AuditAction.TEST_MODE_CHANGED,
            obj=mail_settings,
            before={"test_mode": was_on},
            after={
                "test_mode": mail_settings.test_mode,
                "test_address": mail_settings.test_address,
            },
            request=request,
            user=acting_user,
        )
    return mail_settings
