"""Starting points for a new server: host, port, security and a recommended send limit.

A preset only prefills the add form; nothing refers to it afterwards. The limits quoted are
the providers' published ones; the recommended limit stays at or under them so the queue
waits instead of the provider refusing (or blocking the account).
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from smtpconfig.guidance import OFFICE365_BASIC_AUTH_WARNING
from smtpconfig.models import SmtpServer


@dataclass(frozen=True)
class ServerPreset:
    key: str
    label: Promise
    host: str
    port: int
    security: str
    use_auth: bool
    limit_period: str
    limit_count: int | None
    auth_method: str = SmtpServer.AuthMethod.PASSWORD
    published_limits: Promise | str = ""
    warnings: tuple[Promise | str, ...] = ()

    def initial(self) -> dict:
        """The add form's initial values for this preset."""
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "use_auth": self.use_auth,
            "auth_method": self.auth_method,
            "limit_period": self.limit_period,
            "limit_count": self.limit_count,
        }

    def as_json(self) -> dict:
        """What the add form's script needs to fill the fields without a reload."""
        return {
            **self.initial(),
            "label": str(self.label),
            "published_limits": str(self.published_limits),
            "warnings": [str(warning) for warning in self.warnings],
        }


OFFICE_365 = ServerPreset(
    key="office365",
    label=_("Office 365 / Exchange Online"),
    host="smtp.office365.com",
    port=587,
    security=SmtpServer.Security.STARTTLS,
    use_auth=True,
    limit_period=SmtpServer.LimitPeriod.DAY,
    limit_count=10_000,
    # Basic authentication is being switched off there (see the warning): start with OAuth2.
    auth_method=SmtpServer.AuthMethod.MICROSOFT_OAUTH2,
    published_limits=_(
        "Microsoft's published limits: 10,000 recipients per day, 30 messages per minute."
    ),
    warnings=(
        _(
            "Office 365 mailboxes are subject to Microsoft's volume limits against spam: "
            "mass mailings to members through an Office 365 account are stopped once they "
            "are reached. SMTP sending is only included in the Enterprise plans (E1, E3, E5). "
            "For club mailings, use a hosted mail domain, a smarthost or an e-mail service."
        ),
        OFFICE365_BASIC_AUTH_WARNING,
    ),
)

GOOGLE = ServerPreset(
    key="google",
    label=_("Google Workspace / Gmail"),
    host="smtp.gmail.com",
    port=587,
    security=SmtpServer.Security.STARTTLS,
    use_auth=True,
    limit_period=SmtpServer.LimitPeriod.DAY,
    limit_count=2_000,
    published_limits=_(
        "Google's published limits: 2,000 messages per day per Google Workspace user "
        "(500 per day for a free Gmail account)."
    ),
    warnings=(
        _(
            "Google accepts only an app password (with 2-step verification) or OAuth2 "
            "sign-in, never the account's normal password. For a free Gmail account, lower "
            "the limit to 500."
        ),
    ),
)

GENERIC = ServerPreset(
    key="generic",
    label=_("Other SMTP server"),
    host="",
    port=587,
    security=SmtpServer.Security.STARTTLS,
    use_auth=True,
    limit_period=SmtpServer.LimitPeriod.NONE,
    limit_count=None,
)

PRESETS = {preset.key: preset for preset in (OFFICE_365, GOOGLE, GENERIC)}


def preset_get(key: str | None) -> ServerPreset | None:
    """The preset named ``key``, ``None`` for an unknown or missing key."""
    return PRESETS.get(key or "")
