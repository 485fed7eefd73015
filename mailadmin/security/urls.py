from django.urls import path

from mailadmin.security import views

app_name = "security"

urlpatterns = [
    path("two-factor/", views.two_factor_overview, name="two_factor"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/backup-codes/", views.backup_codes_renew, name="backup_codes"),
    path("two-factor/remove/", views.two_factor_remove, name="two_factor_remove"),
    path("sign-out/", views.sign_out, name="sign_out"),
]
