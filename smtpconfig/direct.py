"""Direct delivery: send recorded messages at once, in the caller's process; staff resends.

One connection per server serves every message of the call (and of later calls while the
backend stays open). Each message's result is recorded as soon as the server answered it,
through the same ``message_record_attempt`` the queue uses, with ``retry=False``: a
failure is final until staff resend the message.
"""

import os
import socket
from datetime import timedelta

from django.utils import timezone

from smtpconfig.conf import mailadmin_setting
from smtpconfig.connections import server_connection
from smtpconfig.delivery import message_envelope, message_record_attempt, message_resend
from smtpconfig.models import MailSettings, OutgoingMessage
from smtpconfig.replies import Outcome
from smtpconfig.tasks import drain_soon
from smtpconfig.transport import ConnectionFailed, SendResult


def direct_worker() -> str:
    """Who holds the lease of a message being sent directly (as a queue worker would)."""
    return f"direct:{socket.gethostname()}:{os.getpid()}"


def _attempt(*, message: OutgoingMessage, connections: dict, refused: dict) -> SendResult:
    server_id = message.server_id
    if server_id in refused:
        # The server would not take a session a moment ago in this call: report that again
        # rather than waiting for another timeout per message.
        return refused[server_id]
    connection = connections.get(server_id)
    if connection is None:
        connection = connections[server_id] = server_connection(message.server)
    if not connection.is_open:
        try:
            connection.open()
        except ConnectionFailed as error:
            refused[server_id] = SendResult(error.outcome, error.code, str(error))
            return refused[server_id]
    try:
        return connection.send(
            envelope_from=message.envelope_from,
            recipients=message_envelope(message=message),
            raw=bytes(message.raw),
        )
    except ValueError as error:
        # An address smtplib will not put on the wire: this message's fault, not the
        # server's; the session is left mid-transaction, so it is dropped.
        connection.discard()
        return SendResult(Outcome.PERMANENT, None, str(error))


def messages_deliver_direct(
    *, messages: list[OutgoingMessage], connections: dict
) -> list[OutgoingMessage]:
    """Send each message now and record its result; return the messages that failed.

    ``connections`` maps server ids to open connections; it is filled as servers are first
    needed and closed by its owner (the backend's ``close()``).
    """
    refused: dict[int, SendResult] = {}
    failed = []
    for message in messages:
        result = _attempt(message=message, connections=connections, refused=refused)
        message_record_attempt(message=message, result=result, retry=False)
        if message.status == OutgoingMessage.Status.FAILED:
            failed.append(message)
    return failed


def messages_resend(*, messages: list[OutgoingMessage], user) -> list[OutgoingMessage]:
    """Staff's "Resend": failed messages go out again; returns those that failed again.

    With ``delivery = queue`` they go back to the queue and a drain is asked for. With
    ``direct`` they are sent now, in this process, as the backend would: a site without a
    queue worker must still be able to resend. Each is claimed first (only if nobody else
    did), so a drain running meanwhile never sends one twice.
    """
    resent = [message_resend(message=message, user=user) for message in messages]
    if MailSettings.load().delivery != MailSettings.Delivery.DIRECT:
        drain_soon()
        return []
    now = timezone.now()
    claimed = []
    for message in resent:
        taken = OutgoingMessage.objects.filter(
            pk=message.pk, status=OutgoingMessage.Status.QUEUED
        ).update(
            status=OutgoingMessage.Status.SENDING,
            claimed_by=direct_worker(),
            lease_expires_at=now
            + timedelta(seconds=mailadmin_setting("LEASE_SECONDS") + message.server.timeout),
        )
        if taken:
            message.refresh_from_db()
            claimed.append(message)
    connections: dict = {}
    try:
        return messages_deliver_direct(messages=claimed, connections=connections)
    finally:
        for connection in connections.values():
            connection.close()
