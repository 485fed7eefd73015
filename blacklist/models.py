"""Addresses (and whole domains, as ``@example.org``) that must never receive mail."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class BlacklistEntry(models.Model):
    class Reason(models.TextChoices):
        MANUAL = "manual", _("Added by hand")
        PRIVACY = "privacy", _("Data-protection settings")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        BOUNCE = "bounce", _("Bounced")
        COMPLAINT = "complaint", _("Spam complaint")

    class Source(models.TextChoices):
        STAFF = "staff", _("Staff")
        IMPORT = "import", _("Import")
        PROVIDER = "provider", _("E-mail service event")
        CRM = "crm", _("CRM")
        RECIPIENT = "recipient", _("The recipient")

    # Normalised: trimmed, lower case, domain in IDNA form; "@domain" blocks a whole domain.
    email = models.CharField(_("e-mail address"), max_length=320, unique=True)
    reason = models.CharField(
        _("reason"), max_length=12, choices=Reason.choices, default=Reason.MANUAL
    )
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.STAFF
    )
    source_detail = models.CharField(_("source detail"), max_length=255, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # Named here: the history package would call it "historical …" in every language.
    history = HistoricalRecords(
        verbose_name=_("blacklist change"), verbose_name_plural=_("blacklist history")
    )

    class Meta:
        verbose_name = _("blacklist entry")
        verbose_name_plural = _("blacklist")
        ordering = ["email"]

    def __str__(self):
        return self.email

    @property
    def is_domain(self) -> bool:
        return self.email.startswith("@")
