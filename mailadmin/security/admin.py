"""The user admin that records role changes in the audit trail."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailadmin.security.services import (
    user_access_change_record,
    user_access_snapshot,
    user_unlock,
)

User = get_user_model()


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
