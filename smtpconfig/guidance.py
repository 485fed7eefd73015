"""Advice about a server's provider, shown on the server's page and in the presets."""

from django.utils.translation import gettext_lazy as _

from smtpconfig.models import SmtpServer

OFFICE365_HOST_SUFFIXES = ("office365.com", "outlook.com")

OFFICE365_BASIC_AUTH_WARNING = _(
    "Microsoft switches SMTP basic authentication (user name and password) off by default "
    "for existing Office 365 tenants at the end of December 2026. Switch this server to "
    "Microsoft 365 (OAuth2) sign-in, or send through a hosted mail service, before then. "
    "Office 365 also limits how much one mailbox may send per day."
)


def is_office365_host(host: str) -> bool:
    host = (host or "").strip().lower().rstrip(".")
    return any(host == suffix or host.endswith(f".{suffix}") for suffix in OFFICE365_HOST_SUFFIXES)


def server_warnings(server: SmtpServer) -> list[str]:
    """Warnings about how ``server`` is set up, in the active language; empty when none."""
    warnings = []
    if (
        server.transport == SmtpServer.Transport.SMTP
        and is_office365_host(server.host)
        and server.auth_method == SmtpServer.AuthMethod.PASSWORD
    ):
        warnings.append(str(OFFICE365_BASIC_AUTH_WARNING))
    return warnings
