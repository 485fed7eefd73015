"""Admin of the portal's own models."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from mailadmin.forms import MailTemplateForm, TemplatePreviewForm
from mailadmin.models import MailTemplate
from mailadmin.services import TemplateExists, template_duplicate, template_preview

PREVIEW_FRAGMENT = "mailadmin/template_preview.html"
PREVIEW_PAGE = "admin/mailadmin/mailtemplate/preview.html"


# One action per language, each named in full: "into French" reads differently per language.
DUPLICATE_DESCRIPTIONS = {
    MailTemplate.Language.EN: _("Duplicate the selected templates into English"),
    MailTemplate.Language.FR: _("Duplicate the selected templates into French"),
    MailTemplate.Language.DE: _("Duplicate the selected templates into German"),
}


def _duplicate_action(language: str):
    @admin.action(permissions=["add"], description=DUPLICATE_DESCRIPTIONS[language])
    def duplicate(modeladmin, request, queryset):
        created, skipped = 0, []
        for template in queryset:
            try:
                template_duplicate(template=template, language=language)
            except TemplateExists as error:
                skipped.append(str(error))
            else:
                created += 1
        if created:
            modeladmin.message_user(
                request,
                gettext("%(count)d template(s) copied; translate them now.") % {"count": created},
                messages.SUCCESS,
            )
        for reason in skipped:
            modeladmin.message_user(request, reason, messages.WARNING)

    duplicate.__name__ = f"duplicate_to_{language}"
    return duplicate


@admin.register(MailTemplate)
class MailTemplateAdmin(admin.ModelAdmin):
    form = MailTemplateForm
    change_form_template = "admin/mailadmin/mailtemplate/change_form.html"
    list_display = ["name", "language", "subject", "sender_email", "is_bulk", "updated_at"]
    list_filter = ["language", "is_bulk"]
    search_fields = ["name", "subject", "description"]
    ordering = ["name", "language"]
    actions = [_duplicate_action(language) for language in MailTemplate.Language]
    fieldsets = [
        (None, {"fields": ["name", "language", "description"]}),
        (_("Sender"), {"fields": ["sender_name", "sender_email", "reply_to"]}),
        (_("Content"), {"fields": ["subject", "body_text", "body_html", "is_bulk"]}),
        (_("Sample values for the preview"), {"fields": ["sample_context"]}),
    ]

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("preview/", preview, name="mailadmin_mailtemplate_preview"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        template = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if template is not None:
            extra["mail_preview"] = template_preview(
                template=template, context=template.sample_context or {}
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def add_view(self, request, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        extra["mail_preview"] = template_preview(
            template=MailTemplate(subject="", body_text=""), context={}
        )
        return super().add_view(request, form_url, extra_context=extra)

    def preview_view(self, request):
        """The preview of the form as typed, unsaved: a whole page, or the panel alone.

        The editor's "Preview" button posts the form here (no JavaScript needed); the
        editor's script posts it with ``_fragment`` to refresh the panel in place.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        return require_POST(self._preview_response)(request)

    def _preview_response(self, request):
        form = TemplatePreviewForm(request.POST)
        context = {"preview_form": form}
        if form.is_valid():
            context["mail_preview"] = template_preview(
                template=form.template(), context=form.cleaned_data["sample_context"]
            )
        if request.POST.get("_fragment"):
            return TemplateResponse(request, PREVIEW_FRAGMENT, context)
        context.update(
            self.admin_site.each_context(request),
            opts=self.opts,
            title=gettext("Preview of a mail template"),
        )
        return TemplateResponse(request, PREVIEW_PAGE, context)
