"""Queued messages with real MIME bytes, written as the routing backend records them."""

import email.policy
import itertools

from django.core.mail import EmailMessage
from django.core.mail.utils import DNS_NAME
from django.utils.crypto import get_random_string

from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient

_numbers = itertools.count(1)

# Stored bytes whose lines start with dots: SMTP doubles a leading dot on the wire and the
# server undoes it, so what arrives must be these bytes exactly.
DOTTED_RAW = (
    b"From: office@club.example\r\nTo: member@members.example\r\nSubject: Dots\r\n\r\n"
    b"First line\r\n.A line that starts with a dot\r\n..and one with two\r\nLast line\r\n"
)


def queued_message(
    *,
    server,
    to=("member@members.example",),
    cc=(),
    bcc=(),
    subject=None,
    from_email="office@club.example",
    status=OutgoingMessage.Status.QUEUED,
    created_at=None,
) -> OutgoingMessage:
    """One recorded message for ``server`` with one pending ``Recipient`` row per address."""
    number = next(_numbers)
    subject = subject or f"Newsletter {number}"
    message_id = f"<{get_random_string(16)}.{number}@{DNS_NAME}>"
    mime = EmailMessage(
        subject=subject,
        body=f"Body of message {number}\n",
        from_email=from_email,
        to=list(to),
        cc=list(cc),
        headers={"Message-ID": message_id},
    ).message(policy=email.policy.SMTP)
    message = OutgoingMessage.objects.create(
        server=server,
        status=status,
        message_id=message_id,
        from_email=from_email,
        envelope_from=from_email,
        subject=subject,
        raw=mime.as_bytes(),
        route_reason="test factory",
    )
    if created_at is not None:
        OutgoingMessage.objects.filter(pk=message.pk).update(created_at=created_at)
        message.created_at = created_at
    rows = [
        Recipient(message=message, email=address, kind=kind)
        for kind, addresses in (
            (Recipient.Kind.TO, to),
            (Recipient.Kind.CC, cc),
            (Recipient.Kind.BCC, bcc),
        )
        for address in addresses
    ]
    Recipient.objects.bulk_create(rows)
    MessageEvent.objects.create(message=message, kind=MessageEvent.Kind.RECORDED)
    return message


def queued_messages(*, server, count: int, **fields) -> list[OutgoingMessage]:
    return [
        queued_message(server=server, to=(f"member{index}@members.example",), **fields)
        for index in range(count)
    ]
