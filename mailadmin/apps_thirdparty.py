"""Translatable names for the admin sections of third-party apps.

The queue (django-q2), the sign-in lockouts (django-axes) and the second factor
(django-otp's plugins) appear to superusers in the admin under their app's name, which
those packages leave untranslated or unset. These configurations keep each app's label
and start-up code and only give the section a name in the reader's language.
"""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.apps import DefaultConfig as StaticDeviceConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TotpDeviceConfig
from django_q.apps import DjangoQConfig


class QueueConfig(DjangoQConfig):
    verbose_name = _("Queue")


class LockoutConfig(AxesAppConfig):
    verbose_name = _("Sign-in lockouts")


class AuthenticatorAppConfig(TotpDeviceConfig):
    verbose_name = _("Second factor: authenticator apps")


class BackupCodeConfig(StaticDeviceConfig):
    verbose_name = _("Second factor: backup codes")
