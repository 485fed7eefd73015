"""Pure checks and normal forms of what an administrator types about a server.

Functions of plain strings (no database), shared by the server form and the routing code,
so a filter entry is read the same way when it is saved and when a message is routed.
"""

import ipaddress
import re

from django.core.validators import EmailValidator
from django.utils.translation import gettext as _

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ENTRY_SEPARATORS = re.compile(r"[,;\s]+")
_LOCAL_PART = EmailValidator.user_regex


class FromFilterError(ValueError):
    """One entry of a ``from_filter`` is neither a domain nor a full address."""

    def __init__(self, message: str, *, entry: str):
        super().__init__(message)
        self.entry = entry


class HostError(ValueError):
    """A server host name that cannot be connected to as written."""

    def __init__(self, message: str, *, host: str):
        super().__init__(message)
        self.host = host


def domain_normalize(domain: str) -> str | None:
    """``domain`` in lower-case IDNA (punycode) form, or ``None`` if it is not a domain.

    Uses Python's ``idna`` codec, as routing does for a sender's domain, so both sides
    produce the same form. A domain needs at least two labels.
    """
    text = domain.strip().rstrip(".").lower()
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or len(labels) < 2:
        return None
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return None
    return ascii_form


def from_filter_entry_normalize(entry: str) -> str:
    """One filter entry as a lower-case domain or full address; ``FromFilterError`` if neither."""
    local, at, domain = entry.rpartition("@")
    if not at:
        normalized = domain_normalize(entry)
        if normalized is None:
            raise FromFilterError(
                _(
                    "“%(entry)s” is neither a domain (club.example) nor a full address "
                    "(office@club.example)."
                )
                % {"entry": entry},
                entry=entry,
            )
        return normalized
    normalized_domain = domain_normalize(domain)
    if not local or not _LOCAL_PART.match(local) or normalized_domain is None:
        raise FromFilterError(
            _("“%(entry)s” is not a valid e-mail address.") % {"entry": entry}, entry=entry
        )
    return f"{local.lower()}@{normalized_domain}"


def parse_from_filter(text: str) -> list[str]:
    """The entries of a ``from_filter``, normalised, in the order written, without repeats.

    Entries are separated by commas (semicolons, spaces and line breaks are accepted too).
    Each is a domain or a full address, returned in lower case with the domain in IDNA
    form. Raises ``FromFilterError`` naming the first bad entry.
    """
    entries: list[str] = []
    for raw in _ENTRY_SEPARATORS.split(text or ""):
        if not raw:
            continue
        entry = from_filter_entry_normalize(raw)
        if entry not in entries:
            entries.append(entry)
    return entries


def from_filter_format(entries: list[str]) -> str:
    """The stored text of a filter: its normalised entries joined by ``", "``."""
    return ", ".join(entries)


def host_normalize(host: str) -> str:
    """A server host as stored: a lower-case IDNA host name or an IP address.

    Raises ``HostError`` for anything a connection could not use (spaces, a scheme, a port,
    bad labels).
    """
    text = host.strip()
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    lowered = text.rstrip(".").lower()
    try:
        ascii_form = lowered.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    valid = (
        bool(ascii_form)
        and len(ascii_form) <= 253
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        raise HostError(
            _(
                "“%(host)s” is not a valid host name or IP address (for example smtp.club.example; "
                "no “smtp://” and no port)."
            )
            % {"host": host},
            host=host,
        )
    return ascii_form
