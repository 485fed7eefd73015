"""Data and invariants of outgoing mail: servers, settings, the outbox and its recipients."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from blacklist.models import BlacklistEntry
from smtpconfig.crypto import EncryptedTextField


class SmtpServer(models.Model):
    class Security(models.TextChoices):
        NONE = "none", _("None")
        STARTTLS = "starttls", _("STARTTLS")
        SSL = "ssl", _("SSL/TLS")

    class LimitPeriod(models.TextChoices):
        NONE = "none", _("No send limit")
        HOUR = "hour", _("Per hour")
        DAY = "day", _("Per day")
        WEEK = "week", _("Per week")

    class Transport(models.TextChoices):
        SMTP = "smtp", _("SMTP")
        AMAZON_SES = "amazon_ses", "Amazon SES"
        BREVO = "brevo", "Brevo"
        MAILGUN = "mailgun", "Mailgun"
        MAILJET = "mailjet", "Mailjet"
        POSTMARK = "postmark", "Postmark"
        RESEND = "resend", "Resend"
        SPARKPOST = "sparkpost", "SparkPost"

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("User name and password")
        MICROSOFT_OAUTH2 = "microsoft_oauth2", _("Microsoft 365 (OAuth2)")
        GOOGLE_OAUTH2 = "google_oauth2", _("Google Workspace (OAuth2)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    from_filter = models.TextField(
        _("filter"),
        blank=True,
        help_text=_(
            "Comma-separated sender domains and/or full sender addresses this server sends "
            "for. Leave empty in most cases."
        ),
    )
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    sender_email = models.EmailField(_("sender e-mail"))
    reply_to = models.EmailField(_("reply-to e-mail"), blank=True)

    transport = models.CharField(
        _("transport"), max_length=20, choices=Transport.choices, default=Transport.SMTP
    )
    host = models.CharField(_("SMTP server"), max_length=255, blank=True)
    port = models.PositiveIntegerField(
        _("port"), default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    use_auth = models.BooleanField(_("SMTP authentication"), default=True)
    auth_method = models.CharField(
        _("authentication method"),
        max_length=20,
        choices=AuthMethod.choices,
        default=AuthMethod.PASSWORD,
    )
    username = models.CharField(_("SMTP user"), max_length=255, blank=True)
    password = EncryptedTextField(_("SMTP password"), blank=True)
    security = models.CharField(
        _("security"), max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    timeout = models.PositiveIntegerField(
        _("connection timeout (seconds)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
    )
    # Credentials of an e-mail service or an OAuth2 app registration, as a JSON document,
    # encrypted as a whole: they are never shown back.
    credentials = EncryptedTextField(_("service credentials"), blank=True)

    limit_period = models.CharField(
        _("send limit"), max_length=10, choices=LimitPeriod.choices, default=LimitPeriod.NONE
    )
    limit_count = models.PositiveIntegerField(
        _("limit (recipients)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    limit_reset_at = models.DateTimeField(_("limit reset at"), null=True, blank=True)
    limit_reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("limit reset by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    max_connections = models.PositiveSmallIntegerField(
        _("parallel connections"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(16)],
        help_text=_("How many connections the queue may open to this server at once."),
    )

    is_default = models.BooleanField(_("default server"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    pause_reason = models.TextField(_("pause reason"), blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["password", "credentials"])

    class Meta:
        verbose_name = _("SMTP server")
        verbose_name_plural = _("SMTP servers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="smtpconfig_one_default_server",
                violation_error_message=_("Another server is already the default server."),
            ),
            models.CheckConstraint(
                condition=Q(limit_period="none", limit_count__isnull=True)
                | (~Q(limit_period="none") & Q(limit_count__isnull=False)),
                name="smtpconfig_limit_count_iff_period",
                violation_error_message=_(
                    "A send limit needs a number of recipients, and no limit needs none."
                ),
            ),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        # Never the password or the credentials.
        return f"<SmtpServer {self.pk}: {self.name!r} {self.host}:{self.port}>"


class SendCounter(models.Model):
    """Recipients a server accepted, per server and hour.

    A limit check sums at most 168 rows (a week of hours) whatever the size of the history.
    """

    # The unique (server, bucket) constraint's index serves lookups by server.
    server = models.ForeignKey(
        SmtpServer, on_delete=models.CASCADE, related_name="counters", db_index=False
    )
    bucket = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server", "bucket"], name="smtpconfig_counter_bucket")
        ]

    def __str__(self):
        return f"{self.server_id} {self.bucket:%Y-%m-%d %H:%M}: {self.count}"


class MailSettings(models.Model):
    """The single row of global mail settings (``MailSettings.load()``)."""

    class Delivery(models.TextChoices):
        QUEUE = "queue", _("By the service to the SMTP server")
        DIRECT = "direct", _("Directly to the SMTP server")

    class MailClient(models.TextChoices):
        MODULE = "module", _("Mail module")
        EXTERNAL = "external", _("Default mail program")

    test_mode = models.BooleanField(_("test mode"), default=False)
    test_address = models.EmailField(_("test address"), blank=True)
    delivery = models.CharField(
        _("sending"), max_length=10, choices=Delivery.choices, default=Delivery.QUEUE
    )
    mail_client = models.CharField(
        _("mail program"), max_length=10, choices=MailClient.choices, default=MailClient.MODULE
    )
    updated_at = models.DateTimeField(_("changed"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("mail settings")
        verbose_name_plural = _("mail settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="smtpconfig_mailsettings_singleton"),
            models.CheckConstraint(
                condition=Q(test_mode=False) | ~Q(test_address=""),
                name="smtpconfig_test_address_in_test_mode",
                violation_error_message=_("Test mode needs a test address."),
            ),
        ]

    def __str__(self):
        return str(_("Mail settings"))

    @classmethod
    def load(cls) -> "MailSettings":
        settings_row, _created = cls.objects.get_or_create(pk=1)
        return settings_row


class OutgoingMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEFERRED = "deferred", _("Deferred")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")
        CANCELLED = "cancelled", _("Cancelled")

    server = models.ForeignKey(
        SmtpServer,
        verbose_name=_("server"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        # Served by the claim index (server, status, created_at, id): every index is rewritten
        # at each attempt.
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.QUEUED
    )
    message_id = models.CharField(_("Message-ID"), max_length=255)
    # The ids e-mail services gave the message, comma-separated, as shown to staff. Some
    # services give one id per recipient, so there is no length limit. Tracking events find
    # the message through ProviderMessageId, which has one indexed row per id.
    provider_message_id = models.TextField(_("service message ids"), blank=True)
    from_email = models.CharField(_("From"), max_length=320)
    original_from = models.CharField(_("original From"), max_length=320, blank=True)
    envelope_from = models.CharField(_("envelope sender"), max_length=320)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    # The exact bytes sent on every attempt: serialised once, never rebuilt.
    raw = models.BinaryField(_("raw message"))
    route_reason = models.TextField(_("route"), blank=True)
    test_mode = models.BooleanField(_("sent in test mode"), default=False)

    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=100, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        # Only a message written in the portal has an author: see the partial index below.
        db_index=False,
    )

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("resend_outgoingmessage", _("Can resend, cancel and retry messages")),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="smtpconfig_msg_due"),
            # A server's due messages oldest first (the drain's claim), in index order:
            # without walking the history or sorting the queue.
            models.Index(
                fields=["server", "status", "created_at", "id"], name="smtpconfig_msg_claim"
            ),
            # The outbox list filtered by status, newest first, without sorting the history.
            models.Index(fields=["status", "-created_at"], name="smtpconfig_msg_status_new"),
            # Exact and IN lookups only: no second pattern index on PostgreSQL, as
            # db_index=True would add.
            models.Index(fields=["message_id"], name="smtpconfig_msg_message_id"),
            # Columns that are nearly always empty are indexed only where they are not, so
            # that recording a message writes no index entry for them (lookups by a value,
            # such as setting it to NULL when its user goes, imply the condition).
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="smtpconfig_msg_created_by",
            ),
        ]

    def __str__(self):
        return f"{self.subject or _('(no subject)')} <{self.message_id}>"


class Recipient(models.Model):
    class Kind(models.TextChoices):
        TO = "to", _("To")
        CC = "cc", _("Cc")
        BCC = "bcc", _("Bcc")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        SUPPRESSED = "suppressed", _("Suppressed")
        REDIRECTED = "redirected", _("Redirected to the test address")
        DEFERRED = "deferred", _("Deferred")
        REFUSED = "refused", _("Refused")

    message = models.ForeignKey(
        OutgoingMessage,
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        related_name="recipients",
    )
    # Lookups by address use the history index below, which starts with it.
    email = models.CharField(_("address"), max_length=320)
    kind = models.CharField(_("field"), max_length=3, choices=Kind.choices, default=Kind.TO)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    reply = models.TextField(_("server reply"), blank=True)
    blacklist_entry = models.ForeignKey(
        BlacklistEntry,
        verbose_name=_("blacklist entry"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="suppressed_recipients",
        db_index=False,
    )
    delivered_to = models.CharField(_("delivered to"), max_length=320, blank=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["email", "-message"], name="smtpconfig_rcpt_history"),
            # Only a suppressed recipient has one (see OutgoingMessage's created_by index).
            models.Index(
                fields=["blacklist_entry"],
                condition=Q(blacklist_entry__isnull=False),
                name="smtpconfig_rcpt_blacklisted",
            ),
        ]

    def __str__(self):
        return self.email


class MessageEvent(models.Model):
    """One line of a message's story: an attempt and the server's reply, a resend, a cancel."""

    class Kind(models.TextChoices):
        RECORDED = "recorded", _("Recorded")
        ATTEMPT = "attempt", _("Delivery attempt")
        DEFERRED = "deferred", _("Deferred")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        RESENT = "resent", _("Resent")
        CANCELLED = "cancelled", _("Cancelled")
        RETRY_NOW = "retry_now", _("Retry now")
        LEASE_EXPIRED = "lease_expired", _("Lease expired")

    message = models.ForeignKey(OutgoingMessage, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("event"), max_length=20, choices=Kind.choices)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("message event")
        verbose_name_plural = _("message events")
        ordering = ["created_at", "id"]
        indexes = [
            # Only staff's actions have a user (see OutgoingMessage's created_by index).
            models.Index(
                fields=["user"], condition=Q(user__isnull=False), name="smtpconfig_event_user"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.detail}"


class ProviderMessageId(models.Model):
    """One id an e-mail service gave a message: its tracking events name the message by it.

    One row per id, because a service may give one id per recipient and a message may be
    sent on several attempts. The index makes a tracking event's lookup a few page reads,
    however long the history.
    """

    message = models.ForeignKey(
        OutgoingMessage, on_delete=models.CASCADE, related_name="provider_ids"
    )
    value = models.CharField(_("service message id"), max_length=255)

    class Meta:
        verbose_name = _("service message id")
        verbose_name_plural = _("service message ids")
        constraints = [
            # Also the tracking event's lookup index, which starts with the id.
            models.UniqueConstraint(
                fields=["value", "message"], name="smtpconfig_provider_id_once"
            ),
        ]

    def __str__(self):
        return self.value


class DkimKey(models.Model):
    """A DKIM key pair for one sender domain; messages From that domain are signed with it."""

    domain = models.CharField(_("domain"), max_length=253, unique=True)
    selector = models.CharField(_("selector"), max_length=63, default="mailadmin")
    private_key = EncryptedTextField(_("private key"))
    public_key = models.TextField(_("public key"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("DKIM key")
        verbose_name_plural = _("DKIM keys")
        ordering = ["domain"]

    def __str__(self):
        return f"{self.selector}._domainkey.{self.domain}"

    def __repr__(self):
        return f"<DkimKey {self.pk}: {self}>"


class ProviderEvent(models.Model):
    """A tracking event an e-mail service posted (bounce, complaint, delivered...), kept once."""

    provider = models.CharField(_("service"), max_length=30)
    event_id = models.CharField(_("event id"), max_length=255)
    event_type = models.CharField(_("event"), max_length=30)
    provider_message_id = models.CharField(_("service message id"), max_length=255, blank=True)
    recipient = models.CharField(_("recipient"), max_length=320, blank=True)
    message = models.ForeignKey(
        OutgoingMessage,
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="provider_events",
    )
    description = models.TextField(_("description"), blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("service event")
        verbose_name_plural = _("service events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="smtpconfig_provider_event_once"
            )
        ]

    def __str__(self):
        return f"{self.provider} {self.event_type} {self.recipient}"


class OAuthToken(models.Model):
    """The current OAuth2 access token of a server, shared by every worker until it expires."""

    server = models.OneToOneField(SmtpServer, on_delete=models.CASCADE, related_name="oauth_token")
    access_token = EncryptedTextField()
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"OAuth2 token of server {self.server_id}"

    def __repr__(self):
        return f"<OAuthToken server={self.server_id} expires={self.expires_at:%Y-%m-%d %H:%M}>"
