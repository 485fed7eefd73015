"""Reads of the portal: a member's mail history."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from smtpconfig.models import Recipient

HISTORY_PAGE_SIZE = 25


def recipient_history(*, address: str) -> QuerySet[Recipient]:
    """Every recipient row of ``address``, newest message first, with what its page shows.

    Matching ignores case; the index on ``email`` serves the lower-case form the outbox
    stores, and the address as typed when it was stored differently.
    """
    variants = {address.strip(), address.strip().lower()}
    return (
        Recipient.objects.filter(email__in=variants)
        .select_related("message", "message__server", "blacklist_entry")
        .order_by("-message__created_at", "-message_id", "id")
    )


def recipient_history_page(*, address: str, page_number: str | int | None) -> Page:
    """One page of ``recipient_history``; a bad or too large page number gives a valid page."""
    return Paginator(recipient_history(address=address), HISTORY_PAGE_SIZE).get_page(page_number)
