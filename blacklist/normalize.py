"""The one normal form of an address, used for storing and for matching."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _


def normalize_address(value: str) -> str:
    """Trim, lower-case, and put the domain in IDNA (punycode) form.

    ``"@Example.ORG"`` (a whole domain) keeps its leading ``@``. Raises ``ValidationError``
    naming the value when it is not an address or a domain entry.
    """
    text = (value or "").strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not domain:
        raise ValidationError(_("“%(value)s” is not an e-mail address."), params={"value": value})
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(
            _("“%(value)s” has an invalid domain."), params={"value": value}
        ) from None
    normalized = f"{local}@{ascii_domain}"
    if local:
        validate_email(normalized)
    else:
        validate_email(f"postmaster@{ascii_domain}")
    return normalized


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]
