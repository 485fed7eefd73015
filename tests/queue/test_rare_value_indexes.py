"""Columns that are nearly always empty are indexed only where they hold a value.

Recording a message then writes no index entry for its empty author, its recipients' empty
blacklist entry or its events' empty user, while every lookup by a value (the deletion of a
user or of a blacklist entry sets these columns to NULL through such a lookup) still reads
the index instead of the whole history, on SQLite and on PostgreSQL.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from blacklist.models import BlacklistEntry
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from tests.plans import query_plan

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "lookup", "index"),
    [
        (OutgoingMessage, "created_by", "smtpconfig_msg_created_by"),
        (MessageEvent, "user", "smtpconfig_event_user"),
        (Recipient, "blacklist_entry", "smtpconfig_rcpt_blacklisted"),
    ],
)
@pytest.mark.parametrize("form", ["exact", "in"])
def test_a_lookup_by_value_reads_the_partial_index(model, lookup, index, form):
    target = {"created_by": 7, "user": 7, "blacklist_entry": 7}[lookup]
    filters = {lookup: target} if form == "exact" else {f"{lookup}__in": [target, 8]}
    plan = query_plan(model.objects.filter(**filters).order_by())
    assert index in plan
    assert "Seq Scan" not in plan
    assert "SCAN " not in plan


def test_deleting_what_the_rare_columns_name_empties_them(staff, make_server):
    server = make_server()
    entry = BlacklistEntry.objects.create(email="gone@example.com")
    message = OutgoingMessage.objects.create(
        server=server,
        status=OutgoingMessage.Status.SUPPRESSED,
        message_id="<1@club.example>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        raw=b"Subject: x\r\n\r\nbody",
        created_by=staff,
    )
    recipient = message.recipients.create(
        email="gone@example.com", status=Recipient.Status.SUPPRESSED, blacklist_entry=entry
    )
    event = message.events.create(kind=MessageEvent.Kind.CANCELLED, user=staff)
    entry.delete()
    get_user_model().objects.filter(pk=staff.pk).delete()
    message.refresh_from_db()
    recipient.refresh_from_db()
    event.refresh_from_db()
    assert (message.created_by, recipient.blacklist_entry, event.user) == (None, None, None)
    assert recipient.status == Recipient.Status.SUPPRESSED


@pytest.mark.parametrize(
    ("model", "column", "index"),
    [
        (OutgoingMessage, "created_by_id", "smtpconfig_msg_created_by"),
        (MessageEvent, "user_id", "smtpconfig_event_user"),
        (Recipient, "blacklist_entry_id", "smtpconfig_rcpt_blacklisted"),
        (OutgoingMessage, "provider_message_id", None),
    ],
)
def test_the_migrations_leave_no_full_index_on_a_rare_column(model, column, index):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    on_column = sorted(
        name
        for name, constraint in constraints.items()
        if constraint["index"] and constraint["columns"] == [column]
    )
    assert on_column == ([index] if index else [])
