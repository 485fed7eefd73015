"""Admin of SMTP servers. The outbox and the mail settings live in admin_outbox."""

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from smtpconfig import (
    admin_deliverability,  # noqa: F401  (DKIM keys, service events)
    admin_outbox,  # noqa: F401  (registers the outbox and settings admins)
)
from smtpconfig.diagnostics import server_connection_test, server_test_mail_send
from smtpconfig.esp import ESP_SERVICES
from smtpconfig.exceptions import ServerChangeRefused
from smtpconfig.forms import (
    GOOGLE_KEY_FIELD,
    GOOGLE_TOKEN_FIELDS,
    MICROSOFT_FIELDS,
    DiagnosticMailForm,
    SmtpServerForm,
    credentials_stored,
    esp_field_names,
)
from smtpconfig.guidance import OFFICE365_BASIC_AUTH_WARNING, server_warnings
from smtpconfig.limits import limit_usage
from smtpconfig.models import SmtpServer
from smtpconfig.oauth import oauth_mailbox_for
from smtpconfig.oauth_guidance import basic_auth_retirement_warning, oauth_guidance_html
from smtpconfig.presets import PRESETS, preset_get
from smtpconfig.ratelimit import test_action_rate_limited
from smtpconfig.services import (
    server_create,
    server_delete,
    server_reset_limit,
    server_set_default,
    server_update,
    servers_delete,
    servers_deletion_refusal,
)

DIAGNOSTIC_TEMPLATE = "admin/smtpconfig/smtpserver/diagnostic.html"
# One sentence per period: languages place and inflect the period differently.
LIMIT_DISPLAY = {
    SmtpServer.LimitPeriod.HOUR: _("%(count)s recipients per hour"),
    SmtpServer.LimitPeriod.DAY: _("%(count)s recipients per day"),
    SmtpServer.LimitPeriod.WEEK: _("%(count)s recipients per week"),
}
# "Set as default" and "Reset the send limit" work from the list and from a server's page.
BOTH_PAGES = [admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM]


@admin.register(SmtpServer)
class SmtpServerAdmin(admin.ModelAdmin):
    form = SmtpServerForm
    list_display = [
        "default_star",
        "name",
        "address",
        "security",
        "sign_in",
        "is_active",
        "limit",
        "limit_use",
        "paused",
    ]
    list_display_links = ["name"]
    list_filter = ["is_active", "transport", "auth_method", "security", "limit_period"]
    search_fields = ["name", "host", "from_filter", "sender_email", "sender_name", "username"]
    actions = ["set_default", "reset_limit", "delete_selected"]
    readonly_fields = [
        "is_default",
        "limit_reset_at",
        "limit_reset_by",
        "paused_until",
        "pause_reason",
        "created_at",
        "updated_at",
    ]

    class Media:
        js = ["smtpconfig/server_presets.js", "smtpconfig/server_form.js"]

    def get_fieldsets(self, request, obj=None):
        authentication = ["use_auth", "auth_method", "username", "new_password"]
        limit = ["limit_period", "limit_count"]
        if obj is not None:
            authentication.append("clear_password")
            limit += ["limit_reset_at", "limit_reset_by"]
        fieldsets = [
            (None, {"fields": ["name", "is_active", "from_filter"]}),
            (_("Sender"), {"fields": ["sender_name", "sender_email", "reply_to"]}),
            (
                _("Sending through"),
                {"fields": ["transport", "timeout", "max_connections"]},
            ),
            (
                _("Connection"),
                {"classes": ["smtp-only"], "fields": ["host", "port", "security"]},
            ),
            (_("Authentication"), {"classes": ["smtp-only"], "fields": authentication}),
            *self._credential_fieldsets(obj),
            (_("Send limit"), {"fields": limit}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    _("Status"),
                    {
                        "fields": [
                            "is_default",
                            "paused_until",
                            "pause_reason",
                            "created_at",
                            "updated_at",
                        ]
                    },
                )
            )
        return fieldsets

    def _credential_fieldsets(self, obj) -> list:
        """One fieldset per OAuth2 method (with its setup steps) and per e-mail service.

        All are in the page: without JavaScript each shows under its own heading; the
        form's script shows only the chosen one.
        """
        guidance = {
            "mailbox": oauth_mailbox_for(server=obj) if obj is not None else "",
            **self._stored_app_ids(obj),
        }
        fieldsets = [
            (
                _("Microsoft 365 (OAuth2) sign-in"),
                {
                    "classes": ["oauth-credentials", "auth-microsoft_oauth2"],
                    "description": oauth_guidance_html(
                        auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2, **guidance
                    ),
                    "fields": list(MICROSOFT_FIELDS.values()),
                },
            ),
            (
                _("Google Workspace (OAuth2) sign-in"),
                {
                    "classes": ["oauth-credentials", "auth-google_oauth2"],
                    "description": oauth_guidance_html(
                        auth_method=SmtpServer.AuthMethod.GOOGLE_OAUTH2,
                        mailbox=guidance["mailbox"],
                    ),
                    "fields": [GOOGLE_KEY_FIELD, *GOOGLE_TOKEN_FIELDS.values()],
                },
            ),
        ]
        for transport in ESP_SERVICES:
            fieldsets.append(
                (
                    gettext("%(service)s credentials")
                    % {"service": SmtpServer.Transport(transport).label},
                    {
                        "classes": ["esp-credentials", f"transport-{transport}"],
                        "fields": esp_field_names(transport),
                    },
                )
            )
        if obj is not None and obj.credentials:
            fieldsets.append((_("Stored credentials"), {"fields": ["clear_credentials"]}))
        return fieldsets

    def _stored_app_ids(self, obj) -> dict:
        """The stored Microsoft tenant and client id (no secrets) to fill in the steps."""
        if obj is None or obj.auth_method != SmtpServer.AuthMethod.MICROSOFT_OAUTH2:
            return {"tenant_id": "", "client_id": ""}
        document = credentials_stored(server=obj)
        return {
            "tenant_id": str(document.get("tenant_id") or ""),
            "client_id": str(document.get("client_id") or ""),
        }

    @admin.display(description=_("Default"), ordering="-is_default")
    def default_star(self, server):
        if not server.is_default:
            return ""
        return format_html(
            '<span class="default-server" title="{}">★</span>', gettext("Default server")
        )

    @admin.display(description=_("SMTP server"), ordering="host")
    def address(self, server):
        if server.transport != SmtpServer.Transport.SMTP:
            return server.get_transport_display()
        return f"{server.host}:{server.port}" if server.host else "—"

    @admin.display(description=_("Sign-in"), ordering="auth_method")
    def sign_in(self, server):
        if server.transport != SmtpServer.Transport.SMTP:
            return gettext("Service credentials")
        if not server.use_auth:
            return gettext("None")
        warning = basic_auth_retirement_warning(server=server)
        if not warning:
            return server.get_auth_method_display()
        return format_html(
            '{} <span class="basic-auth-retiring" title="{}">⚠ {}</span>',
            server.get_auth_method_display(),
            warning,
            gettext("ends December 2026"),
        )

    @admin.display(description=_("Send limit"))
    def limit(self, server):
        if server.limit_period == SmtpServer.LimitPeriod.NONE or server.limit_count is None:
            return gettext("No send limit")
        return LIMIT_DISPLAY[server.limit_period] % {
            "count": number_format(server.limit_count, force_grouping=True)
        }

    @admin.display(description=_("Used in the current window"))
    def limit_use(self, server):
        """ "Used / limit" and when the next message fits, for a server with a limit.

        One query of at most 61 counting rows per limited server, whatever the history.
        """
        if server.limit_period == SmtpServer.LimitPeriod.NONE or server.limit_count is None:
            return "—"
        now = timezone.now()
        usage = limit_usage(server=server, now=now)
        used = gettext("%(used)s / %(limit)s") % {
            "used": number_format(usage.used, force_grouping=True),
            "limit": number_format(usage.limit, force_grouping=True),
        }
        if usage.next_fit_at is None:
            fits = gettext("no message fits this limit")
        elif usage.next_fit_at <= now:
            fits = gettext("the next message fits now")
        else:
            fits = gettext("the next message fits at %(time)s") % {
                "time": date_format(timezone.localtime(usage.next_fit_at), "SHORT_DATETIME_FORMAT")
            }
        return format_html('{}<br><span class="limit-next-fit">{}</span>', used, fits)

    @admin.display(description=_("Paused"))
    def paused(self, server):
        if server.paused_until is None or server.paused_until <= timezone.now():
            return "—"
        until = date_format(timezone.localtime(server.paused_until), "SHORT_DATETIME_FORMAT")
        if server.pause_reason:
            return gettext("until %(until)s: %(reason)s") % {
                "until": until,
                "reason": server.pause_reason,
            }
        return gettext("until %(until)s") % {"until": until}

    @admin.action(permissions=["delete"], description=_("Delete selected SMTP servers"))
    def delete_selected(self, request, queryset):
        """Django's confirmation page, once the default server's rule allows the deletion.

        Named like the site-wide action it replaces: the confirmation posts back to it.
        """
        refusal = servers_deletion_refusal(servers=queryset)
        if refusal is not None:
            self.message_user(request, str(refusal), messages.ERROR)
            return None
        return delete_selected(self, request, queryset)

    @admin.action(
        permissions=["change"], description=_("Set as default server"), location=BOTH_PAGES
    )
    def set_default(self, request, queryset):
        servers = list(queryset[:2])
        if len(servers) != 1:
            self.message_user(
                request,
                gettext("Select exactly one server to make it the default."),
                messages.ERROR,
            )
            return
        try:
            server = server_set_default(server=servers[0], acting_user=request.user)
        except ServerChangeRefused as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(
            request,
            gettext("“%(server)s” is now the default server.") % {"server": server.name},
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["change"], description=_("Reset the send limit"), location=BOTH_PAGES
    )
    def reset_limit(self, request, queryset):
        names = []
        for server in queryset:
            server_reset_limit(server=server, acting_user=request.user)
            names.append(server.name)
        self.message_user(
            request,
            gettext("Send limit reset for: %(servers)s. Recipients sent until now no longer count.")
            % {"servers": ", ".join(names)},
            messages.SUCCESS,
        )

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        preset = preset_get(request.GET.get("preset"))
        if preset is not None:
            initial.update(preset.initial())
        return initial

    def add_view(self, request, form_url="", extra_context=None):
        context = {
            "presets": PRESETS.values(),
            "presets_data": {key: preset.as_json() for key, preset in PRESETS.items()},
            "chosen_preset": preset_get(request.GET.get("preset")),
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        server = self.get_object(request, unquote(object_id))
        context = {
            "server_warnings": self._server_warnings(server) if server else [],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _server_warnings(self, server) -> list[str]:
        retirement = basic_auth_retirement_warning(server=server)
        if not retirement:
            return server_warnings(server)
        # The retirement warning says it for this server: not twice.
        general = str(OFFICE365_BASIC_AUTH_WARNING)
        return [retirement, *(text for text in server_warnings(server) if text != general)]

    def save_model(self, request, obj, form, change):
        password = form.cleaned_data.get("new_password") or None
        if change:
            server_update(
                server=obj,
                password=password,
                clear_password=form.cleaned_data.get("clear_password", False),
                credentials=form.credentials_document,
                acting_user=request.user,
            )
        else:
            server_create(
                server=obj,
                password=password,
                credentials=form.credentials_document,
                acting_user=request.user,
            )

    def delete_model(self, request, obj):
        server_delete(server=obj, acting_user=request.user)

    def delete_queryset(self, request, queryset):
        servers_delete(servers=queryset, acting_user=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        server = self.get_object(request, unquote(object_id))
        if server is not None and not self.has_delete_permission(request, server):
            raise PermissionDenied  # before the refusal, whose message describes the outbox
        refusal = servers_deletion_refusal(servers=[server]) if server else None
        if refusal is not None:
            self.message_user(request, str(refusal), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:smtpconfig_smtpserver_change", args=[server.pk])
            )
        return super().delete_view(request, object_id, extra_context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="smtpconfig_smtpserver_test_connection",
            ),
            path(
                "<path:object_id>/send-test-mail/",
                self.admin_site.admin_view(self.send_test_mail_view),
                name="smtpconfig_smtpserver_send_test_mail",
            ),
            *super().get_urls(),
        ]

    def _diagnostic_server(self, request, object_id) -> SmtpServer:
        server = self.get_object(request, unquote(object_id))
        if server is None:
            raise Http404
        if not self.has_change_permission(request, server):
            raise PermissionDenied
        return server

    def _diagnostic_response(self, request, server, *, title, action, form=None, report=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": server,
            "title": title,
            "action": action,
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, DIAGNOSTIC_TEMPLATE, context)

    def _rate_limited(self, request, action: str) -> bool:
        if test_action_rate_limited(user=request.user, action=action):
            self.message_user(
                request,
                gettext("Too many tests in a short time. Wait a few minutes and try again."),
                messages.ERROR,
            )
            return True
        return False

    def test_connection_view(self, request, object_id):
        server = self._diagnostic_server(request, object_id)
        report = None
        if request.method == "POST" and not self._rate_limited(request, "test_connection"):
            report = server_connection_test(server=server)
        return self._diagnostic_response(
            request,
            server,
            title=gettext("Test connection to “%(server)s”") % {"server": server.name},
            action="test_connection",
            report=report,
        )

    def send_test_mail_view(self, request, object_id):
        server = self._diagnostic_server(request, object_id)
        report = None
        if request.method == "POST":
            form = DiagnosticMailForm(request.POST)
            if form.is_valid() and not self._rate_limited(request, "send_test_mail"):
                report = server_test_mail_send(
                    server=server, recipient=form.cleaned_data["recipient"]
                )
        else:
            form = DiagnosticMailForm(initial={"recipient": request.user.email})
        return self._diagnostic_response(
            request,
            server,
            title=gettext("Send a test mail through “%(server)s”") % {"server": server.name},
            action="send_test_mail",
            form=form,
            report=report,
        )
