"""Run-time access to the ``MAILADMIN`` settings dict, so ``override_settings`` works."""

from django.conf import settings

DEFAULTS = {
    "ENCRYPTION_KEYS": [],
    "LEASE_SECONDS": 120,
    "BATCH_SIZE": 200,
    "RETRY_FIRST_DELAY": 60,
    "RETRY_MAX_DELAY": 3600,
    "RETRY_MAX_AGE": 3 * 24 * 3600,
    "SMTP_TIMEOUT": 30,
    # CA bundle (path) trusted for SMTP TLS instead of the public CAs; None: the public CAs.
    # Meant for tests (a certificate made on the fly) and a relay with the club's own CA.
    "SMTP_CA_FILE": None,
    # Name servers (IP addresses) for domain-health checks; empty: the system's resolver.
    "DNS_NAMESERVERS": [],
    "DNS_PORT": 53,
    "DNS_TIMEOUT": 5,
    # Public base URL of the portal (https://mail.club.example), for links inside mail.
    "PUBLIC_URL": "",
    "OUTBOUND_ALLOW_PRIVATE": True,
    "OUTBOUND_ALLOW_LOOPBACK": True,
    "TEST_ACTION_LIMIT": 10,
    "TEST_ACTION_PERIOD": 600,
    "SESSION_IDLE_TIMEOUT": 30 * 60,
    "TRUSTED_PROXY_COUNT": 0,
    # OAuth2 providers' endpoints; tests point them at a local peer.
    "OAUTH_MICROSOFT_AUTHORITY_HOST": "https://login.microsoftonline.com",
    "OAUTH_GOOGLE_TOKEN_URI": "https://oauth2.googleapis.com/token",
    # CA bundle (path) trusted for the token endpoints; None: the usual public CAs.
    "OAUTH_CA_BUNDLE": None,
    # Seconds per token request; on SQLite other writers wait while it runs (see oauth.py).
    "OAUTH_TIMEOUT": 10,
}


def mailadmin_setting(name: str):
    """Return ``settings.MAILADMIN[name]``, falling back to the documented default."""
    return getattr(settings, "MAILADMIN", {}).get(name, DEFAULTS[name])
