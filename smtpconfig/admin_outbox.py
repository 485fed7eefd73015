"""Admin of the outbox (messages, recipients) and of the mail settings."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from core.paginators import CappedCountPaginator
from smtpconfig.delivery import message_cancel, message_retry_now
from smtpconfig.direct import messages_resend
from smtpconfig.links import member_email_link
from smtpconfig.mail_settings import mail_settings_update
from smtpconfig.models import MailSettings, OutgoingMessage, Recipient
from smtpconfig.selectors import message_events

# The raw message is shown up to its body: attachments would make the page unreadable.
RAW_HEADERS_LIMIT = 20_000


def message_recipient_summary(*, message, user, mail_settings) -> str:
    """The first three addresses, each a link for ``user``, and how many more there are."""
    addresses = [recipient.email for recipient in message.recipients.all()]
    shown = format_html_join(
        ", ",
        "{}",
        (
            (member_email_link(address=address, user=user, mail_settings=mail_settings),)
            for address in addresses[:3]
        ),
    )
    if len(addresses) <= 3:
        return shown
    return format_html(
        "{} {}", shown, gettext("and %(count)d more") % {"count": len(addresses) - 3}
    )


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecipientInline(ReadOnlyInline):
    model = Recipient
    fields = (
        "address",
        "kind",
        "status",
        "delivered_to",
        "blacklist_reason",
        "reply",
        "updated_at",
    )
    readonly_fields = fields

    def get_formset(self, request, obj=None, **kwargs):
        # The admin makes an inline per request: what its rows show depends on the viewer.
        self.viewer = request.user
        self.mail_settings = MailSettings.load()
        return super().get_formset(request, obj, **kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("blacklist_entry")

    @admin.display(description=_("e-mail address"))
    def address(self, recipient):
        return format_html(
            '{} · <a href="{}">{}</a>',
            member_email_link(
                address=recipient.email, user=self.viewer, mail_settings=self.mail_settings
            ),
            reverse("mailadmin_history", kwargs={"address": recipient.email}),
            gettext("history"),
        )

    @admin.display(description=_("blacklisted"))
    def blacklist_reason(self, recipient):
        entry = recipient.blacklist_entry
        if entry is None:
            return "—"
        return format_html("{} ({})", entry.email, entry.get_reason_display())


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "subject",
        "from_email",
        # The recipients column follows, added per viewer by get_list_display.
        "server",
        "status",
        "attempts",
        "test_mode",
    )
    list_filter = ("status", "server", "test_mode", "created_at")
    list_select_related = ("server",)
    search_fields = ("subject", "message_id", "recipients__email", "from_email", "original_from")
    # The list must open as fast with years of history as on the first day: no count of the
    # whole outbox, and no date drill-down (its years are a scan of every row); the
    # "created" filter narrows by date instead.
    paginator = CappedCountPaginator
    show_full_result_count = False
    inlines = [RecipientInline]
    actions = ["resend", "cancel", "retry_now"]
    fieldsets = (
        (_("Story"), {"fields": ("story",)}),
        (
            _("Message"),
            {
                "fields": (
                    "subject",
                    "from_email",
                    "original_from",
                    "envelope_from",
                    "message_id",
                    "test_mode",
                )
            },
        ),
        (_("Route"), {"fields": ("server", "route_reason")}),
        (
            _("Delivery"),
            {
                "fields": (
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "created_at",
                    "sent_at",
                    "created_by",
                )
            },
        ),
        (_("Raw message"), {"fields": ("raw_headers",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "story",
        "subject",
        "from_email",
        "original_from",
        "envelope_from",
        "message_id",
        "test_mode",
        "server",
        "route_reason",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
        "created_by",
        "raw_headers",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("recipients")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        return request.user.has_perm("smtpconfig.resend_outgoingmessage")

    def get_list_display(self, request):
        # The recipients column links each address for this viewer, the settings read once.
        mail_settings = MailSettings.load()

        @admin.display(description=_("recipients"))
        def recipient_summary(message):
            return message_recipient_summary(
                message=message, user=request.user, mail_settings=mail_settings
            )

        position = self.list_display.index("from_email") + 1
        return (*self.list_display[:position], recipient_summary, *self.list_display[position:])

    @admin.display(description=_("what happened"))
    def story(self, message):
        rows = format_html_join(
            "",
            "<li><strong>{}</strong> · {}{}<br>{}</li>",
            (
                (
                    event.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    event.get_kind_display(),
                    format_html(" · {}", event.user) if event.user else "",
                    format_html_join("", "{}<br>", ((line,) for line in event.detail.splitlines())),
                )
                for event in message_events(message=message)
            ),
        )
        return format_html('<ol class="mailadmin-story">{}</ol>', rows)

    @admin.display(description=_("headers"))
    def raw_headers(self, message):
        text = bytes(message.raw).decode("utf-8", "replace")
        headers = text.split("\r\n\r\n", 1)[0][:RAW_HEADERS_LIMIT]
        size = len(message.raw)
        return format_html(
            "<pre>{}</pre><p>{}</p>",
            headers,
            ngettext("%(size)d byte in all", "%(size)d bytes in all", size) % {"size": size},
        )

    @admin.action(description=_("Resend failed messages"), permissions=["resend"])
    def resend(self, request, queryset):
        failed = list(
            queryset.filter(status=OutgoingMessage.Status.FAILED).select_related("server")
        )
        skipped = queryset.count() - len(failed)
        failed_again = messages_resend(messages=failed, user=request.user)
        if failed:
            self.message_user(
                request,
                ngettext("%(count)d message resent.", "%(count)d messages resent.", len(failed))
                % {"count": len(failed)},
                messages.SUCCESS,
            )
        if failed_again:
            self.message_user(
                request,
                _("Failed again: %(messages)s")
                % {
                    "messages": "; ".join(
                        f"{message.subject} ({message.last_error})" for message in failed_again
                    )
                },
                messages.ERROR,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was not resent: only failed messages can be.",
                    "%(count)d messages were not resent: only failed messages can be.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    def _apply(self, request, queryset, *, verb, allowed, done_message):
        """Apply one staff verb to the selected messages it applies to; report the rest."""
        applicable = list(queryset.filter(status__in=allowed))
        for message in applicable:
            verb(message=message, user=request.user)
        if applicable:
            self.message_user(request, done_message(len(applicable)), messages.SUCCESS)
        skipped = queryset.count() - len(applicable)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was left as it was: the action does not apply to it.",
                    "%(count)d messages were left as they were: the action does not apply to them.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Cancel queued or deferred messages"), permissions=["resend"])
    def cancel(self, request, queryset):
        self._apply(
            request,
            queryset,
            verb=message_cancel,
            allowed=(OutgoingMessage.Status.QUEUED, OutgoingMessage.Status.DEFERRED),
            done_message=lambda count: (
                ngettext("%(count)d message cancelled.", "%(count)d messages cancelled.", count)
                % {"count": count}
            ),
        )

    @admin.action(description=_("Retry deferred messages now"), permissions=["resend"])
    def retry_now(self, request, queryset):
        self._apply(
            request,
            queryset,
            verb=message_retry_now,
            allowed=(OutgoingMessage.Status.DEFERRED,),
            done_message=lambda count: (
                ngettext(
                    "%(count)d message will be retried at once.",
                    "%(count)d messages will be retried at once.",
                    count,
                )
                % {"count": count}
            ),
        )


class MailSettingsForm(forms.ModelForm):
    class Meta:
        model = MailSettings
        fields = ("test_mode", "test_address", "delivery", "mail_client")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("test_mode") and not cleaned.get("test_address"):
            self.add_error(
                "test_address",
                _("Test mode sends every message to this address: enter one to turn it on."),
            )
        return cleaned


@admin.register(MailSettings)
class MailSettingsAdmin(SimpleHistoryAdmin):
    """The one settings row: the list page leads straight to it."""

    form = MailSettingsForm
    fields = ("test_mode", "test_address", "delivery", "mail_client", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings_row = MailSettings.load()
        return redirect(reverse("admin:smtpconfig_mailsettings_change", args=[settings_row.pk]))

    def get_object(self, request, object_id, from_field=None):
        # The row is created on first use, so its page always exists.
        MailSettings.load()
        return super().get_object(request, object_id, from_field)

    def save_model(self, request, obj, form, change):
        mail_settings_update(mail_settings=obj, acting_user=request.user, request=request)
