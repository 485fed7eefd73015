"""The portal's verbs on templates: duplicate one into another language, say which server
sends it, and send it from the compose page on behalf of a staff member."""

from dataclasses import dataclass
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import mailers
from django.db import transaction
from django.utils.translation import gettext as _

from mailadmin.models import MailTemplate
from mailadmin.templating import (
    RenderedMail,
    TemplateRenderError,
    template_email,
    template_render,
)
from smtpconfig.exceptions import (
    ConfigurationError,
    InvalidMessage,
    MailadminError,
    NoServerAvailable,
)
from smtpconfig.models import OutgoingMessage
from smtpconfig.recording import (
    AUTHOR_ATTRIBUTE,
    AUTHOR_NOTE_ATTRIBUTE,
    BYPASS_TEST_MODE_ATTRIBUTE,
)
from smtpconfig.selection import mailbox_parse, route_decide
from smtpconfig.selectors import routing_servers, server_option

# Set on an EmailMessage, the routing backend records it as usual but does not redirect it
# to the test address: a staff member with ``mailadmin.send_real_in_test_mode`` chose the
# real recipients while test mode is on.


class TemplateExists(MailadminError, ValueError):
    """The template already exists in the language it was to be copied to."""

    def __init__(self, message: str, *, template: MailTemplate, language: str):
        super().__init__(message)
        self.template = template
        self.language = language


@transaction.atomic
def template_duplicate(*, template: MailTemplate, language: str) -> MailTemplate:
    """Copy ``template`` under the same name into ``language``, to be translated there."""
    if MailTemplate.objects.filter(name=template.name, language=language).exists():
        raise TemplateExists(
            _("The template “%(name)s” already exists in %(language)s.")
            % {"name": template.name, "language": MailTemplate.Language(language).label},
            template=template,
            language=language,
        )
    return MailTemplate.objects.create(
        name=template.name,
        language=language,
        description=template.description,
        subject=template.subject,
        body_text=template.body_text,
        body_html=template.body_html,
        sender_name=template.sender_name,
        sender_email=template.sender_email,
        reply_to=template.reply_to,
        is_bulk=template.is_bulk,
        sample_context=template.sample_context,
    )


@dataclass(frozen=True)
class RouteDescription:
    """Which server sends mail from a sender and why, or why none can."""

    server_name: str = ""
    reason: str = ""
    from_rewritten: bool = False
    error: str = ""


def template_route_describe(*, sender_email: str, reply_to: str = "") -> RouteDescription:
    """The routing decision for a template's sender (``DEFAULT_FROM_EMAIL`` when empty).

    The same decision the backend takes when the message is sent.
    """
    servers = {server.pk: server for server in routing_servers()}
    try:
        sender = mailbox_parse(sender_email or settings.DEFAULT_FROM_EMAIL, field="From")
        route = route_decide(
            sender=sender,
            reply_to=[reply_to] if reply_to else [],
            servers=[server_option(server=server) for server in servers.values()],
        )
    except (NoServerAvailable, InvalidMessage, ConfigurationError) as error:
        return RouteDescription(error=str(error))
    return RouteDescription(
        server_name=servers[route.server_id].name,
        reason=route.reason,
        from_rewritten=route.from_rewritten,
    )


@dataclass(frozen=True)
class TemplatePreview:
    """What a preview shows: the rendered mail and its server, or why it cannot render."""

    rendered: RenderedMail | None = None
    route: RouteDescription | None = None
    error: str = ""


def template_preview(*, template: MailTemplate, context: dict) -> TemplatePreview:
    """``template`` rendered for a preview (missing values marked) and the server sending it."""
    try:
        rendered = template_render(template=template, context=context, preview=True)
    except TemplateRenderError as error:
        return TemplatePreview(error=str(error))
    route = template_route_describe(sender_email=template.sender_email, reply_to=template.reply_to)
    return TemplatePreview(rendered=rendered, route=route)


def _message_domain(template: MailTemplate) -> str:
    # The sender's own domain, as the backend does for messages without a Message-ID.
    return mailbox_parse(template.sender_email or settings.DEFAULT_FROM_EMAIL, field="From").domain


def compose_send(
    *,
    template: MailTemplate,
    recipients: list[str],
    context: dict,
    user,
    bypass_test_mode: bool = False,
) -> list[OutgoingMessage]:
    """Send ``template`` to each recipient in a message of its own, on behalf of ``user``.

    One message per member, so members never see each other's address. Each message is
    recorded with ``user`` as its author and a line of its story saying who composed it
    and, with ``bypass_test_mode``, that it went to the real recipients although test mode
    is on, in the same transaction as the message itself, before anything is sent. Errors
    of the routing backend (no server, a failed direct delivery) are raised.
    """
    if bypass_test_mode:
        note = _(
            "Composed from the template “%(template)s” by %(user)s and sent to the real "
            "recipients although test mode is on."
        )
    else:
        note = _("Composed from the template “%(template)s” by %(user)s.")
    note = note % {"template": str(template), "user": user.get_username()}
    email_messages = []
    for address in recipients:
        email_message = template_email(template=template, context=context, to=[address])
        email_message.extra_headers["Message-ID"] = make_msgid(domain=_message_domain(template))
        if bypass_test_mode:
            setattr(email_message, BYPASS_TEST_MODE_ATTRIBUTE, True)
        setattr(email_message, AUTHOR_ATTRIBUTE, user)
        setattr(email_message, AUTHOR_NOTE_ATTRIBUTE, note)
        email_messages.append(email_message)
    mailers.default.send_messages(email_messages)
    message_ids = [message.extra_headers["Message-ID"] for message in email_messages]
    return list(
        OutgoingMessage.objects.filter(message_id__in=message_ids).select_related("created_by")
    )
