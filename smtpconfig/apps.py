from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmtpConfigConfig(AppConfig):
    name = "smtpconfig"
    verbose_name = _("Mail settings and SMTP")

    def ready(self):
        from anymail.signals import tracking

        from smtpconfig import (
            checks,  # noqa: F401  (registers the system checks)
            webhooks,
        )

        # anymail's documented integration: its webhook views send `tracking` per event.
        tracking.connect(webhooks.provider_tracking_receiver, dispatch_uid="smtpconfig-tracking")
