"""Reads the routing backend and the outbox admin need."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from smtpconfig.exceptions import ConfigurationError
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient, SmtpServer
from smtpconfig.selection import ServerOption
from smtpconfig.validation import FromFilterError, parse_from_filter


def server_option(*, server: SmtpServer) -> ServerOption:
    """The plain values routing decides on, from one server row."""
    try:
        entries = parse_from_filter(server.from_filter)
    except FromFilterError as error:
        # The server form refuses such a filter; one stored some other way must not route
        # mail by guesswork.
        raise ConfigurationError(
            _("The filter of SMTP server “%(server)s” is invalid: %(error)s")
            % {"server": server.name, "error": error}
        ) from error
    addresses = {entry for entry in entries if "@" in entry}
    domains = {entry for entry in entries if "@" not in entry}
    return ServerOption(
        id=server.pk,
        name=server.name,
        sender_email=server.sender_email,
        sender_name=server.sender_name,
        reply_to=server.reply_to,
        filter_addresses=frozenset(addresses),
        filter_domains=frozenset(domains),
        is_default=server.is_default,
        is_active=server.is_active,
    )


def routing_servers() -> list[SmtpServer]:
    """Every active server, by name (the order routing breaks ties in): one query."""
    return list(SmtpServer.objects.filter(is_active=True).order_by("name", "pk"))


def message_recipients(*, message: OutgoingMessage) -> QuerySet[Recipient]:
    return message.recipients.select_related("blacklist_entry").order_by("pk")


def message_events(*, message: OutgoingMessage) -> QuerySet[MessageEvent]:
    return message.events.select_related("user").order_by("created_at", "pk")
