from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class SecurityConfig(AppConfig):
    default = True
    name = "mailadmin.security"
    label = "mailadmin_security"
    verbose_name = _("Sign-in security")


class SecureAdminConfig(admin_apps.AdminConfig):
    """Django's admin whose default site (``admin.site``) requires the second factor.

    Every ``admin.site.register`` call keeps working: only the site's class changes.
    """

    default = False
    default_site = "mailadmin.security.admin_site.SecureAdminSite"
