"""``wire_bytes`` gives the bytes of Django's ``message()`` under the SMTP policy, whichever
way it takes: written directly for a plain message, by the standard library for the rest."""

import email
import email.policy
import re

import pytest
from django.core.mail import EmailAlternative, EmailMessage, EmailMultiAlternatives
from django.test import override_settings
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from smtpconfig.wire import WIRE_POLICY, _plain_bytes, wire_bytes

# The two serialisations may fall on either side of a second; multipart boundaries are
# random.
DATE = re.compile(rb"^Date: [^\r]*\r\n", re.MULTILINE)
BOUNDARY = re.compile(rb"={15}\d+==")
MESSAGE_ID = {"Message-ID": "<20261127.1@club.example>"}
BODY = ("Bonjour, la saison reprend samedi. " * 40)[:1024]


def standard(message: EmailMessage) -> bytes:
    return message.message(policy=WIRE_POLICY).as_bytes()


def assert_same_bytes(message: EmailMessage) -> None:
    try:
        expected = standard(message)
    except Exception as error:  # Whatever the standard library raises, the same type.
        with pytest.raises(type(error)):
            wire_bytes(message)
        return
    assert comparable(wire_bytes(message)) == comparable(expected)


def comparable(raw: bytes) -> bytes:
    return BOUNDARY.sub(b"=", DATE.sub(b"", raw))


def booking(**fields) -> EmailMessage:
    values = {
        "subject": "Booking confirmation 1",
        "body": BODY,
        "from_email": "Club <office@club.example>",
        "to": ["member1@members.example"],
        "headers": dict(MESSAGE_ID),
    }
    return EmailMessage(**(values | fields))


words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
plain_text = st.lists(words, max_size=12).map(" ".join)
# Beside plain text: non-ASCII, encoded words, runs of spaces, tabs, long values.
any_text = st.one_of(
    plain_text,
    st.text(max_size=40).filter(lambda text: "\r" not in text and "\n" not in text),
    st.sampled_from(["=?utf-8?q?caf=C3=A9?=", "a  b", " lead", "trail ", "a\tb", "x" * 90]),
)
atom = st.text("abcXYZ09!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
label = st.text("abcXYZ09-", min_size=1, max_size=8)
addr_spec = st.builds(
    "{}@{}.example".format, st.lists(atom, min_size=1, max_size=2).map(".".join), label
)
address = st.one_of(
    addr_spec,
    st.builds("{} <{}>".format, st.lists(atom, min_size=1, max_size=3).map(" ".join), addr_spec),
    st.sampled_from(
        [
            '"Smith, John" <john@golf.example>',
            "Jörg <jorg@golf.example>",
            "anna@müller.example",
            "Anna  Berg <anna@golf.example>",
            "Anna (office) <anna@golf.example>",
            "<anna@golf.example>",
            "anna.@golf.example",
        ]
    ),
)
body_line = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=120),
    st.sampled_from([".", "From here", "a=b", "trailing space ", "tab\t", "x" * 200]),
)
body = st.lists(body_line, max_size=14).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda end: end.join(lines))
)
header_name = st.one_of(
    st.sampled_from(["X-Club", "List-Id", "X-Mailadmin-Original-Recipients", "Keywords"]),
    st.sampled_from(["Subject", "Date", "X Bad", "Reply-To", "Comments"]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=any_text,
    text=body,
    sender=address,
    to=st.lists(address, min_size=1, max_size=4),
    cc=st.lists(address, max_size=2),
    reply_to=st.lists(address, max_size=2),
    extra=st.dictionaries(header_name, any_text, max_size=3),
    subtype=st.sampled_from(["plain", "html"]),
    alternatives=st.lists(
        st.tuples(body, st.sampled_from(["text/html", "text/plain", "text/HTML", "image/png"])),
        max_size=2,
    ),
    message_id=st.one_of(
        st.just(MESSAGE_ID["Message-ID"]),
        addr_spec.map("<{}>".format),
        st.sampled_from(["<a=?b?=@club.example>", "<a@b>x", "a@club.example", "< a@b.example>"]),
    ),
)
@example(
    subject="",
    text="",
    sender="office@club.example",
    to=["a@golf.example"],
    cc=[],
    reply_to=[],
    extra={"X-Club": ""},
    subtype="plain",
    alternatives=[],
    message_id=MESSAGE_ID["Message-ID"],
)
def test_every_message_gets_the_standard_bytes(
    subject, text, sender, to, cc, reply_to, extra, subtype, alternatives, message_id
):
    message = EmailMultiAlternatives(
        subject,
        text,
        sender,
        to,
        cc=cc,
        reply_to=reply_to,
        headers=extra | {"Message-ID": message_id},
        alternatives=[EmailAlternative(*alternative) for alternative in alternatives],
    )
    message.content_subtype = subtype
    event("written directly" if _plain_bytes(message) is not None else "standard library")
    assert_same_bytes(message)


short_text = st.lists(words.map(lambda word: word[:6]), max_size=6).map(" ".join)
plain_address = st.one_of(
    st.builds("{}@{}.example".format, atom, label),
    st.builds("{} <{}@{}.example>".format, atom, atom, label),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=short_text.filter(lambda text: "=?" not in text),
    text=body,
    sender=plain_address,
    to=st.lists(plain_address, min_size=1, max_size=2),
    reply_to=st.lists(plain_address, max_size=1),
    extra=st.dictionaries(st.sampled_from(["X-Club", "List-Id"]), short_text, max_size=2),
    html=st.lists(body.filter(bool), max_size=2),
)
def test_plain_messages_are_written_directly_with_the_standard_bytes(
    subject, text, sender, to, reply_to, extra, html
):
    message = EmailMultiAlternatives(
        subject, text or "Text", sender, to, reply_to=reply_to, headers=extra | MESSAGE_ID
    )
    for content in html:
        message.attach_alternative(content, "text/html")
    written = _plain_bytes(message) is not None
    event("written directly" if written else "standard library")
    assert_same_bytes(message)


@pytest.mark.parametrize(
    "text",
    [
        BODY,  # one long ASCII line: quoted-printable
        "é" * 100,  # one long line of mostly 8-bit bytes: base64
        ("é" * 100 + "\n") * 20,  # more than ten lines, base64
        ("a" * 100 + "\n") * 20,  # more than ten lines, quoted-printable
        "Été\nà bientôt\n",  # short lines: 8bit
        "Bonjour\n\n",  # short ASCII lines: 7bit
        "",
    ],
    ids=["qp", "base64", "base64-long", "qp-long", "8bit", "7bit", "empty"],
)
def test_a_plain_message_is_written_directly_with_the_standard_bytes(text):
    message = booking(body=text, cc=["Anna Berg <anna@golf.example>"], reply_to=["r@club.example"])
    assert _plain_bytes(message) is not None
    assert_same_bytes(message)


@override_settings(EMAIL_USE_LOCALTIME=True, TIME_ZONE="Europe/Paris")
def test_the_date_follows_django_in_local_time():
    message = booking()
    assert _plain_bytes(message) is not None
    assert_same_bytes(message)
    assert re.search(rb"^Date: .* \+0[12]00\r$", wire_bytes(message), re.MULTILINE)


def with_alternative(body: str, content, mimetype: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        "Saison", body, "office@club.example", ["m@golf.example"], headers=dict(MESSAGE_ID)
    )
    message.alternatives = [EmailAlternative(content, mimetype)]
    return message


def test_a_body_and_its_alternatives_are_written_directly_as_one_multipart():
    message = with_alternative("Texte\n", "<p>Été</p>\n" * 30, "text/html")
    message.attach_alternative("Texte enrichi", "text/enriched")
    assert _plain_bytes(message) is not None
    assert_same_bytes(message)
    # One boundary throughout, and the parts read back as they were given.
    parsed = email.message_from_bytes(wire_bytes(message), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [(part.get_content_type(), part.get_content()) for part in parsed.iter_parts()]
    assert [(kind, text.replace("\r\n", "\n")) for kind, text in parts] == [
        ("text/plain", "Texte\n"),
        ("text/html", "<p>Été</p>\n" * 30),
        ("text/enriched", "Texte enrichi\n"),
    ]


def test_the_boundary_is_one_no_part_contains(monkeypatch):
    taken = "=" * 15 + "1" * 19 + "=="
    tokens = iter([int("1" * 19), 7])
    monkeypatch.setattr("smtpconfig.wire.random.randrange", lambda _limit: next(tokens))
    message = with_alternative(f"--{taken}\n", "<p>x</p>", "text/html")
    assert f'boundary="{"=" * 15}{7:019d}=="'.encode() in wire_bytes(message)


def standard_only_messages():
    attached = booking()
    attached.attach("notes.txt", "ligne 1\n", "text/plain")
    latin = booking()
    latin.encoding = "iso-8859-1"

    class Custom(EmailMessage):
        pass

    custom = Custom("Booking", "Body", "office@club.example", ["m@golf.example"])
    custom.extra_headers.update(MESSAGE_ID)
    return {
        "no Message-ID": booking(headers={}),
        "an alternative without a body": with_alternative("", "<p>Été</p>", "text/html"),
        "an alternative of bytes": with_alternative("Texte", b"<p>x</p>", "text/html"),
        "an alternative not text": with_alternative("Texte", b"\x89PNG", "image/png"),
        "attachment": attached,
        "another charset": latin,
        "a subclass": custom,
        "a Date of the caller's": booking(headers=MESSAGE_ID | {"Date": "Fri, 27 Nov 2026"}),
        "a To of the caller's": booking(headers=MESSAGE_ID | {"To": "x@golf.example"}),
        "a long subject": booking(subject="Season " * 12),
        "a non-ASCII name": booking(from_email="Jörg <office@club.example>"),
        "two recipients quoted": booking(to=['"Berg, Anna" <anna@golf.example>']),
    }


@pytest.mark.parametrize("name", list(standard_only_messages()))
def test_any_other_message_is_left_to_the_standard_library(name):
    message = standard_only_messages()[name]
    assert _plain_bytes(message) is None
    if name == "no Message-ID":
        # Django makes one of this host's name and the time: compare the rest.
        message_id = re.compile(rb"^Message-ID: [^\r]*\r\n", re.MULTILINE)
        assert message_id.sub(b"", DATE.sub(b"", wire_bytes(message))) == message_id.sub(
            b"", DATE.sub(b"", standard(message))
        )
    else:
        assert_same_bytes(message)


def test_a_header_the_standard_library_refuses_is_refused_the_same_way():
    message = booking(headers=MESSAGE_ID | {"Subject": "Twice"})
    with pytest.raises(ValueError, match="at most 1 Subject"):
        wire_bytes(message)
