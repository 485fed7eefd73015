"""Tags for any portal page that shows a member's address.

``{% load mailadmin_tags %}`` then ``{% member_email_link address %}``: a link to the compose
page prefilled with the address when the mail program is the mail module, a ``mailto:`` link
when it is the external program. Staff who may not compose see the address without a link.
``{% member_history_url address %}`` gives the address's history page.
"""

from django import template
from django.urls import reverse

from smtpconfig import links
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


@register.simple_tag(takes_context=True)
def member_email_link(context, address):
    request = context.get("request")
    return links.member_email_link(
        address=address,
        user=getattr(request, "user", None),
        mail_settings=_mail_settings(context),
    )


@register.simple_tag
def member_history_url(address):
    return reverse("mailadmin_history", kwargs={"address": address})
