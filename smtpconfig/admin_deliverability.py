"""Admin of deliverability: DKIM keys, the services' tracking events, a server's domain health."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from smtpconfig.dkim import dkim_key_generate, dkim_txt_record, dkim_txt_strings
from smtpconfig.dns_health import server_domain_health
from smtpconfig.guidance import server_warnings
from smtpconfig.models import DkimKey, ProviderEvent, SmtpServer


class DkimKeyGenerateForm(forms.Form):
    domain = forms.CharField(
        label=_("domain"),
        max_length=253,
        help_text=_("The sender domain, e.g. club.example; mail From this domain is signed."),
    )
    selector = forms.CharField(
        label=_("selector"),
        max_length=63,
        initial="mailadmin",
        help_text=_("The name under which the public key is published in the DNS."),
    )


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    list_display = ["domain", "selector", "is_active", "created_at", "created_by"]
    list_filter = ["is_active"]
    list_select_related = ["created_by"]
    search_fields = ["domain"]
    fields = ["domain", "selector", "is_active", "dns_record", "created_at", "created_by"]
    readonly_fields = ["domain", "selector", "dns_record", "created_at", "created_by"]
    actions = ["generate_new_key"]

    def get_urls(self):
        return [
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="smtpconfig_dkimkey_generate",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        # A key is generated, never typed in: "Add" leads to the generate form.
        return HttpResponseRedirect(reverse("admin:smtpconfig_dkimkey_generate"))

    def generate_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DkimKeyGenerateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                key = dkim_key_generate(
                    domain=form.cleaned_data["domain"],
                    selector=form.cleaned_data["selector"],
                    acting_user=request.user,
                )
            except ValidationError as error:
                form.add_error("domain", error)
            else:
                self.message_user(
                    request,
                    gettext(
                        "A key pair for %(domain)s was generated. Publish the DNS record "
                        "below; mail from %(domain)s is signed from now on."
                    )
                    % {"domain": key.domain},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:smtpconfig_dkimkey_change", args=[key.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Generate a DKIM key"),
            "form": form,
        }
        return TemplateResponse(request, "admin/smtpconfig/dkimkey/generate.html", context)

    @admin.display(description=_("DNS record to publish"))
    def dns_record(self, key: DkimKey):
        name, value = dkim_txt_record(key=key)
        return format_html(
            "<p>{}</p><p><code>{}</code></p><p>{}</p><p><code>{}</code></p><p>{}</p>{}",
            gettext("Type: TXT. Name:"),
            name,
            gettext("Value:"),
            value,
            gettext(
                "DNS providers whose form takes at most 255 characters per string want it "
                "split like this:"
            ),
            format_html_join(
                "", '<p><code>"{}"</code></p>', ((part,) for part in dkim_txt_strings(value))
            ),
        )

    @admin.action(
        description=_("Generate a new key pair (publish the new record)"), permissions=["change"]
    )
    def generate_new_key(self, request, queryset):
        for key in queryset:
            dkim_key_generate(domain=key.domain, selector=key.selector, acting_user=request.user)
        self.message_user(
            request,
            gettext("New key pairs generated: publish their DNS records before sending."),
            messages.WARNING,
        )


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    """What the e-mail services reported; a log, so read-only."""

    list_display = ["received_at", "provider", "event_type", "recipient", "message"]
    list_filter = ["provider", "event_type"]
    list_select_related = ["message"]
    search_fields = ["recipient", "provider_message_id", "event_id"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def server_domain_health_view(request, server_id: int):
    """The domain-health page of one server: each sender domain's SPF, DMARC, DKIM, MX."""
    if not request.user.has_perm("smtpconfig.view_smtpserver"):
        raise PermissionDenied
    server = get_object_or_404(SmtpServer, pk=server_id)
    context = {
        **admin.site.each_context(request),
        "opts": SmtpServer._meta,
        "original": server,
        "title": _("Domain health of %(server)s") % {"server": server.name},
        "server": server,
        "warnings": server_warnings(server),
        "reports": server_domain_health(server=server),
    }
    return TemplateResponse(request, "admin/smtpconfig/smtpserver/domain_health.html", context)
