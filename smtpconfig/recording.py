"""Turn Django ``EmailMessage`` objects into outbox records.

For each message, in the order of the product brief: route (server, From, Reply-To), drop
blacklisted recipients, redirect the rest to the test address in test mode, serialise the
bytes once (DKIM-signed when the From domain has a key), then record one ``OutgoingMessage``,
one ``Recipient`` per original address and a "recorded" ``MessageEvent`` telling what was
decided.

Planning (``message_plan``) reads but never writes, so a bad message or a missing server
raises before anything of the call is stored; recording (``messages_record``) writes all
messages of one call at once, all or none. On PostgreSQL a call of one message may be planned
without reading (``messages_plan_kept``): the statement that records it then reads what the
plan stands on, and writes nothing if that changed.
"""

import copy
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from email.utils import formataddr, getaddresses, make_msgid

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import EmailAlternative, EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from blacklist.models import BlacklistEntry
from blacklist.selectors import blacklist_lookup
from core.compiled import Read
from core.inserts import CompiledInsert
from smtpconfig.conf import mailadmin_setting
from smtpconfig.direct import direct_worker
from smtpconfig.dkim import dkim_sign
from smtpconfig.exceptions import ConfigurationError, InvalidMessage
from smtpconfig.models import (
    DkimKey,
    MailSettings,
    MessageEvent,
    OutgoingMessage,
    Recipient,
    SmtpServer,
)
from smtpconfig.selection import (
    Mailbox,
    Route,
    ServerOption,
    mailbox_parse,
    mailbox_parse_cached,
    route_decide,
)
from smtpconfig.selectors import RoutingConfig, routing_kept, routing_read
from smtpconfig.tasks import drain_soon, drain_waiting_check
from smtpconfig.wire import wire_bytes

TEST_SUBJECT_MARK = "[TEST]"
ORIGINAL_RECIPIENTS_HEADER = "X-Mailadmin-Original-Recipients"
# Headers the plan decides itself; a caller's value for them is taken into account first.
_DECIDED_HEADERS = {"from", "reply-to"}
_RECIPIENT_HEADERS = {"to", "cc"}

# A message carrying this attribute set to True goes to its real recipients although test
# mode is on: the portal sets it only after a user with the permission confirmed it.
BYPASS_TEST_MODE_ATTRIBUTE = "mailadmin_bypass_test_mode"
# The portal's user who composed a message, and the line of its story that says so: recorded
# with the message, in the same transaction, before anything is sent.
AUTHOR_ATTRIBUTE = "mailadmin_author"
AUTHOR_NOTE_ATTRIBUTE = "mailadmin_author_note"


@dataclass(frozen=True)
class RecipientPlan:
    email: str
    kind: str
    status: str
    delivered_to: str = ""
    blacklist_entry: BlacklistEntry | None = None


@dataclass
class MessagePlan:
    """Everything to record for one message, decided before anything is written."""

    server: SmtpServer
    route: Route
    raw: bytes
    message_id: str
    subject: str
    original_from: str
    test_mode: bool
    recipients: list[RecipientPlan] = field(default_factory=list)
    story: list[str] = field(default_factory=list)
    author: AbstractBaseUser | None = None

    @property
    def is_suppressed(self) -> bool:
        return all(r.status == Recipient.Status.SUPPRESSED for r in self.recipients)

    @property
    def author_id(self) -> int | None:
        return self.author.pk if self.author is not None else None


def _header(email_message: EmailMessage, name: str):
    for key, value in email_message.extra_headers.items():
        if key.lower() == name:
            return value
    return None


def _check_header_values(email_message: EmailMessage) -> None:
    """A line break in a header would let its value forge other headers: refuse it by name."""
    values = [("Subject", email_message.subject)]
    values += [(str(name), value) for name, value in email_message.extra_headers.items()]
    for name, value in values:
        if any(mark in name for mark in "\r\n:") or not name.strip():
            raise InvalidMessage(
                _("%(header)r is not a valid header name.") % {"header": name}, value=name
            )
        if isinstance(value, (int, float, Decimal, date, time)) and not (
            isinstance(value, datetime) and name.lower() == "date"
        ):
            # Python's email package fails on them with a TypeError or an AttributeError.
            raise InvalidMessage(
                _("The %(header)s header's value %(value)r is not text; give it as a string.")
                % {"header": name, "value": value},
                value=str(value),
            )
        text = str(value)
        if any(mark in text for mark in "\r\n"):
            raise InvalidMessage(
                _("The %(header)s header %(value)r contains a line break.")
                % {"header": name, "value": text},
                value=text,
            )


def _parse_list(values, *, field_name: str) -> list[Mailbox]:
    return [mailbox_parse(value, field=field_name) for value in values if value]


def _sender_of(email_message: EmailMessage) -> Mailbox | None:
    value = _header(email_message, "from")
    value = email_message.from_email if value is None else value
    if not str(value or "").strip():
        return None
    return mailbox_parse_cached(str(value), field="From")


def _reply_to_of(email_message: EmailMessage) -> list[str]:
    value = _header(email_message, "reply-to")
    if value is not None:
        # A header may list several addresses; display names may hold commas in quotes.
        pairs = getaddresses([str(value)])
        return [box.header for box in _parse_list(map(formataddr, pairs), field_name="Reply-To")]
    return [box.header for box in _parse_list(email_message.reply_to, field_name="Reply-To")]


def _test_notice(*, test_address: str, lines: list[str]) -> str:
    intro = _("TEST MODE: this message was sent only to %(address)s.") % {"address": test_address}
    outro = _("Outside test mode it would have gone to:")
    rule = "-" * 60
    return "\n".join([intro, outro, *lines, rule, "", ""])


def _original_recipient_lines(recipients: list[RecipientPlan]) -> list[str]:
    lines = []
    for kind, label in Recipient.Kind.choices:
        addresses = [
            r.email
            for r in recipients
            if r.kind == kind and r.status == Recipient.Status.REDIRECTED
        ]
        if addresses:
            lines.append(f"{label}: {', '.join(addresses)}")
    suppressed = [r.email for r in recipients if r.status == Recipient.Status.SUPPRESSED]
    if suppressed:
        lines.append(
            _("Blacklisted, not sent: %(addresses)s") % {"addresses": ", ".join(suppressed)}
        )
    return lines


_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def _with_html_notice(alternative: EmailAlternative, notice: str) -> EmailAlternative:
    if alternative.mimetype != "text/html" or not isinstance(alternative.content, str):
        return alternative
    block = format_html(
        '<pre style="border:2px solid #b45309;padding:8px;white-space:pre-wrap">{}</pre>',
        notice.strip(),
    )
    content = alternative.content
    body = _BODY_TAG.search(content)
    at = body.end() if body else 0
    return EmailAlternative(content[:at] + block + content[at:], alternative.mimetype)


def _serialise(
    *,
    email_message: EmailMessage,
    route: Route,
    kept: dict[str, list[Mailbox]],
    recipients_changed: bool,
    test_mode: bool,
    test_notice: str,
    original_recipients: str,
    dkim_keys: dict[str, DkimKey],
) -> tuple[bytes, str, str]:
    """The bytes to send, once and for all, with their Message-ID and Subject."""
    outgoing = copy.copy(email_message)
    outgoing.extra_headers = {
        name: value
        for name, value in email_message.extra_headers.items()
        if name.lower() not in _DECIDED_HEADERS
        and not (recipients_changed and name.lower() in _RECIPIENT_HEADERS)
    }
    outgoing.from_email = route.from_header
    outgoing.reply_to = list(route.reply_to)
    outgoing.to = [box.header for box in kept["to"]]
    outgoing.cc = [box.header for box in kept["cc"]]
    outgoing.bcc = [box.header for box in kept["bcc"]]
    subject = str(email_message.subject)
    if test_mode:
        if not subject.startswith(TEST_SUBJECT_MARK):
            subject = f"{TEST_SUBJECT_MARK} {subject}".rstrip()
        outgoing.extra_headers[ORIGINAL_RECIPIENTS_HEADER] = original_recipients
        if isinstance(email_message.body, str) and (
            email_message.body or not getattr(email_message, "alternatives", None)
        ):
            outgoing.body = test_notice + email_message.body
        # Most club mail is HTML, where a mail program shows no plain-text part: the tester
        # must see the notice there too.
        outgoing.alternatives = [
            _with_html_notice(alternative, test_notice)
            for alternative in getattr(email_message, "alternatives", [])
        ]
    outgoing.subject = subject
    message_id = _header(email_message, "message-id")
    if message_id is None:
        # The sender's own domain, not this host's name, which would leak into every
        # message and is often not a public name at all.
        message_id = make_msgid(domain=route.envelope_from.rpartition("@")[2])
        outgoing.extra_headers["Message-ID"] = message_id
    try:
        raw = wire_bytes(outgoing)
    except ValueError as error:
        raise InvalidMessage(
            _("The message cannot be serialised: %(error)s") % {"error": error},
            value=str(error),
        ) from error
    # Signed once with the From domain's key (if it has one), like everything else about
    # the bytes: every attempt sends the same signed message.
    # DMARC aligns the signature with the From header's domain, not the envelope's.
    from_domain = mailbox_parse_cached(route.from_header, field="From").domain
    raw = dkim_sign(raw=raw, from_domain=from_domain, keys=dkim_keys)
    return raw, str(message_id).strip(), subject


def _recipient_boxes(email_message: EmailMessage) -> dict[str, list[Mailbox]]:
    """The parsed To, Cc and Bcc of a message whose headers are sound; ``InvalidMessage``
    naming the value otherwise."""
    _check_header_values(email_message)
    return {
        "to": _parse_list(email_message.to, field_name="To"),
        "cc": _parse_list(email_message.cc, field_name="Cc"),
        "bcc": _parse_list(email_message.bcc, field_name="Bcc"),
    }


def message_plan(
    *,
    email_message: EmailMessage,
    boxes: dict[str, list[Mailbox]],
    blocked: dict[str, BlacklistEntry],
    mail_settings: MailSettings,
    servers: list[SmtpServer],
    options: list[ServerOption],
    dkim_keys: dict[str, DkimKey],
) -> MessagePlan | None:
    """Decide everything about one message, given its ``boxes`` (``_recipient_boxes``) and
    the blacklist entries ``blocked`` that block any of them (by normalised address);
    ``None`` when it has no recipient at all.

    Raises ``InvalidMessage`` (naming the value) or ``NoServerAvailable``; writes nothing.
    """
    if not any(boxes.values()):
        return None
    sender = _sender_of(email_message)
    route = route_decide(sender=sender, reply_to=_reply_to_of(email_message), servers=options)
    server = next(server for server in servers if server.pk == route.server_id)
    story = [_("Route: %(reason)s.") % {"reason": route.reason}]
    author_note = getattr(email_message, AUTHOR_NOTE_ATTRIBUTE, "")
    if author_note:
        story.insert(0, str(author_note))

    test_box = None
    if mail_settings.test_mode and getattr(email_message, BYPASS_TEST_MODE_ATTRIBUTE, False):
        story.append(_("Test mode is on; sent to the real recipients as confirmed by the sender."))
    elif mail_settings.test_mode:
        test_box = mailbox_parse(mail_settings.test_address, field=_("test address"))

    recipients: list[RecipientPlan] = []
    kept: dict[str, list[Mailbox]] = {"to": [], "cc": [], "bcc": []}
    for kind, kind_boxes in boxes.items():
        for box in kind_boxes:
            entry = blocked.get(box.normalized)
            if entry is not None:
                recipients.append(
                    RecipientPlan(box.envelope, kind, Recipient.Status.SUPPRESSED, "", entry)
                )
                story.append(
                    _("%(address)s suppressed: blacklisted as %(entry)s (%(reason)s).")
                    % {
                        "address": box.envelope,
                        "entry": entry.email,
                        "reason": entry.get_reason_display(),
                    }
                )
            elif test_box is not None:
                recipients.append(
                    RecipientPlan(
                        box.envelope, kind, Recipient.Status.REDIRECTED, test_box.envelope
                    )
                )
            else:
                kept[kind].append(box)
                recipients.append(
                    RecipientPlan(box.envelope, kind, Recipient.Status.PENDING, box.envelope)
                )

    redirected = [r for r in recipients if r.status == Recipient.Status.REDIRECTED]
    # Only a test message tells its original recipients.
    original_lines = _original_recipient_lines(recipients) if test_box is not None else []
    if redirected:
        kept["to"] = [test_box]
        story.append(
            _("Test mode: %(count)d recipient(s) redirected to %(address)s.")
            % {"count": len(redirected), "address": test_box.envelope}
        )
    if all(r.status == Recipient.Status.SUPPRESSED for r in recipients):
        story.append(_("No recipient left: the message is not sent."))

    raw, message_id, subject = _serialise(
        email_message=email_message,
        route=route,
        kept=kept,
        recipients_changed=test_box is not None
        or any(r.status == Recipient.Status.SUPPRESSED for r in recipients),
        test_mode=test_box is not None,
        test_notice=(
            _test_notice(test_address=test_box.envelope, lines=original_lines)
            if test_box is not None
            else ""
        ),
        original_recipients="; ".join(original_lines),
        dkim_keys=dkim_keys,
    )
    return MessagePlan(
        server=server,
        route=route,
        raw=raw,
        message_id=message_id,
        subject=subject,
        original_from=sender.header if sender is not None and route.from_rewritten else "",
        test_mode=test_box is not None,
        recipients=recipients,
        story=story,
        author=getattr(email_message, AUTHOR_ATTRIBUTE, None),
    )


_MESSAGE_ROWS = CompiledInsert(
    OutgoingMessage,
    [
        "server_id",
        "status",
        "message_id",
        "from_email",
        "original_from",
        "envelope_from",
        "subject",
        "raw",
        "route_reason",
        "test_mode",
        "claimed_by",
        "lease_expires_at",
        "created_by_id",
    ],
)
_RECIPIENT_ROWS = CompiledInsert(
    Recipient, ["message_id", "email", "kind", "status", "delivered_to", "blacklist_entry_id"]
)
_EVENT_ROWS = CompiledInsert(MessageEvent, ["message_id", "kind", "detail", "user_id"])


def messages_record(
    *,
    plans: list[MessagePlan],
    delivery: str,
    now: datetime | None = None,
    unless: Sequence[Read] = (),
) -> list[int] | None:
    """Write the planned messages, their recipients and events, all or none; the messages'
    ids, in the plans' order. With ``unless`` (``messages_plan_kept``), nothing is written,
    and ``None`` returned, where one of those reads finds a row as the rows are written.

    ``queue``: messages are ``queued`` and a drain is requested once they are committed.
    ``direct``: they are ``sending`` under a lease held by this process, so the queue
    leaves them alone while the caller sends them, and takes them over should this
    process die before recording the result.

    One message (a ``send_mail``) is one statement on PostgreSQL; several are one INSERT
    per table in one transaction, whatever their number (more only past the number of
    values the database takes in one statement). No model instance is made
    (``core.inserts``: ``CompiledInsert.insert_with``).
    """
    now = now or timezone.now()
    direct = delivery == MailSettings.Delivery.DIRECT
    lease_base = timedelta(seconds=mailadmin_setting("LEASE_SECONDS"))
    per_server = Counter(plan.server.pk for plan in plans)
    status_notes = {
        OutgoingMessage.Status.QUEUED: [_("Queued for delivery.")],
        OutgoingMessage.Status.SENDING: [_("Sending directly.")],
    }
    statuses, rows, recipient_rows, event_rows = [], [], [], []
    for plan in plans:
        claimed_by, lease_expires_at = "", None
        if plan.is_suppressed:
            status = OutgoingMessage.Status.SUPPRESSED
        elif direct:
            status = OutgoingMessage.Status.SENDING
            claimed_by = direct_worker()
            # Long enough for every message of this server in the call to time out once.
            lease_expires_at = (
                now
                + lease_base
                + timedelta(seconds=plan.server.timeout * per_server[plan.server.pk])
            )
        else:
            status = OutgoingMessage.Status.QUEUED
        statuses.append(status)
        rows.append(
            (
                plan.server.pk,
                status.value,
                plan.message_id,
                plan.route.from_header[:320],
                plan.original_from[:320],
                plan.route.envelope_from,
                plan.subject[:998],
                plan.raw,
                plan.route.reason,
                plan.test_mode,
                claimed_by,
                lease_expires_at,
                plan.author_id,
            )
        )
        # Each message's rows, its key (first) still to come.
        recipient_rows.append(
            [
                (
                    None,
                    r.email,
                    r.kind,
                    r.status.value,
                    r.delivered_to,
                    r.blacklist_entry.pk if r.blacklist_entry is not None else None,
                )
                for r in plan.recipients
            ]
        )
        event_rows.append(
            [
                (
                    None,
                    MessageEvent.Kind.RECORDED.value,
                    "\n".join([*plan.story, *status_notes.get(status, [])]),
                    plan.author_id,
                )
            ]
        )
    children = [(_RECIPIENT_ROWS, recipient_rows), (_EVENT_ROWS, event_rows)]
    queued = OutgoingMessage.Status.QUEUED in statuses
    # Once committed, a drain is asked for, so the pass finds them; one pass waiting in the
    # broker serves every message committed before a worker takes it (smtpconfig.wakeups).
    # Whether it still waits is read with the rows, after their commit, where it can be.
    check = drain_waiting_check() if queued else None
    if check is None and not unless:
        keys = _MESSAGE_ROWS.insert_with(rows, children=children)
    else:
        keys, then_rows = _MESSAGE_ROWS.insert_with_then(
            rows, children=children, then=[check.read] if check else [], unless=unless
        )
        if len(keys) < len(rows):
            return None
        check = check.answered(then_rows[0]) if check else None
    if queued:
        drain_soon(check)
    return keys


def messages_plan_kept(
    *, email_messages: list[EmailMessage]
) -> tuple[RoutingConfig, list[MessagePlan], list[Read]] | None:
    """A call of one message on PostgreSQL, outside a transaction: its plan made without
    reading anything, with the configuration an earlier call read (``routing_kept``) and
    none of its recipients blacklisted, and the reads that find a row where that does not
    hold (the configuration changed since, a recipient is blacklisted), for
    ``messages_record``'s ``unless``: the statement writing the message then reads them
    itself, so the send costs one round trip instead of two.

    ``None`` where there is no such plan: another call, no configuration kept, or one that
    cannot plan the message (``messages_plan``, which reads, then decides, and raises what
    is to be raised). A bad header or address raises here as it does there.
    """
    if len(email_messages) != 1 or transaction.get_connection().in_atomic_block:
        return None
    kept = routing_kept()
    if kept is None:
        return None
    config, unchanged = kept
    (email_message,) = email_messages
    boxes = _recipient_boxes(email_message)
    lookup = blacklist_lookup(
        addresses=sorted({box.normalized for kind in boxes.values() for box in kind})
    )
    try:
        plan = message_plan(
            email_message=email_message,
            boxes=boxes,
            blocked={},
            mail_settings=config.mail_settings,
            servers=config.servers,
            options=config.options,
            dkim_keys=config.dkim_keys,
        )
    except (ConfigurationError, InvalidMessage):
        # Perhaps only so with what was kept: decided again on what is read now.
        return None
    if plan is None:
        return None
    return config, [plan], [unchanged, *lookup.reads]


def messages_plan(*, email_messages: list[EmailMessage]) -> tuple[RoutingConfig, list[MessagePlan]]:
    """The portal's configuration as read for this call, and the plan of every message of
    the call (skipping those without recipients); or raise before anything is written: for
    the first message with a bad header or address (before reading anything), else for the
    first that cannot be routed.

    The configuration and the blacklist entries of every recipient of the call are read
    together (``routing_read``): one round trip on PostgreSQL, for one message as for a
    mass mailing, not one read per message.
    """
    boxes_of = [_recipient_boxes(email_message) for email_message in email_messages]
    lookup = blacklist_lookup(
        addresses=sorted(
            {box.normalized for boxes in boxes_of for kind in boxes.values() for box in kind}
        )
    )
    config, blacklist_rows = routing_read(also=lookup.reads)
    blocked = lookup.blocked(blacklist_rows)
    plans = []
    for email_message, boxes in zip(email_messages, boxes_of, strict=True):
        plan = message_plan(
            email_message=email_message,
            boxes=boxes,
            blocked=blocked,
            mail_settings=config.mail_settings,
            servers=config.servers,
            options=config.options,
            dkim_keys=config.dkim_keys,
        )
        if plan is not None:
            plans.append(plan)
    return config, plans
