"""How a member's address is shown wherever the portal lists one.

The mail program setting decides: with the mail module the address opens the compose page
prefilled with it, with the external program a ``mailto:`` link. Staff who may not compose
see the address without a link. The compose page and its permission belong to the portal
app above this one: both are used by name (URL name, permission string) so this layer does
not import it.
"""

from urllib.parse import quote, urlencode

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from smtpconfig.models import MailSettings

COMPOSE_URL_NAME = "mailadmin_compose"
COMPOSE_PERMISSION = "mailadmin.compose_mail"


def member_email_href(*, address: str, mail_client: str) -> str:
    """Where a member's address links to, for the given mail program setting."""
    if mail_client == MailSettings.MailClient.EXTERNAL:
        return f"mailto:{quote(address, safe='@')}"
    return f"{reverse(COMPOSE_URL_NAME)}?{urlencode({'to': address})}"


def member_email_link(
    *, address: str, user, mail_settings: MailSettings | None = None
) -> SafeString:
    """The address as a link for ``user`` (``mail_settings`` saves a query per address)."""
    if not address:
        return SafeString("")
    mail_client = (mail_settings or MailSettings.load()).mail_client
    if mail_client == MailSettings.MailClient.MODULE and not (
        user is not None and user.has_perm(COMPOSE_PERMISSION)
    ):
        return format_html('<span class="member-email">{}</span>', address)
    return format_html(
        '<a class="member-email" href="{}">{}</a>',
        member_email_href(address=address, mail_client=mail_client),
        address,
    )
