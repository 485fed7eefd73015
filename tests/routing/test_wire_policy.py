"""The recorded bytes are those of the standard SMTP policy; only its header classes are
made once instead of per header."""

import email.policy
import re

import pytest
from django.core.mail import EmailAlternative, EmailMessage

from smtpconfig.wire import WIRE_POLICY

BOUNDARY = re.compile(rb"={15}\d+==")
FIXED = {"Date": "Fri, 27 Nov 2026 08:00:00 +0000", "Message-ID": "<fixed@club.example>"}


def messages():
    plain = EmailMessage("Booking", "Body\n", "office@club.example", ["member@golf.example"])
    html = EmailMessage(
        "Saison 2027 : réouverture du parcours, inscriptions et tarifs pour les membres",
        "Texte",
        '"Jörg Müller, Sekretariat" <jörg@müller.example>',
        ["Ånna <anna@golf.example>", "b@golf.example"],
        cc=["c@golf.example"],
        reply_to=["Reply <reply@club.example>"],
        headers={"List-Unsubscribe": "<https://club.example/u/" + "x" * 120 + ">", "X-Club": "1"},
    )
    html.alternatives = [EmailAlternative("<p>Été</p>", "text/html")]
    attached = EmailMessage(
        "Facture", "Voir pièce jointe", "office@club.example", ["m@golf.example"]
    )
    attached.attach("facture.pdf", b"%PDF-1.4 " + bytes(range(256)) * 8, "application/pdf")
    attached.attach("notes.txt", "ligne 1\nligne 2 — é\n", "text/plain")
    return [plain, html, attached]


@pytest.mark.parametrize("message", messages(), ids=["plain", "html", "attachments"])
def test_bytes_are_those_of_the_standard_smtp_policy(message):
    message.extra_headers.update(FIXED)
    wire = message.message(policy=WIRE_POLICY).as_bytes()
    standard = message.message(policy=email.policy.SMTP).as_bytes()
    # Multipart boundaries are random on every serialisation.
    assert BOUNDARY.sub(b"=", wire) == BOUNDARY.sub(b"=", standard)
    assert b"\r\n" in wire and b"\n" not in wire.replace(b"\r\n", b"")


def test_each_kind_of_header_gets_one_class_however_many_names():
    registry = WIRE_POLICY.header_factory
    for number in range(200):
        registry(f"X-Custom-{number}", "value")
        registry("To", "a@golf.example")
    unstructured = registry["X-Anything"]
    assert registry["X-Other"] is unstructured
    assert registry["to"] is registry["To"] is not unstructured
    assert len(registry._made) <= len(registry.registry) + 1
