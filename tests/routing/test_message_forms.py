"""Every form of message Django can send arrives as stored: the bytes are serialised once."""

from email.message import MIMEPart

import dkim
import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives, send_mail

from smtpconfig.dkim import dkim_key_generate, dkim_txt_record
from smtpconfig.models import OutgoingMessage

pytestmark = pytest.mark.django_db

# A 1x1 transparent GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def test_attachments_inline_image_non_ascii_subject_and_idn(servers, direct, club_sink):
    message = EmailMultiAlternatives(
        "Résultats du tournoi ⛳",
        "Bonjour Jörg",
        '"Club de Golf, Secrétariat" <info@club.example>',
        ["Jörg Müller <joerg@müller.example>"],
    )
    message.attach_alternative('<p>Bonjour <img src="cid:logo"></p>', "text/html")
    image = MIMEPart()
    image.set_content(
        PIXEL, "image", "gif", disposition="inline", filename="logo.gif", cid="<logo>"
    )
    message.attach(image)
    message.attach("résultats.csv", "nom;score\nJörg;72\n", "text/csv")
    assert message.send() == 1

    (received,) = club_sink.received
    assert received.rcpt_tos == ["joerg@xn--mller-kva.example"]
    parsed = received.message
    assert parsed["Subject"] == "Résultats du tournoi ⛳"
    assert parsed["To"].addresses[0].display_name == "Jörg Müller"
    assert parsed["To"].addresses[0].domain == "xn--mller-kva.example"
    parts = {part.get_filename(): part for part in parsed.iter_attachments()}
    # Text travels with CRLF line ends, as SMTP requires.
    assert parts["résultats.csv"].get_content().splitlines() == ["nom;score", "Jörg;72"]
    assert parts["logo.gif"].get_content() == PIXEL
    assert parsed.get_body(("html",)).get_content().startswith("<p>Bonjour")

    stored = OutgoingMessage.objects.get()
    assert bytes(stored.raw) == received.content
    assert stored.subject == "Résultats du tournoi ⛳"
    assert stored.recipients.get().email == "joerg@xn--mller-kva.example"


def test_message_id_is_generated_once_or_kept(servers, direct, club_sink):
    send_mail("One", "Body", "info@club.example", ["a@golf.example"])
    mail.EmailMessage(
        "Two", "Body", "info@club.example", ["b@golf.example"], headers={"Message-ID": "<own@crm>"}
    ).send()
    generated, kept = OutgoingMessage.objects.order_by("pk")
    assert generated.message_id.endswith("@club.example>")
    assert club_sink.received[0].message["Message-ID"] == generated.message_id
    assert kept.message_id == "<own@crm>"
    assert club_sink.received[1].message["Message-ID"] == "<own@crm>"


def test_bcc_is_delivered_but_never_written_in_the_headers(servers, direct, club_sink):
    mail.EmailMessage(
        "Hi", "Body", "info@club.example", ["a@golf.example"], bcc=["hidden@golf.example"]
    ).send()
    (received,) = club_sink.received
    assert received.rcpt_tos == ["a@golf.example", "hidden@golf.example"]
    assert b"hidden@golf.example" not in received.content
    assert b"hidden" not in bytes(OutgoingMessage.objects.get().raw)


def test_one_connection_per_server_for_all_messages_of_a_call(
    servers, direct, club_sink, default_sink
):
    sessions = []

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sessions.append(hostname)
        session.host_name = hostname
        return responses

    club_sink.handler.handle_EHLO = handle_EHLO
    sent = mail.send_mass_mail(
        [("Hi", "Body", "info@club.example", [f"m{index}@golf.example"]) for index in range(4)]
        + [("Hi", "Body", "x@else.example", ["n@golf.example"])]
    )
    assert sent == 5
    assert len(club_sink.received) == 4 and len(default_sink.received) == 1
    assert len(sessions) == 1


def test_an_open_backend_keeps_its_connection_for_later_calls(servers, direct, club_sink):
    sessions = []

    async def handle_EHLO(server, session, envelope, hostname, responses):
        sessions.append(hostname)
        session.host_name = hostname
        return responses

    club_sink.handler.handle_EHLO = handle_EHLO
    with mail.mailers.default as backend:
        for index in range(3):
            backend.send_messages(
                [mail.EmailMessage("Hi", "Body", "info@club.example", [f"m{index}@golf.example"])]
            )
    assert len(club_sink.received) == 3
    assert len(sessions) == 1


def test_message_is_dkim_signed_once_with_the_from_domains_key(servers, direct, club_sink):
    key = dkim_key_generate(domain="club.example")
    name, value = dkim_txt_record(key=key)

    def dns(queried, timeout=5):
        return value.encode() if queried.decode().rstrip(".") == name else b""

    send_mail("Signed", "Body", "info@club.example", ["a@golf.example"])
    (received,) = club_sink.received
    assert received.content.startswith(b"DKIM-Signature:")
    assert dkim.verify(received.content, dnsfunc=dns)
    assert bytes(OutgoingMessage.objects.get().raw) == received.content


def test_message_from_a_domain_without_a_key_is_not_signed(servers, direct, club_sink):
    dkim_key_generate(domain="other.example")
    send_mail("Plain", "Body", "info@club.example", ["a@golf.example"])
    assert b"DKIM-Signature" not in club_sink.received[0].content


def test_test_mode_notice_is_in_the_html_part_too(servers, test_mode, club_sink):
    message = EmailMultiAlternatives("News", "", "info@club.example", ["a@golf.example"])
    message.attach_alternative("<html><body><p>Hello & welcome</p></body></html>", "text/html")
    message.send()
    html = club_sink.received[0].message.get_body(("html",)).get_content()
    notice_at = html.index("TEST MODE: this message was sent only to tester@club.example.")
    assert html.index("<body>") < notice_at < html.index("<p>Hello & welcome</p>")
    assert "a@golf.example" in html[notice_at:]
