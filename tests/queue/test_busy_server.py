"""Two passes at once on a server with one connection: what the second pass found busy is
sent by the first, so a message committed while a pass sends never waits for the schedule.

The passes run in two threads with their own database connections, so these tests commit
for real (``transaction=True``).
"""

import threading
import time

import pytest
from django.db import connection

from smtpconfig.delivery import outbox_drain
from smtpconfig.models import OutgoingMessage
from tests.queue.factory import queued_message

pytestmark = pytest.mark.django_db(transaction=True)

Status = OutgoingMessage.Status


def _status(message: OutgoingMessage) -> str:
    return OutgoingMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def test_a_message_the_busy_server_turned_away_is_sent_by_the_pass_sending(sink, make_server):
    server = make_server(sink=sink)
    assert server.max_connections == 1
    first = queued_message(server=server)
    # The server takes a second over each message: the first pass is still sending when
    # the second message is committed and the second pass runs.
    sink.handler.data_delay = 1.0
    reports = {}

    def first_pass():
        try:
            reports["first"] = outbox_drain(worker="first-pass")
        finally:
            connection.close()

    thread = threading.Thread(target=first_pass)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while _status(first) != Status.SENDING:
            assert time.monotonic() < deadline, "the first pass never claimed its message"
            time.sleep(0.02)
        later = queued_message(server=server)
        reports["second"] = outbox_drain(worker="second-pass")
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    # The server's one connection was busy: the second pass claimed nothing...
    assert reports["second"].claimed == 0
    # ...and the first pass, done with its short batch, claimed again and sent the rest.
    assert reports["first"].claimed == reports["first"].sent == 2
    assert (_status(first), _status(later)) == (Status.SENT, Status.SENT)
    assert len(sink.received) == 2
