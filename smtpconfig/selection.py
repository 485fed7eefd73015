"""Pure routing decisions: which server sends a message, under which From, and why.

Functions of plain values (no database, no network), so they are tested exhaustively.
The rules, from the product brief:

1. The server whose ``from_filter`` holds the sender's exact address wins; failing that,
   the server whose filter holds the sender's domain (never a parent domain's entry for a
   subdomain); failing that, the default server. Matching ignores case and display names.
   Inactive servers are never chosen.
2. When the sender does not belong to the chosen server (it was chosen as the default,
   or the message has no sender), the From becomes the server's ``sender_name
   <sender_email>`` and the original sender moves to Reply-To, unless a Reply-To was set;
   the server's ``reply_to`` fills a Reply-To still empty. This keeps SPF/DMARC aligned.
   The server's own sender address always belongs to it.
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address, AddressHeader

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from blacklist.normalize import domain_of, normalize_address
from smtpconfig.exceptions import InvalidMessage, NoServerAvailable

# Python reports a non-ASCII local part as a defect; the envelope check below gives the
# clearer error (it cannot be sent without SMTPUTF8), so this defect is not reported twice.
_NON_ASCII_LOCAL_PART = "local-part contains non-ASCII characters)"

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# A plain address: "local@domain", or "Display Name <local@domain>" with a display name of
# plain words, all ASCII. The standard library's parser reads it as this pattern does (the
# tests hold the two together), at a fraction of the cost. "=?" would start an encoded
# word, so no text holding it is plain.
PLAIN_MAILBOX = re.compile(
    r"(?!.*=\?)"
    rf"(?:(?P<name>{_ATOM}(?: {_ATOM})*) <)?"
    rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
    r"(?(name)>)"
)


@dataclass(frozen=True)
class Mailbox:
    """One parsed address.

    ``header`` is what a header shows (display name kept), ``normalized`` the form used for
    matching (lower case, domain in IDNA), ``envelope`` the form an SMTP server is given
    (local part as written, domain lower case in IDNA).
    """

    header: str
    display_name: str
    normalized: str
    envelope: str

    @property
    def domain(self) -> str:
        return self.normalized.rpartition("@")[2]


def mailbox_parse(value: str, *, field: str) -> Mailbox:
    """Parse one address of header ``field``; ``InvalidMessage`` naming the value if bad."""
    text = str(value)
    if "\r" in text or "\n" in text:
        raise InvalidMessage(
            _("The %(field)s address %(value)r contains a line break.")
            % {"field": field, "value": text},
            value=text,
        )
    plain = PLAIN_MAILBOX.fullmatch(text)
    parts = (
        (plain["name"] or "", plain["local"], plain["domain"])
        if plain is not None
        else _mailbox_parts(text)
    )
    if parts is None:
        raise _not_an_address(field=field, text=text)
    display_name, local_part, domain = parts
    if not local_part.isascii():
        raise InvalidMessage(
            _(
                "The %(field)s address %(value)r has non-ASCII characters before the @, "
                "which SMTP servers cannot be given."
            )
            % {"field": field, "value": text},
            value=text,
        )
    try:
        normalized = normalize_address(f"{local_part}@{domain}")
    except ValidationError:
        raise _not_an_address(field=field, text=text) from None
    # The local part as written (some servers tell case apart), the domain as normalised.
    envelope = f"{local_part}@{domain_of(normalized)}"
    return Mailbox(
        header=text.strip(),
        display_name=display_name,
        normalized=normalized,
        envelope=envelope,
    )


def _not_an_address(*, field: str, text: str) -> InvalidMessage:
    return InvalidMessage(
        _("The %(field)s address %(value)r is not a valid e-mail address.")
        % {"field": field, "value": text},
        value=text,
    )


def _mailbox_parts(text: str) -> tuple[str, str, str] | None:
    """(display name, local part, domain) as the standard library's parser reads them;
    ``None`` when it does not read one whole address."""
    try:
        parsed = AddressHeader.value_parser(text)
    except (HeaderParseError, IndexError):
        return None
    defects = [str(defect) for defect in parsed.all_defects]
    if [defect for defect in defects if defect != _NON_ASCII_LOCAL_PART]:
        return None
    if len(parsed.all_mailboxes) != 1:
        return None
    mailbox = parsed.all_mailboxes[0]
    if not mailbox.domain or not mailbox.local_part:
        return None
    return mailbox.display_name or "", mailbox.local_part, mailbox.domain


@functools.lru_cache(maxsize=256)
def mailbox_parse_cached(value: str, *, field: str) -> Mailbox:
    """``mailbox_parse`` for the few addresses that come back on every message (a club's
    From, a server's sender), parsed once per process. It is a pure function of the text:
    a changed address is parsed anew, and an invalid one raises every time (nothing is
    cached when it raises)."""
    return mailbox_parse(value, field=field)


@dataclass(frozen=True)
class ServerOption:
    """What routing needs to know about one server, as plain values."""

    id: int
    name: str
    sender_email: str
    sender_name: str = ""
    reply_to: str = ""
    # From the parsed ``from_filter``: normalised addresses and IDNA domains.
    filter_addresses: frozenset[str] = frozenset()
    filter_domains: frozenset[str] = frozenset()
    is_default: bool = False
    is_active: bool = True


@dataclass(frozen=True)
class Route:
    """The decision for one message."""

    server_id: int
    from_header: str
    envelope_from: str
    reply_to: tuple[str, ...]
    from_rewritten: bool
    reason: str


def _first_preferring_default(servers: list[ServerOption]) -> ServerOption | None:
    # Two servers claiming one sender is a configuration slip; the default one, else the
    # first by the caller's order, keeps the choice stable instead of arbitrary.
    if not servers:
        return None
    return next((server for server in servers if server.is_default), servers[0])


def server_choose(
    *, sender: Mailbox | None, servers: Sequence[ServerOption]
) -> tuple[ServerOption, str]:
    """The server for ``sender`` and how it matched: ``"address"``, ``"domain"`` or ``"default"``.

    Raises ``NoServerAvailable`` when no active server matches and there is no active default.
    """
    active = [server for server in servers if server.is_active]
    if sender is not None:
        by_address = _first_preferring_default(
            [server for server in active if sender.normalized in server.filter_addresses]
        )
        if by_address is not None:
            return by_address, "address"
        by_domain = _first_preferring_default(
            [server for server in active if sender.domain in server.filter_domains]
        )
        if by_domain is not None:
            return by_domain, "domain"
    default = next((server for server in active if server.is_default), None)
    if default is None:
        from_text = sender.header if sender is not None else ""
        raise NoServerAvailable(
            _(
                "No active SMTP server can send mail from “%(sender)s”: no server's filter "
                "matches it and there is no active default server."
            )
            % {"sender": from_text},
            from_email=from_text,
        )
    return default, "default"


def _server_from_header(server: ServerOption) -> str:
    return str(Address(display_name=server.sender_name, addr_spec=server.sender_email))


def route_decide(
    *, sender: Mailbox | None, reply_to: Sequence[str], servers: Sequence[ServerOption]
) -> Route:
    """Choose the server, the From, the Reply-To and the envelope sender of one message."""
    server, matched = server_choose(sender=sender, servers=servers)
    server_sender = mailbox_parse_cached(server.sender_email, field="sender")
    is_server_address = sender is not None and sender.normalized == server_sender.normalized
    rewrite = matched == "default" and not is_server_address

    if matched == "address":
        reason = _("matched address %(address)s on server %(server)s") % {
            "address": sender.normalized,
            "server": server.name,
        }
    elif matched == "domain":
        reason = _("matched domain %(domain)s on server %(server)s") % {
            "domain": sender.domain,
            "server": server.name,
        }
    elif sender is None:
        reason = _("no sender; default server %(server)s") % {"server": server.name}
    else:
        reason = _("no filter matched; default server %(server)s") % {"server": server.name}

    if rewrite:
        from_header = _server_from_header(server)
        envelope_from = server_sender.envelope
        reason += _("; From rewritten to %(sender)s") % {"sender": from_header}
    else:
        from_header = sender.header
        envelope_from = sender.envelope
        if matched == "default":
            reason += _("; From is the server's own sender address")

    new_reply_to = tuple(reply_to)
    if not new_reply_to and rewrite and sender is not None:
        new_reply_to = (sender.header,)
        reason += _("; original sender moved to Reply-To")
    if not new_reply_to and server.reply_to:
        new_reply_to = (server.reply_to,)
        reason += _("; Reply-To set to the server's %(address)s") % {"address": server.reply_to}

    return Route(
        server_id=server.id,
        from_header=from_header,
        envelope_from=envelope_from,
        reply_to=new_reply_to,
        from_rewritten=rewrite,
        reason=reason,
    )
