from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from mailadmin import portal, views
from smtpconfig.admin_deliverability import server_domain_health_view
from smtpconfig.views_unsubscribe import unsubscribe_view

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "admin/smtpconfig/smtpserver/<int:server_id>/domain-health/",
        admin.site.admin_view(server_domain_health_view),
        name="smtpconfig_server_domain_health",
    ),
    path("admin/", admin.site.urls),
    # The dashboard is the admin's index page: the portal's home.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("routing/", portal.routing_check, name="routing_check"),
    path("account/", include("mailadmin.security.urls")),
    path("compose/", views.compose, name="mailadmin_compose"),
    path("history/", views.history_lookup, name="mailadmin_history_lookup"),
    path("history/<path:address>/", views.history, name="mailadmin_history"),
    # Tracking webhooks of the e-mail services (basic auth + the service's signature).
    path("anymail/", include("anymail.urls")),
    # One-click unsubscribe (RFC 8058): public, the signed token is the authorisation.
    path("unsubscribe/<str:token>/", unsubscribe_view, name="unsubscribe"),
]
