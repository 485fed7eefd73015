"""The drain's lean paths: a result's statements run on the driver's connection in one
transaction, and a claimed batch carries its recipient rows.

The statements commit for real here (``transaction=True``): what is checked is what another
connection would see afterwards, on SQLite and PostgreSQL alike.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from smtpconfig.delivery import _statements_commit, message_envelope, outbox_claim
from smtpconfig.models import MessageEvent, OutgoingMessage
from tests.queue.factory import queued_message

pytestmark = pytest.mark.django_db(transaction=True)

EVENT = MessageEvent._meta.db_table
INSERT_EVENT = f"INSERT INTO {EVENT} (message_id, kind, detail, created_at) VALUES (%s, %s, %s, %s)"  # noqa: S608
# A second row with the first one's primary key: the database refuses it.
INSERT_EVENT_WITH_ID = (
    f"INSERT INTO {EVENT} (id, message_id, kind, detail, created_at)"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s)"
)


def details(message):
    return sorted(MessageEvent.objects.filter(message=message).values_list("detail", flat=True))


def wall():
    return connection.ops.adapt_datetimefield_value(timezone.now())


def test_the_statements_commit_together(make_server):
    message = queued_message(server=make_server())
    before = details(message)
    _statements_commit(
        db=connection,
        statements=(INSERT_EVENT, INSERT_EVENT),
        params=[
            [message.pk, MessageEvent.Kind.ATTEMPT, "first", wall()],
            [message.pk, MessageEvent.Kind.SENT, "second", wall()],
        ],
    )
    assert not connection.in_atomic_block
    assert details(message) == sorted([*before, "first", "second"])


def test_a_refused_statement_undoes_the_ones_before_it_and_raises_djangos_error(make_server):
    message = queued_message(server=make_server())
    taken = MessageEvent.objects.filter(message=message).values_list("pk", flat=True).first()
    before = details(message)
    with pytest.raises(IntegrityError):
        _statements_commit(
            db=connection,
            statements=(INSERT_EVENT, INSERT_EVENT_WITH_ID),
            params=[
                [message.pk, MessageEvent.Kind.ATTEMPT, "written first", wall()],
                [taken, message.pk, MessageEvent.Kind.SENT, "refused", wall()],
            ],
        )
    assert details(message) == before
    # The connection is out of the failed transaction and takes the next statements.
    if connection.vendor == "sqlite":
        assert not connection.connection.in_transaction
    _statements_commit(
        db=connection,
        statements=(INSERT_EVENT,),
        params=[[message.pk, MessageEvent.Kind.ATTEMPT, "after", wall()]],
    )
    assert details(message) == sorted([*before, "after"])


def test_inside_a_callers_transaction_the_statements_join_it(make_server):
    message = queued_message(server=make_server())
    before = details(message)

    class CallerGaveUp(Exception):
        pass

    with pytest.raises(CallerGaveUp), transaction.atomic():
        _statements_commit(
            db=connection,
            statements=(INSERT_EVENT,),
            params=[[message.pk, MessageEvent.Kind.ATTEMPT, "in the caller's", wall()]],
        )
        assert "in the caller's" in details(message)
        raise CallerGaveUp
    assert details(message) == before


def test_a_claimed_batch_carries_its_recipient_rows(make_server):
    server = make_server()
    first = queued_message(server=server, to=("a@m.example", "B@m.example"), cc=("b@m.example",))
    second = queued_message(server=server, to=("c@m.example",))
    _server, claimed, _report = outbox_claim(
        server_id=server.pk, worker="w", now=timezone.now(), batch_size=10
    )
    assert [message.pk for message in claimed] == [first.pk, second.pk]
    with CaptureQueriesContext(connection) as queries:
        envelopes = [message_envelope(message=message) for message in claimed]
    assert envelopes == [["a@m.example", "B@m.example"], ["c@m.example"]]
    assert len(queries) == 0
    # A message read another way still finds its rows in the database.
    unclaimed = OutgoingMessage.objects.get(pk=second.pk)
    assert message_envelope(message=unclaimed) == ["c@m.example"]
