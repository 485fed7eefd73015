"""Reads of the portal: a member's mail history."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from smtpconfig.exceptions import InvalidMessage
from smtpconfig.models import Recipient
from smtpconfig.selection import mailbox_parse

HISTORY_PAGE_SIZE = 25


def _address_spellings(address: str) -> set[str]:
    text = address.strip()
    spellings = {text, text.lower()}
    try:
        envelope = mailbox_parse(text, field="To").envelope
    except InvalidMessage:
        # Not an address the backend could have recorded: the plain forms still match.
        return spellings
    return spellings | {envelope}


def recipient_history(*, address: str) -> QuerySet[Recipient]:
    """Every recipient row of ``address``, newest message first, with what its page shows.

    The outbox stores an address as the backend's envelope form (local part as written,
    domain in lower-case IDNA); the address is looked up in that form, as typed and in lower
    case, so the ``email`` index serves the query whatever the size of the history.
    """
    return (
        Recipient.objects.filter(email__in=_address_spellings(address))
        .select_related("message", "message__server", "blacklist_entry")
        # Newest first by the message's id (ids grow with time): the ``(email, -message)``
        # index gives the page without sorting a long-standing member's whole history.
        .order_by("-message_id", "id")
    )


def recipient_history_page(*, address: str, page_number: str | int | None) -> Page:
    """One page of ``recipient_history``; a bad or too large page number gives a valid page."""
    return Paginator(recipient_history(address=address), HISTORY_PAGE_SIZE).get_page(page_number)
