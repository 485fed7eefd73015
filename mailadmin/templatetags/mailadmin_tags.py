"""Tags for any portal page that shows a member's address.

``{% load mailadmin_tags %}`` then ``{% member_email_link address %}``: a link to the compose
page prefilled with the address when the mail program is the mail module, a ``mailto:`` link
when it is the external program. Staff who may not compose see the address without a link.
``{% member_history_url address %}`` gives the address's history page.
"""

from urllib.parse import quote, urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html

from smtpconfig.models import MailSettings

register = template.Library()

_SETTINGS_KEY = "mailadmin_tags.mail_settings"


def _mail_settings(context) -> MailSettings:
    # One query per page however many addresses it lists: the context processor's row when
    # there is one, else one loaded once per render.
    found = context.get("mail_settings")
    if isinstance(found, MailSettings):
        return found
    cache = context.render_context
    if _SETTINGS_KEY not in cache:
        cache[_SETTINGS_KEY] = MailSettings.load()
    return cache[_SETTINGS_KEY]


def member_email_href(*, address: str, mail_client: str) -> str:
    """Where a member's address links to, for the given mail program setting."""
    if mail_client == MailSettings.MailClient.EXTERNAL:
        return f"mailto:{quote(address, safe='@')}"
    return f"{reverse('mailadmin_compose')}?{urlencode({'to': address})}"


@register.simple_tag(takes_context=True)
def member_email_link(context, address):
    if not address:
        return ""
    mail_client = _mail_settings(context).mail_client
    request = context.get("request")
    user = getattr(request, "user", None)
    if mail_client == MailSettings.MailClient.MODULE and not (
        user is not None and user.has_perm("mailadmin.compose_mail")
    ):
        return format_html('<span class="member-email">{}</span>', address)
    return format_html(
        '<a class="member-email" href="{}">{}</a>',
        member_email_href(address=address, mail_client=mail_client),
        address,
    )


@register.simple_tag
def member_history_url(address):
    return reverse("mailadmin_history", kwargs={"address": address})
