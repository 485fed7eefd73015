"""The one normal form of an address, used for storing and for matching."""

import contextlib
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.encoding import punycode
from django.utils.translation import gettext_lazy as _

# Unicode categories a non-ASCII character of a local part may belong to (RFC 6531 allows
# UTF-8 there): letters, marks and digits; never spaces, controls or look-alike punctuation.
WORD_CATEGORIES = ("L", "M", "N")


def address_match_key(value: str) -> str:
    """The normal form of ``value`` without validating it: trimmed, lower case, IDNA domain.

    Matching must not fail on a malformed recipient (the message is refused elsewhere), yet a
    malformed address in a blocked domain is still found by its domain.
    """
    text = (value or "").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    # The same IDNA encoding Django uses for the SMTP envelope, so an entry blocks exactly
    # the address the message would really be sent to; a domain it cannot encode stays as is.
    with contextlib.suppress(UnicodeError):
        domain = punycode(domain)
    return f"{local}@{domain}"


def normalize_address(value: str) -> str:
    """Trim, lower-case, and put the domain in IDNA (punycode) form.

    ``"@Example.ORG"`` (a whole domain) keeps its leading ``@``. A non-ASCII local part
    (``jörg@…``) is kept as it is. Raises ``ValidationError`` naming the value when it is not
    an address or a domain entry.
    """
    shown = (value or "").strip()
    if not shown:
        raise ValidationError(_("The e-mail address is empty."), code="empty")
    local, at, domain = shown.lower().rpartition("@")
    if not at or not domain:
        raise _not_an_address(shown)
    try:
        ascii_domain = punycode(domain)
    except UnicodeError:
        raise ValidationError(
            _("“%(value)s” has an invalid domain."), code="invalid_domain", params={"value": shown}
        ) from None
    # Django's validator knows only ASCII local parts: check the non-ASCII characters here
    # and let it judge the rest with a stand-in letter for each of them.
    if any(
        unicodedata.category(char)[0] not in WORD_CATEGORIES for char in local if not char.isascii()
    ):
        raise _not_an_address(shown)
    stand_in = "".join(char if char.isascii() else "x" for char in local) or "postmaster"
    try:
        validate_email(f"{stand_in}@{ascii_domain}")
    except ValidationError:
        raise _not_an_address(shown) from None
    return f"{local}@{ascii_domain}"


def _not_an_address(shown: str) -> ValidationError:
    return ValidationError(
        _("“%(value)s” is not a valid e-mail address."), code="invalid", params={"value": shown}
    )


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]
