from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmtpConfigConfig(AppConfig):
    name = "smtpconfig"
    verbose_name = _("Mail settings and SMTP")

    def ready(self):
        from smtpconfig import checks  # noqa: F401  (registers the system checks)
