"""The default admin site, closed to a session that still owes its second factor."""

from django.contrib import admin

from mailadmin.security.second_factor import second_factor_satisfied


class SecureAdminSite(admin.AdminSite):
    def has_permission(self, request):
        # SecondFactorMiddleware already sends such a session to the verification page;
        # this keeps the admin closed even for a request that reaches it some other way.
        return super().has_permission(request) and second_factor_satisfied(user=request.user)
