"""Delivery of recorded messages: one attempt's result, the queue's drain, staff actions.

The envelope of a message is its ``Recipient`` rows still to deliver: those ``pending`` or
``deferred`` (sent to their address) and those ``redirected`` in test mode (sent to their
``delivered_to``, the test address). Rows already ``sent``, ``refused`` or ``suppressed``
are never given to a server again, so a temporary refusal is retried for that recipient
only and a permanent one never.

What one attempt's result does (``message_record_attempt``):

- accepted recipients become ``sent`` and count against the server's limit;
- a permanent (5xx) refusal makes the recipient ``refused`` with the reply;
- a temporary one (4xx, disconnect, timeout) makes it ``deferred`` and the message
  ``deferred`` with exponential back-off (``smtpconfig.retry``), until the maximum age,
  after which it is ``refused`` and the message ``failed`` with the last reply;
- server-wide replies never fail a message while retrying: a 421 or a refused connection
  pauses the server with back-off, rejected credentials pause it ("credentials rejected")
  and a quota reply pauses it until its window allows; its messages go back to ``queued``;
- with ``retry=False`` (direct delivery) anything not accepted is final: ``refused``.

A message is ``sent`` when no recipient is left to retry and at least one accepted it,
``failed`` when none did.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from smtpconfig.limits import counter_add, limit_period_length, limit_usage
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient, SmtpServer
from smtpconfig.replies import Outcome
from smtpconfig.retry import retry_delay, retry_next_attempt, retry_policy
from smtpconfig.transport import RecipientResult, SendResult

ENVELOPE_STATUSES = (
    Recipient.Status.PENDING,
    Recipient.Status.DEFERRED,
    Recipient.Status.REDIRECTED,
)
SERVER_OUTCOMES = (Outcome.SERVER_BUSY, Outcome.QUOTA, Outcome.CREDENTIALS)
# Rejected credentials will not fix themselves quickly; try again now and then so a
# password corrected elsewhere (or a provider's hiccup) resumes without anyone's help.
CREDENTIALS_PAUSE = timedelta(hours=1)


def _envelope_address(row: Recipient) -> str:
    if row.status == Recipient.Status.REDIRECTED:
        return row.delivered_to or row.email
    return row.email


def message_envelope(*, message: OutgoingMessage) -> list[str]:
    """The addresses to give the server on the next attempt, each once, in order."""
    addresses: dict[str, str] = {}
    for row in message.recipients.all():
        if row.status in ENVELOPE_STATUSES:
            address = _envelope_address(row)
            addresses.setdefault(address.lower(), address)
    return list(addresses.values())


def _reply_text(code: int | None, reply: str) -> str:
    return f"{code} {reply}".strip() if code is not None else reply


def _server_outcome(result: SendResult) -> Outcome | None:
    """The server-wide outcome in this result, if any (the message's own first)."""
    if result.outcome in SERVER_OUTCOMES:
        return result.outcome
    for recipient in result.recipients:
        if recipient.outcome in SERVER_OUTCOMES:
            return recipient.outcome
    return None


@dataclass(frozen=True)
class _Fate:
    outcome: Outcome
    reply: str


def _fate_of(address: str, result: SendResult, by_address: dict[str, RecipientResult]) -> _Fate:
    own = by_address.get(address.lower())
    if own is not None:
        return _Fate(own.outcome, _reply_text(own.code, own.reply))
    if result.outcome == Outcome.ACCEPTED and result.recipients:
        # The server accepted the message and listed no refusal for this address.
        return _Fate(Outcome.ACCEPTED, _reply_text(result.code, result.reply))
    return _Fate(result.outcome, _reply_text(result.code, result.reply))


def server_pause(*, server: SmtpServer, until: datetime, reason: str) -> None:
    """Pause ``server`` until ``until`` (never shortening a longer pause)."""
    SmtpServer.objects.filter(pk=server.pk).exclude(paused_until__gt=until).update(
        paused_until=until, pause_reason=reason
    )
    server.refresh_from_db(fields=["paused_until", "pause_reason"])


def server_resume(*, server: SmtpServer) -> None:
    """Lift a pause at once (for example after the credentials were corrected)."""
    SmtpServer.objects.filter(pk=server.pk).update(paused_until=None, pause_reason="")
    server.paused_until, server.pause_reason = None, ""


def _server_record_outcome(
    *, server: SmtpServer, outcome: Outcome, reply: str, attempts: int, now: datetime
) -> None:
    if outcome == Outcome.CREDENTIALS:
        reason = _("Credentials rejected: %(reply)s") % {"reply": reply}
        server_pause(server=server, until=now + CREDENTIALS_PAUSE, reason=str(reason))
    elif outcome == Outcome.QUOTA:
        usage = limit_usage(server=server, now=now)
        until = now + (limit_period_length(server.limit_period) or timedelta(hours=1))
        if usage.limit is not None and usage.next_fit_at is not None and usage.next_fit_at > now:
            until = usage.next_fit_at
        reason = _("Sending quota reached: %(reply)s") % {"reply": reply}
        server_pause(server=server, until=until, reason=str(reason))
    else:
        delay = retry_delay(attempts=max(attempts, 1), policy=retry_policy())
        reason = _("Server busy: %(reply)s") % {"reply": reply}
        server_pause(server=server, until=now + delay, reason=str(reason))


@transaction.atomic
def message_record_attempt(
    *, message: OutgoingMessage, result: SendResult, retry: bool, now: datetime | None = None
) -> OutgoingMessage:
    """Apply one attempt's ``result`` to ``message``, its recipients and its server.

    ``retry`` is ``True`` for the queue (temporary failures wait and try again) and
    ``False`` for direct delivery (every failure is final; staff may resend). Writes the
    message, its recipients, its events and the server's counter in one transaction.
    """
    now = now or timezone.now()
    message.attempts += 1
    policy = retry_policy()
    next_attempt = retry_next_attempt(
        attempts=message.attempts, created_at=message.created_at, now=now, policy=policy
    )
    server_outcome = _server_outcome(result)
    by_address = {recipient.email.lower(): recipient for recipient in result.recipients}

    rows = [row for row in message.recipients.all() if row.status in ENVELOPE_STATUSES]
    fates = {row.pk: _fate_of(_envelope_address(row), result, by_address) for row in rows}
    accepted: set[str] = set()
    refusals: list[str] = []
    waiting: list[str] = []
    for row in rows:
        fate = fates[row.pk]
        address = _envelope_address(row)
        row.reply = fate.reply
        if fate.outcome == Outcome.ACCEPTED:
            accepted.add(address.lower())
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.SENT
                row.delivered_to = row.delivered_to or address
        elif retry and fate.outcome in SERVER_OUTCOMES:
            waiting.append(f"{address}: {fate.reply}")
        elif retry and fate.outcome == Outcome.TEMPORARY and next_attempt is not None:
            waiting.append(f"{address}: {fate.reply}")
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.DEFERRED
        else:
            refusals.append(f"{address}: {fate.reply}")
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.REFUSED
    for row in rows:
        row.updated_at = now
    Recipient.objects.bulk_update(rows, ["status", "reply", "delivered_to", "updated_at"])

    events = [
        MessageEvent(
            message=message,
            kind=MessageEvent.Kind.ATTEMPT,
            detail=_attempt_detail(result=result, accepted=len(accepted), rows=rows),
        )
    ]
    message.claimed_by = ""
    message.lease_expires_at = None
    if waiting and retry and server_outcome is not None:
        message.status = OutgoingMessage.Status.QUEUED
        message.next_attempt_at = None
        message.last_error = "; ".join(waiting)
    elif waiting:
        message.status = OutgoingMessage.Status.DEFERRED
        message.next_attempt_at = next_attempt
        message.last_error = "; ".join(waiting)
        events.append(
            MessageEvent(
                message=message,
                kind=MessageEvent.Kind.DEFERRED,
                detail=str(_("Next attempt at %(when)s.") % {"when": next_attempt.isoformat()}),
            )
        )
    elif accepted or message.recipients.filter(status=Recipient.Status.SENT).exists():
        message.status = OutgoingMessage.Status.SENT
        message.next_attempt_at = None
        message.sent_at = now
        message.last_error = "; ".join(refusals)
        events.append(
            MessageEvent(message=message, kind=MessageEvent.Kind.SENT, detail=message.last_error)
        )
    else:
        message.status = OutgoingMessage.Status.FAILED
        message.next_attempt_at = None
        message.last_error = "; ".join(refusals) or _reply_text(result.code, result.reply)
        if retry and next_attempt is None:
            message.last_error = str(
                _("Gave up after %(attempts)d attempts: %(reply)s")
                % {"attempts": message.attempts, "reply": message.last_error}
            )
        events.append(
            MessageEvent(message=message, kind=MessageEvent.Kind.FAILED, detail=message.last_error)
        )
    message.save(
        update_fields=[
            "status",
            "attempts",
            "next_attempt_at",
            "lease_expires_at",
            "claimed_by",
            "last_error",
            "sent_at",
            "updated_at",
        ]
    )
    MessageEvent.objects.bulk_create(events)

    if message.server_id is not None:
        server = message.server
        counter_add(server=server, count=len(accepted), at=now)
        if server_outcome is not None:
            _server_record_outcome(
                server=server,
                outcome=server_outcome,
                reply=_reply_text(result.code, result.reply),
                attempts=message.attempts,
                now=now,
            )
    return message


def _attempt_detail(*, result: SendResult, accepted: int, rows: list[Recipient]) -> str:
    lines = [_reply_text(result.code, result.reply) or str(result.outcome)]
    lines.extend(
        f"{_envelope_address(row)}: {row.reply}"
        for row in rows
        if row.reply and row.reply != lines[0]
    )
    lines.append(str(_("%(count)d recipient(s) accepted.") % {"count": accepted}))
    return "\n".join(lines)
