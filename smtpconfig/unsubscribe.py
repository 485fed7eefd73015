"""One-click unsubscribe (RFC 8058) for bulk mail: signed links and what a click does.

The link carries the recipient's address signed with ``SECRET_KEY`` (salted for this use),
so no login and no stored token is needed, and a forged or altered link is refused. It does
not expire: an unsubscribe link in an old newsletter must still work.
"""

from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext as _

from blacklist.models import BlacklistEntry
from blacklist.normalize import normalize_address
from blacklist.services import blacklist_add
from smtpconfig.conf import mailadmin_setting
from smtpconfig.exceptions import ConfigurationError

_SALT = "mailadmin.unsubscribe"
SOURCE_DETAIL = "List-Unsubscribe (RFC 8058)"


class InvalidUnsubscribeLink(ValueError):
    """The link's signature does not match: altered, truncated or forged."""


def unsubscribe_token(*, address: str) -> str:
    return signing.Signer(salt=_SALT).sign_object(normalize_address(address))


def unsubscribe_address(*, token: str) -> str:
    """The address a token was made for; ``InvalidUnsubscribeLink`` when it was altered."""
    try:
        return signing.Signer(salt=_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as error:
        raise InvalidUnsubscribeLink(str(error)) from error


def unsubscribe_url(*, address: str) -> str:
    base = (mailadmin_setting("PUBLIC_URL") or "").rstrip("/")
    if not base:
        raise ConfigurationError(
            "MAILADMIN['PUBLIC_URL'] (MAILADMIN_PUBLIC_URL) is not set: unsubscribe links "
            "need the portal's public address, e.g. https://mail.club.example."
        )
    return base + reverse("unsubscribe", kwargs={"token": unsubscribe_token(address=address)})


def unsubscribe_headers(*, address: str) -> dict[str, str]:
    """The RFC 8058 headers for a bulk message to ``address``.

    They must be covered by the DKIM signature (``smtpconfig.dkim.dkim_sign`` does so),
    or receivers will not offer the one-click button.
    """
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(address=address)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_apply(*, token: str) -> tuple[BlacklistEntry, bool]:
    """Put the token's address on the blacklist with reason ``unsubscribe``.

    Returns ``(entry, created)``; an address already listed (for any reason) stays as it is.
    """
    address = unsubscribe_address(token=token)
    return blacklist_add(
        email=address,
        reason=BlacklistEntry.Reason.UNSUBSCRIBE,
        # The recipient asked, through the link or their mailbox's one-click button: not an
        # event an e-mail service reported.
        source=BlacklistEntry.Source.RECIPIENT,
        source_detail=SOURCE_DETAIL,
        note=_("Unsubscribed through the link in a message."),
    )
