"""Feedback from the e-mail services: anymail's tracking events, recorded once each.

anymail's webhook views (``/anymail/<service>/tracking/``) check the basic-auth secret and the
service's signature, normalise the payload and send its ``tracking`` signal; connecting a
receiver to it is anymail's documented integration (done in ``SmtpConfigConfig.ready``). The
receiver only calls ``provider_event_record``, where the work is done:

- each event is stored once (``ProviderEvent``, unique per service and event id), so a
  service re-posting an event changes nothing the second time;
- a hard bounce, a spam complaint or an unsubscribe lists the address on the blacklist, with
  that reason and the event as the source;
- delivered, bounced and deferred events update the recipient's status in the history;
- an event for a message Mailadmin does not know is logged, not an error (the service
  account may also be used by other senders).
"""

import hashlib
import logging

from anymail.signals import EventType, RejectReason
from django.conf import settings
from django.core.checks import Warning as CheckWarning
from django.core.checks import register
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.text import Truncator

from blacklist.models import BlacklistEntry
from blacklist.services import blacklist_add
from smtpconfig.limits import envelope_address
from smtpconfig.models import OutgoingMessage, ProviderEvent, Recipient

logger = logging.getLogger(__name__)

# SparkPost bounce classes meaning the address does not exist (10: invalid recipient,
# 30: no such recipient); the others are full mailboxes, blocks and transient failures.
_SPARKPOST_HARD_CLASSES = {"10", "30"}

_BLACKLIST_REASONS = {
    EventType.COMPLAINED: BlacklistEntry.Reason.COMPLAINT,
    EventType.UNSUBSCRIBED: BlacklistEntry.Reason.UNSUBSCRIBE,
}
# A service refusing to send because the address is on its own suppression list.
_REJECT_REASON_BLACKLIST = {
    RejectReason.BOUNCED: BlacklistEntry.Reason.BOUNCE,
    RejectReason.SPAM: BlacklistEntry.Reason.COMPLAINT,
    RejectReason.UNSUBSCRIBED: BlacklistEntry.Reason.UNSUBSCRIBE,
}
# Services whose one notification becomes one anymail event per recipient, all with the
# notification's id: an Amazon SES bounce or delivery naming several recipients comes as one
# SNS message, and only its MessageId is given as the event id.
_NOTIFICATION_EVENT_IDS = {"Amazon SES"}
# Services whose events do not say which recipient they are about: anymail names the
# message's first "To" address (Resend sends one event per recipient, Cc and Bcc included).
_RECIPIENT_UNNAMED = {"Resend"}
# Statuses an event may change; suppressed and redirected rows tell how Mailadmin routed
# the recipient and stay as they are.
_UPDATABLE = [
    Recipient.Status.PENDING,
    Recipient.Status.SENT,
    Recipient.Status.DEFERRED,
    Recipient.Status.REFUSED,
]


def _is_hard_bounce(event) -> bool:
    """Whether a "bounced" event means the address is dead, not a full or busy mailbox.

    Several services report soft bounces as "bounced" too; their raw payload tells which.
    """
    if event.event_type != EventType.BOUNCED:
        return False
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if "Type" in raw or "SuppressionReason" in raw:  # Postmark
        return raw.get("Type", raw.get("SuppressionReason")) == "HardBounce"
    if raw.get("event") in ("hard_bounce", "soft_bounce"):  # Brevo
        return raw["event"] == "hard_bounce"
    if raw.get("event") == "bounce" and "hard_bounce" in raw:  # Mailjet
        return bool(raw["hard_bounce"])
    if isinstance(raw.get("bounce"), dict) and "bounceType" in raw["bounce"]:  # Amazon SES
        return raw["bounce"]["bounceType"] == "Permanent"
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    if isinstance(data.get("bounce"), dict) and "type" in data["bounce"]:  # Resend
        return data["bounce"]["type"] == "Permanent"
    if isinstance(raw.get("msys"), dict):  # SparkPost
        details = next(iter(raw["msys"].values()), {})
        return details.get("bounce_class") in _SPARKPOST_HARD_CLASSES
    # Mailgun and the others report temporary failures as "deferred" already.
    return event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID, None)


def provider_event_blacklist_reason(event) -> str | None:
    """The blacklist reason an event calls for, or ``None``."""
    if _is_hard_bounce(event):
        return BlacklistEntry.Reason.BOUNCE
    if event.event_type in _BLACKLIST_REASONS:
        return _BLACKLIST_REASONS[event.event_type]
    if event.event_type == EventType.REJECTED:
        return _REJECT_REASON_BLACKLIST.get(event.reject_reason)
    return None


def _event_id(*, provider: str, event) -> str:
    """The service's event id, with the recipient where one notification covers several;
    a digest of the event's facts when the service gives no id."""
    if event.event_id:
        if provider in _NOTIFICATION_EVENT_IDS:
            return f"{event.event_id}:{(event.recipient or '').lower()}"[:255]
        return str(event.event_id)[:255]
    facts = "|".join(
        str(value or "")
        for value in (
            provider,
            event.event_type,
            event.message_id,
            event.recipient,
            event.timestamp.isoformat() if event.timestamp else "",
            event.description,
        )
    )
    return "sha256:" + hashlib.sha256(facts.encode()).hexdigest()


def messages_named(provider_message_id: str) -> QuerySet[OutgoingMessage]:
    """The messages a service's id names, newest first, read through the ids' index: a few
    page reads, however long the history."""
    # An id in angle brackets also matches bare, and the other way round: Brevo's API answers
    # "<…@smtp-relay.mailin.fr>" and its webhook documentation shows the same id without them.
    bare = provider_message_id.removeprefix("<").removesuffix(">")
    forms = {provider_message_id, bare, f"<{bare}>"}
    return OutgoingMessage.objects.filter(provider_ids__value__in=forms).order_by("-id")


def _message_for(provider_message_id: str) -> OutgoingMessage | None:
    if not provider_message_id:
        return None
    return messages_named(provider_message_id).first()


def _recipient_update(*, message: OutgoingMessage, address: str, event, reply: str) -> int:
    rows = message.recipients.filter(
        Q(email__iexact=address) | Q(delivered_to__iexact=address), status__in=_UPDATABLE
    )
    if event.event_type == EventType.DELIVERED:
        return rows.update(status=Recipient.Status.SENT, reply=reply)
    if event.event_type in (EventType.BOUNCED, EventType.REJECTED):
        return rows.update(status=Recipient.Status.REFUSED, reply=reply)
    if event.event_type == EventType.DEFERRED:
        # A late "deferred" must not undo a delivery or a bounce already reported.
        settled = ProviderEvent.objects.filter(
            message=message,
            recipient__iexact=address,
            event_type__in=[EventType.DELIVERED, EventType.BOUNCED, EventType.REJECTED],
        )
        if settled.exists():
            return 0
        return rows.update(status=Recipient.Status.DEFERRED, reply=reply)
    return 0


def _event_address(*, provider: str, event, message: OutgoingMessage | None) -> str:
    """The address ``event`` is about; empty when the service leaves it open.

    An event of a service that names no recipient is about the address anymail reports only
    when the message went to that address alone. Otherwise refusing or blacklisting it
    could hit another member than the one who bounced: the event changes no recipient.
    """
    address = (event.recipient or "").strip()
    if provider not in _RECIPIENT_UNNAMED or not address:
        return address
    if message is None:
        # A message Mailadmin did not record: its Cc and Bcc are unknown.
        return ""
    given = message.recipients.exclude(status=Recipient.Status.SUPPRESSED)
    return address if {envelope_address(row).lower() for row in given} == {address.lower()} else ""


def provider_event_record(*, provider: str, event) -> ProviderEvent | None:
    """Record one anymail tracking ``event`` from ``provider`` and act on it, once.

    Returns the stored event, or ``None`` when it was already recorded (nothing changes).
    """
    event_id = _event_id(provider=provider, event=event)
    provider_message_id = str(event.message_id or "")[:255]
    description = " — ".join(text for text in (event.description, event.mta_response) if text)
    message = _message_for(provider_message_id)
    if message is None:
        logger.info(
            "%s %s event %s for unknown message id %r",
            provider,
            event.event_type,
            event_id,
            provider_message_id,
        )
    address = _event_address(provider=provider, event=event, message=message)
    if event.recipient and not address:
        logger.info(
            "%s %s event %s does not say which recipient of message id %r it is about: "
            "no recipient changed",
            provider,
            event.event_type,
            event_id,
            provider_message_id,
        )
    try:
        with transaction.atomic():
            stored = ProviderEvent.objects.create(
                provider=provider[:30],
                event_id=event_id,
                event_type=str(event.event_type)[:30],
                provider_message_id=provider_message_id,
                recipient=address[:320],
                message=message,
                description=description,
            )
            if message is not None and address:
                _recipient_update(message=message, address=address, event=event, reply=description)
            reason = provider_event_blacklist_reason(event)
            if reason is not None and address:
                _blacklist(
                    provider=provider,
                    event_id=event_id,
                    event=event,
                    address=address,
                    reason=reason,
                    description=description,
                )
    except IntegrityError:
        if ProviderEvent.objects.filter(provider=provider[:30], event_id=event_id).exists():
            logger.info("%s event %s already recorded", provider, event_id)
            return None
        raise
    return stored


def _blacklist(
    *, provider: str, event_id: str, event, address: str, reason: str, description: str
) -> None:
    try:
        blacklist_add(
            email=address,
            reason=reason,
            source=BlacklistEntry.Source.PROVIDER,
            source_detail=Truncator(f"{provider} {event.event_type} {event_id}").chars(255),
            note=Truncator(description).chars(1000),
        )
    except ValidationError:
        # The service reported an address Mailadmin cannot store; keep the event anyway.
        logger.warning("%s event %s: cannot blacklist %r", provider, event_id, address)


def provider_tracking_receiver(sender, event, esp_name, **kwargs):
    """anymail's ``tracking`` signal, sent after the webhook passed authentication."""
    provider_event_record(provider=esp_name, event=event)


@register()
def check_webhook_secret(app_configs, **kwargs):
    """Without a basic-auth secret anybody could post events and fill the blacklist."""
    if getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
        return []
    return [
        CheckWarning(
            "ANYMAIL['WEBHOOK_SECRET'] is not set: the e-mail services' tracking webhooks "
            "accept unauthenticated posts.",
            hint="Set ANYMAIL_WEBHOOK_SECRET to user:password and configure the same "
            "credentials in each service's webhook URL.",
            id="smtpconfig.W101",
        )
    ]
