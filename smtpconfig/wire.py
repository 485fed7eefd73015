"""A Django ``EmailMessage`` as the bytes that go on the wire.

The bytes are those of Django's ``message()`` under the standard SMTP policy. Most of the
time that takes goes into the standard library parsing every header into a tree and folding
it back; a plain message (text parts only, a body and its alternatives, with headers of plain
ASCII that fit on their line) gives back exactly the text it was given. ``wire_bytes`` writes
such a message directly and leaves every other one to the standard library; the tests hold
the two to the same bytes (but for the random multipart boundary).
"""

import binascii
import email.policy
import random
import re
import sys
from datetime import UTC, datetime
from email import quoprimime
from email.headerregistry import HeaderRegistry
from email.utils import format_datetime

from django.conf import settings
from django.core.mail import EmailAlternative, EmailMessage, EmailMultiAlternatives
from django.utils.timezone import get_current_timezone

from smtpconfig.selection import PLAIN_MAILBOX


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, making each kind of header's class once.

    The standard one makes a new class for every header it parses, which is about a third
    of serialising a small message; the classes it makes for one kind are all alike.
    """

    def __init__(self):
        super().__init__()
        self._made = {}

    def __getitem__(self, name):
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = super().__getitem__(name)
        return made


# SMTP line endings and header folding, as the bytes go on the wire.
WIRE_POLICY = email.policy.SMTP.clone(header_factory=_HeaderClasses())

_MAX_LINE = WIRE_POLICY.max_line_length
_CRLF = b"\r\n"
# Words of printable ASCII, one space apart: the standard library's tree of such a value
# prints as the value itself. "=?" would be read as an encoded word, so no value holding it
# is plain.
_PLAIN_TEXT = re.compile(r"(?!.*=\?)(?:[!-~]+(?: [!-~]+)*)?")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_PLAIN_SUBTYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
# Headers the standard library gives a class of its own (parsed, checked, counted): a caller's
# value for any of them goes through it. Message-ID is one, checked here by its own pattern.
_STRUCTURED = frozenset(HeaderRegistry().registry) - {"message-id"}


def wire_bytes(message: EmailMessage) -> bytes:
    """What ``message.message(policy=WIRE_POLICY).as_bytes()`` gives, byte for byte.

    Raises ``ValueError`` where the standard library does (a header it refuses).
    """
    written = _plain_bytes(message)
    if written is not None:
        return written
    return message.message(policy=WIRE_POLICY).as_bytes()


def _text_parts(message: EmailMessage) -> list[tuple[str, str]] | None:
    """(subtype, text) of the body and of each alternative, for a message of text parts
    only; ``None`` for any other message."""
    if type(message) not in (EmailMessage, EmailMultiAlternatives) or message.attachments:
        return None
    if (message.encoding or settings.DEFAULT_CHARSET) != "utf-8":
        return None
    alternatives = getattr(message, "alternatives", None) or []
    # Without a body Django's multipart lacks its MIME-Version: a case of its own, left to it.
    if not isinstance(message.body, str) or (alternatives and not message.body):
        return None
    parts = [(message.content_subtype, message.body)]
    for alternative in alternatives:
        if not isinstance(alternative, EmailAlternative) or not isinstance(
            alternative.content, str
        ):
            return None
        maintype, _slash, subtype = str(alternative.mimetype).partition("/")
        if maintype != "text":
            return None
        parts.append((subtype, alternative.content))
    if not all(
        isinstance(subtype, str) and _PLAIN_SUBTYPE.fullmatch(subtype) for subtype, _text in parts
    ):
        return None
    return parts


def _plain_bytes(message: EmailMessage) -> bytes | None:
    """The bytes of a message of text parts whose headers need neither parsing nor folding;
    ``None`` for any other message."""
    parts = _text_parts(message)
    if parts is None:
        return None
    extra = message.extra_headers
    names = [name.lower() for name in extra if isinstance(name, str)]
    if len(set(names)) != len(extra) or _STRUCTURED.intersection(names):
        return None
    if "message-id" not in names:
        return None  # Django would make one with this host's name; the caller always sets it.

    lines = []

    def add(name: str, value: str) -> bool:
        if len(name) + 2 + len(value) > _MAX_LINE or not _PLAIN_TEXT.fullmatch(value):
            return False
        lines.append(f"{name}: {value}" if value else f"{name}:")
        return True

    def add_addresses(name: str, values) -> bool:
        texts = [str(value) for value in values]
        if not texts:
            return True
        if not all(PLAIN_MAILBOX.fullmatch(text) for text in texts):
            return False
        return add(name, ", ".join(texts))

    if not add("Subject", str(message.subject)):
        return None
    if not add_addresses("From", [message.from_email]):
        return None
    for name, values in (("To", message.to), ("Cc", message.cc), ("Reply-To", message.reply_to)):
        if not add_addresses(name, values):
            return None
    tz = get_current_timezone() if settings.EMAIL_USE_LOCALTIME else UTC
    lines.append(f"Date: {format_datetime(datetime.now(tz))}")
    for name, value in extra.items():
        if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(name):
            return None
        if name.lower() == "message-id":
            # "<local@domain>", plain as an address is.
            plain = PLAIN_MAILBOX.fullmatch(value[1:-1]) if value[:1] + value[-1:] == "<>" else None
            if plain is None or plain["name"] or not add(name, value):
                return None
        elif not add(name, value):
            return None

    if len(parts) == 1:
        subtype, text = parts[0]
        transfer_encoding, encoded = _encoded_text(text)
        head = [*_part_head(subtype, transfer_encoding), "MIME-Version: 1.0", *lines]
        return "\r\n".join(head).encode("ascii") + _CRLF + _CRLF + encoded
    # The first part is the message's own content moved into the multipart; each
    # alternative is a message part of its own, with its own MIME-Version.
    bodies = []
    for number, (subtype, text) in enumerate(parts):
        transfer_encoding, encoded = _encoded_text(text)
        part_head = _part_head(subtype, transfer_encoding)
        part_head += ["MIME-Version: 1.0"] if number else []
        bodies.append("\r\n".join(part_head).encode("ascii") + _CRLF + _CRLF + encoded)
    boundary = _boundary(bodies)
    head = [
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative;",
        f' boundary="{boundary}"',
        *lines,
    ]
    delimiter = f"--{boundary}".encode("ascii")
    return (
        "\r\n".join(head).encode("ascii")
        + _CRLF
        + _CRLF
        + delimiter
        + _CRLF
        + (_CRLF + delimiter + _CRLF).join(bodies)
        + _CRLF
        + delimiter
        + b"--"
        + _CRLF
    )


def _part_head(subtype: str, transfer_encoding: str) -> list[str]:
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        f"Content-Transfer-Encoding: {transfer_encoding}",
    ]


def _boundary(bodies: list[bytes]) -> str:
    """A random boundary of the standard library's form (``email.generator``) that no part
    contains."""
    digits = len(repr(sys.maxsize - 1))
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{digits}d}" + "=="
        if not any(boundary.encode("ascii") in body for body in bodies):
            return boundary


def _encoded_text(text: str) -> tuple[str, bytes]:
    """The body as ``set_content(text, charset="utf-8")`` encodes it under the SMTP policy
    (``email.contentmanager``): 7bit or 8bit when every line fits, else the shorter of
    quoted-printable and base64 judged on the first ten lines; with CRLF line ends."""
    lines = text.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) <= _MAX_LINE:
        return ("7bit" if text.isascii() else "8bit"), _CRLF.join(lines) + _CRLF
    sniff = _CRLF.join(lines[:10]) + _CRLF
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), _MAX_LINE)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        per_line = _MAX_LINE // 4 * 3
        data = _CRLF.join(lines) + _CRLF
        encoded = b"".join(
            binascii.b2a_base64(data[at : at + per_line]) for at in range(0, len(data), per_line)
        )
        return "base64", encoded.replace(b"\n", _CRLF)
    if len(lines) <= 10:
        encoded = sniff_qp
    else:
        encoded = quoprimime.body_encode(b"\n".join(lines).decode("latin-1") + "\n", _MAX_LINE)
    return "quoted-printable", encoded.replace("\n", "\r\n").encode("ascii")
