"""The audit trail, read-only: Mail administrators read and filter it, nobody edits it."""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from audit.services import AUDIT_ACTION_LABELS, audit_action_label


class AuditActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(str(action), label) for action, label in AUDIT_ACTION_LABELS.items()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(action=self.value())
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action_label", "object_repr", "user", "ip_address"]
    list_filter = [AuditActionFilter, "created_at", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_repr", "user__username", "ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    fields = [
        "created_at",
        "action_label",
        "object_repr",
        "user",
        "ip_address",
        "before_pretty",
        "after_pretty",
    ]
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, event):
        return audit_action_label(event.action)

    @admin.display(description=_("before"))
    def before_pretty(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.before, indent=2, ensure_ascii=False))

    @admin.display(description=_("after"))
    def after_pretty(self, event):
        return format_html("<pre>{}</pre>", json.dumps(event.after, indent=2, ensure_ascii=False))

    # A trail nobody can edit: written only by the services, never through the admin.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
