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

The queue's drain (``outbox_drain``; django-q2 runs it through ``smtpconfig.tasks``):

- due messages (``queued``, or ``deferred`` whose time has come) are claimed per server in
  batches: ``sending``, ``claimed_by`` the worker, under a lease, committed before any
  network I/O, under the server's row lock so concurrent workers (processes, hosts) never
  claim one message twice nor together exceed the server's send limit;
- one SMTP connection per batch sends each message's stored bytes as they are; each result
  is committed while the server reads the next message's envelope, and that message's data
  waits for the commit (``_Recorder``); the connection is closed in ``finally``;
- a worker that dies leaves its messages ``sending``; when the lease expires the next pass
  returns them to ``queued``. Delivery is at least once: the message in flight when the
  worker died (accepted by the server, result not yet recorded) is sent again, and only
  that one. Its Message-ID is the same on every attempt, which lets receiving systems
  recognise the copy.
"""

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone, translation
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from smtpconfig.conf import mailadmin_setting
from smtpconfig.connections import server_connection
from smtpconfig.exceptions import MailadminError
from smtpconfig.limits import (
    ENVELOPE_STATUSES,
    counter_add,
    envelope_address,
    envelope_addresses,
    limit_bucket_for,
    limit_in_flight,
    limit_next_fit,
    limit_period_length,
    limit_usage,
)
from smtpconfig.models import (
    MessageEvent,
    OutgoingMessage,
    ProviderMessageId,
    Recipient,
    SendCounter,
    SmtpServer,
)
from smtpconfig.replies import Outcome
from smtpconfig.retry import retry_delay, retry_next_attempt, retry_policy
from smtpconfig.transport import (
    ConnectionFailed,
    MessageWithheld,
    RecipientResult,
    SendResult,
)
from smtpconfig.wakeups import WaitingCheck, task_request, task_waiting_check

logger = logging.getLogger(__name__)

DRAIN_TASK = "smtpconfig.tasks.drain_outbox"

SERVER_OUTCOMES = (Outcome.SERVER_BUSY, Outcome.QUOTA, Outcome.CREDENTIALS)
# Rejected credentials will not fix themselves quickly; try again now and then so a
# password corrected elsewhere (or a provider's hiccup) resumes without anyone's help.
CREDENTIALS_PAUSE = timedelta(hours=1)
PERIOD_NAMES = {
    SmtpServer.LimitPeriod.HOUR: _("hour"),
    SmtpServer.LimitPeriod.DAY: _("day"),
    SmtpServer.LimitPeriod.WEEK: _("week"),
}


def _recipient_rows(message: OutgoingMessage) -> list[Recipient]:
    """The message's recipient rows: the list its claim read with it (``claimed_recipients``,
    a plain list: a prefetched manager per message costs the claim more than its query), or
    read now."""
    rows = getattr(message, "claimed_recipients", None)
    return rows if rows is not None else list(message.recipients.all())


def message_envelope(*, message: OutgoingMessage) -> list[str]:
    """The addresses to give the server on the next attempt, each once, in order."""
    return envelope_addresses(_recipient_rows(message))


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


def _summary(replies: list[tuple[str, str]], *, of: int) -> str:
    """One reply when all ``of`` addresses got the same, else each address with its own."""
    if len(replies) == of and len({reply for _address, reply in replies}) == 1:
        return replies[0][1]
    return "; ".join(f"{address}: {reply}" for address, reply in replies)


def _retry_age_start(*, message: OutgoingMessage) -> datetime:
    """The maximum age counts from the message's recording, or from its last resend."""
    resent = (
        message.events.filter(kind=MessageEvent.Kind.RESENT)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return max(message.created_at, resent) if resent else message.created_at


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
    server_outcome = _server_outcome(result)
    by_address = {recipient.email.lower(): recipient for recipient in result.recipients}

    rows = [row for row in _recipient_rows(message) if row.status in ENVELOPE_STATUSES]
    fates = {row.pk: _fate_of(envelope_address(row), result, by_address) for row in rows}
    next_attempt = None
    if retry and any(fate.outcome == Outcome.TEMPORARY for fate in fates.values()):
        next_attempt = retry_next_attempt(
            attempts=message.attempts,
            created_at=_retry_age_start(message=message),
            now=now,
            policy=retry_policy(),
        )
    accepted: set[str] = set()
    refusals: list[tuple[str, str]] = []
    waiting: list[tuple[str, str]] = []
    for row in rows:
        fate = fates[row.pk]
        address = envelope_address(row)
        row.reply = fate.reply
        if fate.outcome == Outcome.ACCEPTED:
            accepted.add(address.lower())
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.SENT
                row.delivered_to = row.delivered_to or address
        elif retry and fate.outcome in SERVER_OUTCOMES:
            waiting.append((address, fate.reply))
        elif retry and fate.outcome == Outcome.TEMPORARY and next_attempt is not None:
            waiting.append((address, fate.reply))
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.DEFERRED
        else:
            refusals.append((address, fate.reply))
            if row.status != Recipient.Status.REDIRECTED:
                row.status = Recipient.Status.REFUSED
    for row in rows:
        row.updated_at = now
    Recipient.objects.bulk_update(rows, ["status", "reply", "delivered_to", "updated_at"])

    events = [
        MessageEvent(
            message=message,
            kind=MessageEvent.Kind.ATTEMPT,
            detail=_attempt_detail(
                result=result, accepted=len(accepted), rows=rows, worker=message.claimed_by
            ),
        )
    ]
    message.claimed_by = ""
    message.lease_expires_at = None
    if waiting and retry and server_outcome is not None:
        message.status = OutgoingMessage.Status.QUEUED
        message.next_attempt_at = None
        message.last_error = _summary(waiting, of=len(rows))
    elif waiting:
        message.status = OutgoingMessage.Status.DEFERRED
        message.next_attempt_at = next_attempt
        message.last_error = _summary(waiting, of=len(rows))
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
        message.last_error = _summary(refusals, of=len(rows))
        events.append(
            MessageEvent(message=message, kind=MessageEvent.Kind.SENT, detail=message.last_error)
        )
    else:
        message.status = OutgoingMessage.Status.FAILED
        message.next_attempt_at = None
        message.last_error = _summary(refusals, of=len(rows)) or _reply_text(
            result.code, result.reply
        )
        if retry and any(fate.outcome == Outcome.TEMPORARY for fate in fates.values()):
            message.last_error = str(
                _("Gave up after %(attempts)d attempts: %(reply)s")
                % {"attempts": message.attempts, "reply": message.last_error}
            )
        events.append(
            MessageEvent(message=message, kind=MessageEvent.Kind.FAILED, detail=message.last_error)
        )
    _provider_ids_record(message=message, values=getattr(result, "provider_message_ids", ()))
    message.save(
        update_fields=[
            "provider_message_id",
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


def _provider_ids_record(*, message: OutgoingMessage, values: tuple[str, ...]) -> None:
    """Keep the ids a service gave this attempt: its tracking events name the message by
    them. An earlier attempt's ids stay, as events for them may still come."""
    values = [value[:255] for value in values if value]
    if not values:
        return
    known = [value for value in message.provider_message_id.split(",") if value]
    message.provider_message_id = ",".join(dict.fromkeys([*known, *values]))
    ProviderMessageId.objects.bulk_create(
        [ProviderMessageId(message=message, value=value) for value in values],
        ignore_conflicts=True,
    )


def _attempt_detail(
    *, result: SendResult, accepted: int, rows: list[Recipient], worker: str
) -> str:
    lines = [_reply_text(result.code, result.reply) or str(result.outcome)]
    lines.extend(
        f"{envelope_address(row)}: {row.reply}"
        for row in rows
        if row.reply and row.reply != lines[0]
    )
    lines.append(_attempt_footer(accepted=accepted, worker=worker, language=get_language()))
    return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def _attempt_footer(*, accepted: int, worker: str, language: str | None) -> str:
    """The attempt's last lines, translated once per count, worker and language (the drain
    writes them for every message it sends)."""
    lines = [str(_("%(count)d recipient(s) accepted.") % {"count": accepted})]
    if worker:
        # Which queue worker (host, process) sent it: the trail of a duplicate, if any.
        lines.append(str(_("Queue worker: %(worker)s") % {"worker": worker}))
    return "\n".join(lines)


def _all_accepted(result: SendResult) -> bool:
    return (
        result.outcome == Outcome.ACCEPTED
        and bool(result.recipients)
        and all(recipient.outcome == Outcome.ACCEPTED for recipient in result.recipients)
    )


@functools.cache
def _accepted_statements(*, vendor: str, count: bool) -> tuple[str, ...]:
    """The statements that record one fully accepted message (built once: composing them
    through the ORM for every message would cost more than sending it), without the limit's
    counter when ``count`` is false. Only table names and status constants are interpolated;
    every value is a parameter.

    PostgreSQL gets them as one statement (data-modifying ``WITH``; each part runs once and
    to completion), atomic on its own and one round trip to the server instead of six.
    """
    message = OutgoingMessage._meta.db_table
    recipient = Recipient._meta.db_table
    event = MessageEvent._meta.db_table
    counter = SendCounter._meta.db_table
    envelope = ", ".join(f"'{status}'" for status in ENVELOPE_STATUSES)
    redirected = Recipient.Status.REDIRECTED
    statements = (
        f"UPDATE {recipient} SET"  # noqa: S608
        f" status = CASE WHEN status = '{redirected}' THEN status"
        f" ELSE '{Recipient.Status.SENT}' END,"
        f" delivered_to = CASE WHEN status = '{redirected}' OR delivered_to <> ''"
        f" THEN delivered_to ELSE email END,"
        f" reply = %s, updated_at = %s"
        f" WHERE message_id = %s AND status IN ({envelope})",
        f"UPDATE {message} SET status = '{OutgoingMessage.Status.SENT}',"  # noqa: S608
        f" attempts = attempts + 1, next_attempt_at = NULL, lease_expires_at = NULL,"
        f" claimed_by = '', last_error = '', sent_at = %s, updated_at = %s WHERE id = %s",
        f"INSERT INTO {event} (message_id, kind, detail, created_at)"  # noqa: S608
        f" VALUES (%s, '{MessageEvent.Kind.ATTEMPT}', %s, %s),"
        f" (%s, '{MessageEvent.Kind.SENT}', '', %s)",
        f"INSERT INTO {counter} (server_id, bucket, count) VALUES (%s, %s, %s)"  # noqa: S608
        f" ON CONFLICT (server_id, bucket) DO UPDATE SET count = {counter}.count + %s",
    )[: 4 if count else 3]
    if vendor != "postgresql":
        return statements
    parts = ", ".join(f"part{index} AS ({sql})" for index, sql in enumerate(statements))
    return (f"WITH {parts} SELECT 1",)


def _statements_commit(*, db, statements: tuple[str, ...], params: list[list]) -> None:
    """Run ``statements`` with their ``params`` in one transaction, as ``atomic()`` and
    Django's cursor would, but on the driver's own connection: for one message's few
    statements, the wrappers (query conversion, savepoint bookkeeping, autocommit toggles)
    cost more than the database's work. Errors are Django's, as from its cursor.

    Inside a caller's transaction (and for several statements elsewhere than on SQLite) they
    go through ``atomic()`` and Django's cursor, joining the caller's transaction.
    """
    if db.in_atomic_block or (db.vendor != "sqlite" and len(statements) > 1):
        with transaction.atomic(), db.cursor() as cursor:
            for sql, values in zip(statements, params, strict=True):
                cursor.execute(sql, values)
        return
    db.ensure_connection()
    driver = db.connection
    with db.wrap_database_errors:
        if db.vendor != "sqlite":
            # One statement in autocommit mode is its own transaction.
            with driver.cursor() as cursor:
                cursor.execute(statements[0], params[0])
            return
        # Django keeps SQLite's driver in autocommit and opens transactions itself.
        driver.execute(f"BEGIN {db.transaction_mode or ''}")
        try:
            for sql, values in zip(statements, params, strict=True):
                driver.execute(_sqlite_placeholders(sql), values)
            driver.execute("COMMIT")
        except BaseException:
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            raise


@functools.cache
def _sqlite_placeholders(sql: str) -> str:
    """``sql`` with the DB-API ``%s`` placeholders as SQLite's ``?`` (what Django's SQLite
    cursor does to every query it runs); the statements given hold no literal ``%``."""
    return sql.replace("%s", "?")


def message_record_accepted(
    *, server: SmtpServer, message: OutgoingMessage, result: SendResult, now: datetime
) -> None:
    """Record an attempt every recipient accepted with one reply: exactly what
    ``message_record_attempt`` writes for it (recipients ``sent`` with the reply, the
    message ``sent``, its attempt and sent events, the limit's counter), in one transaction
    of four statements (one statement on PostgreSQL).
    """
    rows = [row for row in _recipient_rows(message) if row.status in ENVELOPE_STATUSES]
    by_address = {recipient.email.lower(): recipient for recipient in result.recipients}
    fates = {_fate_of(envelope_address(row), result, by_address) for row in rows}
    if (
        len(fates) != 1
        or any(fate.outcome != Outcome.ACCEPTED for fate in fates)
        or getattr(result, "provider_message_ids", ())
    ):
        message_record_attempt(message=message, result=result, retry=True, now=now)
        return
    (reply,) = {fate.reply for fate in fates}
    for row in rows:
        row.reply = reply
    accepted = len(envelope_addresses(rows))
    detail = _attempt_detail(result=result, accepted=accepted, rows=rows, worker=message.claimed_by)
    db = transaction.get_connection()
    # As the ORM writes them: the recipients' change at ``now``, the message's and the
    # events' own timestamps (auto_now, auto_now_add) at the wall time.
    when = db.ops.adapt_datetimefield_value(now)
    wall = db.ops.adapt_datetimefield_value(timezone.now())
    bucket = db.ops.adapt_datetimefield_value(
        limit_bucket_for(at=now, period=server.limit_period, reset_at=server.limit_reset_at)
    )
    params = [
        [reply, when, message.pk],
        [when, wall, message.pk],
        [message.pk, detail, wall, message.pk, wall],
        [server.pk, bucket, accepted, accepted],
    ]
    if not accepted:
        params = params[:-1]  # no count for the limit
    statements = _accepted_statements(vendor=db.vendor, count=bool(accepted))
    if len(statements) == 1:
        params = [[value for part in params for value in part]]
    _statements_commit(db=db, statements=statements, params=params)
    message.attempts += 1
    message.status = OutgoingMessage.Status.SENT
    message.next_attempt_at = message.lease_expires_at = None
    message.claimed_by = message.last_error = ""
    message.sent_at = now


# --- The queue's drain -------------------------------------------------------------------


@dataclass
class DrainReport:
    """What one drain pass did, for the task's log and ``manage.py drain_outbox``."""

    released: int = 0
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    requeued: int = 0
    limit_deferred: int = 0
    errors: list[str] = field(default_factory=list)
    unfinished: bool = False

    def add(self, other: "DrainReport") -> None:
        for name in (
            "released",
            "claimed",
            "sent",
            "deferred",
            "failed",
            "requeued",
            "limit_deferred",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)

    def count(self, message: OutgoingMessage) -> None:
        if message.status == OutgoingMessage.Status.SENT:
            self.sent += 1
        elif message.status == OutgoingMessage.Status.DEFERRED:
            self.deferred += 1
        elif message.status == OutgoingMessage.Status.FAILED:
            self.failed += 1
        else:
            self.requeued += 1


def _reply_margin(server: SmtpServer) -> timedelta:
    """How long one message may take on a slow but live server: a few of its timeouts."""
    return timedelta(seconds=2 * server.timeout + 5)


def _lease(server: SmtpServer) -> timedelta:
    """``LEASE_SECONDS``, lengthened for a server so slow that one message could outlast it
    (another worker would then take the message over and send it a second time)."""
    return max(timedelta(seconds=mailadmin_setting("LEASE_SECONDS")), 2 * _reply_margin(server))


def _clock(now: datetime | None):
    """Wall time, or ``now`` moving on with the wall clock (tests fix where time starts)."""
    if now is None:
        return timezone.now
    started = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - started)


def outbox_release_expired(*, now: datetime | None = None) -> int:
    """Return messages whose worker's lease expired to ``queued``; a crashed worker's batch
    is picked up again (the message it was sending may then arrive twice)."""
    now = now or timezone.now()
    expired = OutgoingMessage.objects.filter(
        status=OutgoingMessage.Status.SENDING, lease_expires_at__lt=now
    )
    if not expired.exists():
        return 0
    with transaction.atomic():
        # Locked and filtered again: a concurrent pass may have released (and another worker
        # claimed) some of them in between; those must stay with their new worker.
        stale = list(expired.select_for_update(skip_locked=True).values_list("pk", "claimed_by"))
        expired.filter(pk__in=[pk for pk, _worker in stale]).update(
            status=OutgoingMessage.Status.QUEUED, lease_expires_at=None, claimed_by=""
        )
        MessageEvent.objects.bulk_create(
            MessageEvent(
                message_id=pk,
                kind=MessageEvent.Kind.LEASE_EXPIRED,
                detail=str(_("Worker %(worker)s stopped answering.") % {"worker": worker}),
            )
            for pk, worker in stale
        )
    return len(stale)


def outbox_release(*, messages: list[OutgoingMessage], worker: str) -> int:
    """Give claimed messages that were not tried back to the queue, untouched."""
    return OutgoingMessage.objects.filter(
        pk__in=[message.pk for message in messages],
        status=OutgoingMessage.Status.SENDING,
        claimed_by=worker,
    ).update(status=OutgoingMessage.Status.QUEUED, lease_expires_at=None, claimed_by="")


def _due(*, now: datetime):
    return OutgoingMessage.objects.filter(
        status__in=[OutgoingMessage.Status.QUEUED, OutgoingMessage.Status.DEFERRED]
    ).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _due_oldest_first(*, server: SmtpServer, now: datetime, count: int) -> list[OutgoingMessage]:
    """Up to ``count`` of ``server``'s due messages, oldest first, locked for the claim.

    One query per status, each walking the (server, status, created_at, id) index in order and
    stopping at ``count``: one query for both would sort every due message, or walk the
    whole history by date, at every claim.
    """
    candidates = []
    for status in (OutgoingMessage.Status.QUEUED, OutgoingMessage.Status.DEFERRED):
        candidates += (
            _due(now=now)
            .filter(server=server, status=status)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("created_at", "pk")
            .prefetch_related(Prefetch("recipients", to_attr="claimed_recipients"))[:count]
        )
    return sorted(candidates, key=lambda message: (message.created_at, message.pk))[:count]


def outbox_due_server_ids(*, now: datetime) -> list[int]:
    """Active, unpaused servers with messages due now."""
    return list(
        SmtpServer.objects.filter(is_active=True)
        .exclude(paused_until__gt=now)
        .filter(Exists(_due(now=now).filter(server=OuterRef("pk"))))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _message_defer_for_limit(
    *, messages: list[tuple[OutgoingMessage, datetime]], used: int, limit: int, now: datetime
) -> None:
    events = []
    for message, fits_at in messages:
        message.status = OutgoingMessage.Status.DEFERRED
        message.next_attempt_at = fits_at
        message.last_error = str(
            _("Send limit reached (%(used)d/%(limit)d); fits at %(when)s.")
            % {"used": used, "limit": limit, "when": fits_at.isoformat()}
        )
        message.updated_at = now
        events.append(
            MessageEvent(
                message=message, kind=MessageEvent.Kind.DEFERRED, detail=message.last_error
            )
        )
    OutgoingMessage.objects.bulk_update(
        [message for message, _fits_at in messages],
        ["status", "next_attempt_at", "last_error", "updated_at"],
    )
    MessageEvent.objects.bulk_create(events)


def _message_fail_before_sending(*, message: OutgoingMessage, reason: str) -> None:
    message_record_attempt(
        message=message, result=SendResult(Outcome.PERMANENT, None, reason), retry=False
    )


def outbox_claim(
    *, server_id: int, worker: str, now: datetime, batch_size: int
) -> tuple[SmtpServer | None, list[OutgoingMessage], DrainReport]:
    """Claim up to ``batch_size`` due messages of one server for ``worker``, under its limit.

    Runs in one transaction holding the server's row lock (``SELECT … FOR UPDATE`` on
    PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the database's write lock), so two
    workers claim one after the other and each sees what the other claimed: together they
    never exceed the limit or send one message twice. Committed before any network I/O.
    A message that does not fit is deferred to when it fits; one bigger than the limit
    itself fails, saying so.
    """
    report = DrainReport()
    with transaction.atomic():
        server = SmtpServer.objects.select_for_update().filter(pk=server_id).first()
        if (
            server is None
            or not server.is_active
            or (server.paused_until is not None and server.paused_until > now)
        ):
            return server, [], report
        in_flight, workers = limit_in_flight(
            server=server, count_recipients=limit_period_length(server.limit_period) is not None
        )
        if workers >= server.max_connections:
            return server, [], report
        usage = limit_usage(server=server, now=now, in_flight=in_flight)
        due = _due_oldest_first(server=server, now=now, count=batch_size)
        claimed: list[OutgoingMessage] = []
        waiting: list[tuple[OutgoingMessage, datetime]] = []
        used = usage.used
        for message in due:
            message.server = server
            needed = len(message_envelope(message=message))
            if needed == 0:
                _message_fail_before_sending(
                    message=message, reason=str(_("No recipient is left to deliver to."))
                )
                report.count(message)
            elif usage.limit is not None and needed > usage.limit:
                reason = _(
                    "%(count)d recipients are more than this server's limit of %(limit)d "
                    "per %(period)s: split the message."
                ) % {
                    "count": needed,
                    "limit": usage.limit,
                    "period": PERIOD_NAMES[server.limit_period],
                }
                _message_fail_before_sending(message=message, reason=str(reason))
                report.count(message)
            elif usage.limit is None or used + needed <= usage.limit:
                claimed.append(message)
                used += needed
            else:
                fits_at = limit_next_fit(
                    counted=usage.counted,
                    in_flight=in_flight + used - usage.used,
                    needed=needed,
                    limit=usage.limit,
                    now=now,
                    period=server.limit_period,
                )
                waiting.append((message, fits_at))
        if waiting:
            _message_defer_for_limit(messages=waiting, used=used, limit=usage.limit, now=now)
            report.limit_deferred += len(waiting)
        lease_expires_at = now + _lease(server)
        OutgoingMessage.objects.filter(pk__in=[message.pk for message in claimed]).update(
            status=OutgoingMessage.Status.SENDING,
            lease_expires_at=lease_expires_at,
            claimed_by=worker,
        )
        for message in claimed:
            message.status = OutgoingMessage.Status.SENDING
            message.lease_expires_at = lease_expires_at
            message.claimed_by = worker
    report.claimed = len(claimed)
    return server, claimed, report


def _lease_renew(
    *, server: SmtpServer, messages: list[OutgoingMessage], worker: str, now: datetime
) -> set[int]:
    """Extend the lease of the messages still ours; return their ids (others were reclaimed
    after our lease expired, and must not be sent by us)."""
    with transaction.atomic():
        ours = OutgoingMessage.objects.filter(
            pk__in=[message.pk for message in messages],
            status=OutgoingMessage.Status.SENDING,
            claimed_by=worker,
        )
        ids = set(ours.values_list("pk", flat=True))
        ours.update(lease_expires_at=now + _lease(server))
    return ids


class _Recorder:
    """Holds each result of a batch until the server is reading the next message's first
    command, then records it on the batch's own database connection: the database's work
    overlaps the server's, with no thread to hand it to.

    ``flush()`` records the result held, if any, and raises what recording it raised. The
    connection calls it (``before_data``) once the next message's first command is written,
    and in any case before that message's data goes: a server gets a message only once the
    result before it is committed, so a worker that dies leaves at most one accepted message
    unrecorded, as when each result was committed before the next message began.
    """

    def __init__(self):
        self._held: Callable[[], None] | None = None

    def record(self, call: Callable[..., None], /, **arguments) -> None:
        """Record the result held, then hold ``call(**arguments)`` until the next flush."""
        self.flush()
        self._held = functools.partial(call, **arguments)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held()


# SQLite lets one connection write at a time and has the others poll for the lock, sleeping
# 1, 2, 5, 10 ms and more between tries; the drain's own threads (parallel connections) queue
# for it here instead, and get it as soon as it is free.
_SQLITE_WRITER = threading.RLock()


@contextlib.contextmanager
def _database_write():
    if transaction.get_connection().vendor == "sqlite":
        with _SQLITE_WRITER:
            yield
    else:
        yield


def _record_result(
    *, server: SmtpServer, message: OutgoingMessage, result: SendResult, now: datetime, report
) -> None:
    with _database_write():
        if _all_accepted(result):
            message_record_accepted(server=server, message=message, result=result, now=now)
        else:
            message_record_attempt(message=message, result=result, retry=True, now=now)
    report.count(message)


def _record_failures(
    *, messages: list[OutgoingMessage], result: SendResult, retry: bool, now: datetime, report
) -> None:
    for message in messages:
        with _database_write():
            message_record_attempt(message=message, result=result, retry=retry, now=now)
        report.count(message)


def server_send_batch(
    *,
    server: SmtpServer,
    messages: list[OutgoingMessage],
    worker: str,
    now: datetime | None = None,
) -> tuple[DrainReport, bool]:
    """Send claimed ``messages`` over one connection to ``server``, recording each result
    while the server reads the next message's envelope (``_Recorder``).
    Returns the report and whether the batch ran to its end (``False`` when the server
    paused, stalled or dropped us: the rest went back to the queue).
    """
    clock = _clock(now)
    report = DrainReport()
    remaining = list(messages)
    lease_until = min(message.lease_expires_at for message in messages)
    # Renew well before the lease ends: one message may take a few timeouts to answer.
    margin = _reply_margin(server)
    connection = server_connection(server)
    recorder = _Recorder()
    completed = True
    try:
        while remaining:
            if clock() + margin > lease_until:
                recorder.flush()
                ours = _lease_renew(server=server, messages=remaining, worker=worker, now=clock())
                remaining = [message for message in remaining if message.pk in ours]
                lease_until = clock() + _lease(server)
                if not remaining:
                    break
            message = remaining.pop(0)
            if not connection.is_open:
                try:
                    connection.open()
                except ConnectionFailed as error:
                    # The server cannot be reached: every message of the batch meets the same
                    # fate (deferred, or queued behind a paused server), none is lost.
                    failure = SendResult(error.outcome, error.code, str(error))
                    unsent = [message, *remaining]
                    remaining = []
                    recorder.record(
                        _record_failures,
                        messages=unsent,
                        result=failure,
                        retry=True,
                        now=clock(),
                        report=report,
                    )
                    completed = False
                    break
            try:
                result = connection.send(
                    envelope_from=message.envelope_from,
                    recipients=message_envelope(message=message),
                    raw=bytes(message.raw),
                    before_data=recorder.flush,
                )
            except MessageWithheld as withheld:
                # Recording the previous result failed: this message's data was never sent,
                # and it goes back to the queue with the rest.
                remaining.insert(0, message)
                raise withheld.__cause__  # noqa: B904  (the recording's own error)
            except Exception as error:  # noqa: BLE001  (one bad message must not stop the rest)
                logger.exception("Sending message %s failed", message.pk)
                connection.discard()
                result = SendResult(Outcome.PERMANENT, None, f"{type(error).__name__}: {error}")
                report.errors.append(f"{message.pk}: {result.reply}")
                recorder.record(
                    _record_failures,
                    messages=[message],
                    result=result,
                    retry=False,
                    now=clock(),
                    report=report,
                )
                continue
            recorder.record(
                _record_result,
                server=server,
                message=message,
                result=result,
                now=clock(),
                report=report,
            )
            if not _all_accepted(result) and (
                _server_outcome(result) is not None
                or (result.outcome != Outcome.ACCEPTED and not connection.is_open)
            ):
                # The server paused, or the session died (a disconnect, a timeout, a service
                # that does not answer): the rest goes back to the queue untried, for a later
                # pass. A message the server cannot take (a refusal, an address it cannot
                # be given) fails alone, and the session goes on.
                completed = False
                break
    finally:
        try:
            recorder.flush()
        finally:
            connection.close()
            if remaining:
                report.requeued += outbox_release(messages=remaining, worker=worker)
    return report, completed


@contextlib.contextmanager
def _commits_without_flush():
    """Let this connection's commits return before the disk flush (SQLite in WAL mode:
    ``synchronous=NORMAL``; PostgreSQL: ``synchronous_commit=off``), for the results of a
    batch.

    A worker that dies (even by SIGKILL) loses nothing it committed: the data is with the
    operating system or the database server. Only a crash of the machine or the database
    itself may lose the last results; their messages then go out again, as any message
    whose result was not recorded. One flush per message would cost more than sending it.
    """
    db = transaction.get_connection()
    if db.in_atomic_block:
        # Inside a caller's transaction nothing commits here anyway.
        yield
        return
    restore = None
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0].lower() == "wal":
                cursor.execute("PRAGMA synchronous")
                restore = f"PRAGMA synchronous = {int(cursor.fetchone()[0])}"
                cursor.execute("PRAGMA synchronous = NORMAL")
        elif db.vendor == "postgresql":
            cursor.execute("SET synchronous_commit TO OFF")
            restore = "RESET synchronous_commit"
    try:
        yield
    finally:
        if restore is not None:
            with db.cursor() as cursor:
                cursor.execute(restore)


def _connection_batch(
    *,
    server_id: int,
    worker: str,
    clock,
    fixed_now: bool,
    batch_size: int,
    claim: tuple[SmtpServer | None, list[OutgoingMessage], DrainReport] | None = None,
) -> tuple[DrainReport, bool]:
    """Claim one batch of a server for ``worker`` (or take the ``claim`` made for it) and
    send it over one connection. Returns the report and whether more of this server may be
    sendable in this pass: after every completed batch, even a short one, the next claim
    decides. A pass that found all of the server's connections busy sending left what was
    committed meanwhile to the passes sending: a short batch does not mean nothing is left.
    """
    with _commits_without_flush():
        if claim is None:
            with _database_write():
                claim = outbox_claim(
                    server_id=server_id, worker=worker, now=clock(), batch_size=batch_size
                )
        server, claimed, report = claim
        if not claimed:
            # Nothing sendable now; if this batch was deferred (or failed) for the limit, the
            # next batch of the queue gets the same treatment in this pass.
            return report, bool(report.limit_deferred or report.failed)
        batch_report, completed = server_send_batch(
            server=server,
            messages=claimed,
            worker=worker,
            now=clock() if fixed_now else None,
        )
    report.add(batch_report)
    return report, completed


class _ConnectionPool:
    """Threads sending a server's batches side by side, each with its own database and SMTP
    connection, created once per pass and closed with it."""

    def __init__(self):
        self.size = SmtpServer._meta.get_field("max_connections").validators[-1].limit_value
        self.executor: ThreadPoolExecutor | None = None

    def run(self, calls) -> list:
        """Run each of ``calls`` (an iterable, taken one at a time: a call starts before the
        next is made) in a thread of the pool; their results in order."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.size, thread_name_prefix="mailadmin-drain")
        futures = [self.executor.submit(call) for call in calls]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self.executor is None:
            return
        # Every thread of the pool closes its own database connection: a task per thread,
        # held at a barrier so that no thread takes two.
        barrier = threading.Barrier(self.size)

        def close_own_connections():
            barrier.wait()
            connections.close_all()

        self.run([close_own_connections] * self.size)
        self.executor.shutdown()


def _server_round(
    *,
    server_id: int,
    worker: str,
    clock,
    fixed_now: bool,
    batch_size: int,
    pool: _ConnectionPool,
    deadline: float | None,
) -> tuple[DrainReport, bool]:
    """One batch of a server, or with ``max_connections`` above one, that many connections
    side by side, each claiming its own batches (under the server's lock and limit, as
    separate workers would) until nothing of the server is left to send in this pass or the
    time is up. Inside a transaction the drain keeps to one connection: other threads would
    not see its rows."""
    allowed = (
        SmtpServer.objects.filter(pk=server_id).values_list("max_connections", flat=True).first()
        or 1
    )
    if allowed == 1 or transaction.get_connection().in_atomic_block:
        return _connection_batch(
            server_id=server_id,
            worker=worker,
            clock=clock,
            fixed_now=fixed_now,
            batch_size=batch_size,
        )
    # A short queue is shared out between all the connections; a long one goes in full
    # batches (each claim holds the server's lock: fewer claims, less waiting).
    due = _due(now=clock()).filter(server_id=server_id)[: batch_size * allowed].count()
    size = max(1, min(batch_size, -(-due // allowed)))

    language = get_language()
    round_report = DrainReport()

    def connection_loop(index: int, claim) -> DrainReport:
        report = DrainReport()
        more = True
        # The pool's threads write in the drain's language, as the drain itself would.
        with translation.override(language):
            while claim or (more and (deadline is None or time.monotonic() < deadline)):
                batch_report, more = _connection_batch(
                    server_id=server_id,
                    worker=f"{worker}/{index}",
                    clock=clock,
                    fixed_now=fixed_now,
                    batch_size=size,
                    claim=claim,
                )
                claim = None
                report.add(batch_report)
        return report

    def connections_claimed():
        # The first batch of each connection is claimed here, one after the other, and the
        # connection starts at once: claims all at the same time would only queue for the
        # server's lock (on SQLite, for the database's, polling for it).
        for index in range(allowed):
            with _commits_without_flush(), _database_write():
                claim = outbox_claim(
                    server_id=server_id, worker=f"{worker}/{index}", now=clock(), batch_size=size
                )
            _server, claimed, claim_report = claim
            if not claimed and not (claim_report.limit_deferred or claim_report.failed):
                # Nothing left for another connection: the ones started share the rest.
                round_report.add(claim_report)
                return
            yield lambda index=index, claim=claim: connection_loop(index, claim)

    for connection_report in pool.run(connections_claimed()):
        round_report.add(connection_report)
    # Each connection stopped because nothing was left, the server stopped cooperating, or
    # the time was up (the pass then stops too).
    return round_report, False


def outbox_drain(
    *,
    worker: str | None = None,
    now: datetime | None = None,
    batch_size: int | None = None,
    time_budget: timedelta | None = None,
) -> DrainReport:
    """One pass over the outbox: release expired leases, then claim and send batches per
    server until nothing is due, a server stops cooperating, or ``time_budget`` is spent
    (``report.unfinished`` then says another pass should follow)."""
    clock = _clock(now)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    batch_size = batch_size or mailadmin_setting("BATCH_SIZE")
    started = time.monotonic()
    report = DrainReport(released=outbox_release_expired(now=clock()))
    finished: set[int] = set()
    pool = _ConnectionPool()
    try:
        while True:
            server_ids = [pk for pk in outbox_due_server_ids(now=clock()) if pk not in finished]
            if not server_ids:
                return report
            for server_id in server_ids:
                out_of_time = (
                    time_budget is not None
                    and time.monotonic() - started > time_budget.total_seconds()
                )
                if out_of_time and report.claimed:
                    # Work is left and the time is up (every pass sends at least one batch):
                    # the caller queues the next pass.
                    report.unfinished = True
                    return report
                round_report, more = _server_round(
                    server_id=server_id,
                    worker=worker,
                    clock=clock,
                    fixed_now=now is not None,
                    batch_size=batch_size,
                    pool=pool,
                    deadline=None if time_budget is None else started + time_budget.total_seconds(),
                )
                report.add(round_report)
                if not more:
                    finished.add(server_id)

    finally:
        pool.close()


# --- Staff actions -----------------------------------------------------------------------


class ActionNotAllowed(MailadminError, ValueError):
    """A staff action that does not apply to a message in its current state."""

    def __init__(self, message: str, *, status: str):
        super().__init__(message)
        self.status = status


def _message_locked(*, message: OutgoingMessage, allowed: tuple[str, ...]) -> OutgoingMessage:
    locked = OutgoingMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status not in allowed:
        raise ActionNotAllowed(
            str(
                _("This action does not apply to a message that is %(status)s.")
                % {"status": locked.get_status_display().lower()}
            ),
            status=locked.status,
        )
    return locked


def message_resend(*, message: OutgoingMessage, user) -> OutgoingMessage:
    """Failed → queued: its refused recipients are tried again, with a fresh retry age."""
    with transaction.atomic():
        locked = _message_locked(message=message, allowed=(OutgoingMessage.Status.FAILED,))
        locked.recipients.filter(status=Recipient.Status.REFUSED).update(
            status=Recipient.Status.PENDING, updated_at=timezone.now()
        )
        locked.status = OutgoingMessage.Status.QUEUED
        locked.next_attempt_at = None
        locked.last_error = ""
        locked.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
        MessageEvent.objects.create(message=locked, kind=MessageEvent.Kind.RESENT, user=user)
    return locked


def message_cancel(*, message: OutgoingMessage, user) -> OutgoingMessage:
    """Queued or deferred → cancelled: it will not be sent."""
    with transaction.atomic():
        locked = _message_locked(
            message=message,
            allowed=(OutgoingMessage.Status.QUEUED, OutgoingMessage.Status.DEFERRED),
        )
        locked.status = OutgoingMessage.Status.CANCELLED
        locked.next_attempt_at = None
        locked.save(update_fields=["status", "next_attempt_at", "updated_at"])
        MessageEvent.objects.create(message=locked, kind=MessageEvent.Kind.CANCELLED, user=user)
    return locked


def message_retry_now(
    *, message: OutgoingMessage, user, now: datetime | None = None
) -> OutgoingMessage:
    """Deferred → due now (the send limit and a paused server still apply)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _message_locked(message=message, allowed=(OutgoingMessage.Status.DEFERRED,))
        locked.next_attempt_at = now
        locked.save(update_fields=["next_attempt_at", "updated_at"])
        MessageEvent.objects.create(message=locked, kind=MessageEvent.Kind.RETRY_NOW, user=user)
        drain_soon()
    return locked


def outbox_wake_limit_deferred(*, server: SmtpServer, now: datetime | None = None) -> int:
    """After "Reset limit": mail of ``server`` waiting for the limit becomes due at once, and
    a drain is asked for. Returns how many messages woke up.

    Mail waiting for the limit is told apart from mail waiting to retry by its recipients:
    none of them was refused for now (``deferred``), they were simply not tried yet.
    """
    now = now or timezone.now()
    woken = (
        OutgoingMessage.objects.filter(
            server=server, status=OutgoingMessage.Status.DEFERRED, next_attempt_at__gt=now
        )
        .exclude(
            Exists(
                Recipient.objects.filter(message=OuterRef("pk"), status=Recipient.Status.DEFERRED)
            )
        )
        .update(next_attempt_at=now)
    )
    if woken:
        drain_soon()
    return woken


def drain_soon(checked: WaitingCheck | None = None) -> None:
    """Ask the cluster for a drain pass once the current transaction commits (at once
    outside one), unless the pass this process asked for last still waits untaken in the
    broker (it will claim what was committed before it starts: ``smtpconfig.wakeups``).
    Only the task's name travels: no message content, no secret.

    ``checked``: the answer of ``drain_waiting_check()``'s read, made by the caller after
    its commit; the broker is then not read again.

    The routing backend calls this after recording queued mail; the every-minute schedule
    catches any request a broker lost.
    """
    transaction.on_commit(
        lambda: task_request(DRAIN_TASK, task_name="drain outbox", checked=checked)
    )


def drain_waiting_check() -> WaitingCheck | None:
    """The read saying whether the drain pass asked for last still waits
    (``task_waiting_check``), to run with the caller's own statement once it has committed
    on the default database, and hand to ``drain_soon``; ``None`` when there is none."""
    return task_waiting_check(DRAIN_TASK, using=DEFAULT_DB_ALIAS)
