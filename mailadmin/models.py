"""The portal's own data: mail templates."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailTemplate(models.Model):
    class Language(models.TextChoices):
        EN = "en", _("English")
        FR = "fr", _("French")
        DE = "de", _("German")

    name = models.CharField(_("name"), max_length=100)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.EN
    )
    description = models.TextField(_("description"), blank=True)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    sender_email = models.EmailField(_("sender e-mail"), blank=True)
    reply_to = models.EmailField(_("reply-to e-mail"), blank=True)
    is_bulk = models.BooleanField(
        _("bulk mailing"),
        default=False,
        help_text=_("Adds one-click unsubscribe headers (newsletters, announcements)."),
    )
    sample_context = models.JSONField(_("sample context"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("mail template")
        verbose_name_plural = _("mail templates")
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "language"],
                name="mailadmin_template_name_language",
                violation_error_message=_("A template with this name and language exists."),
            )
        ]
        permissions = [
            ("compose_mail", _("Can compose and send mail from templates")),
            ("send_real_in_test_mode", _("Can send to real recipients while test mode is on")),
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"
