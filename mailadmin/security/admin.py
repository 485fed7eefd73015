"""The audit trail (read-only) and the user admin that records role changes."""

import json

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailadmin.auditing import AUDIT_ACTION_LABELS, audit_action_label
from mailadmin.models import AuditEvent
from mailadmin.security.services import (
    user_access_change_record,
    user_access_snapshot,
    user_unlock,
)

User = get_user_model()


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


admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    actions = ["unlock_sign_in"]

    def save_model(self, request, obj, form, change):
        # Roles are saved after the user (save_related), so the "before" is taken here.
        form.access_before = (
            user_access_snapshot(user=User.objects.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.access_before is not None:
            user_access_change_record(
                user=form.instance, before=form.access_before, request=request
            )

    @admin.action(description=_("Lift the sign-in lockout"), permissions=["change"])
    def unlock_sign_in(self, request, queryset):
        lifted = sum(user_unlock(user=user, request=request) for user in queryset)
        self.message_user(
            request,
            ngettext("%(count)d lockout lifted.", "%(count)d lockouts lifted.", lifted)
            % {"count": lifted},
            messages.SUCCESS,
        )
