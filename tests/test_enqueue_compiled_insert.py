"""core.inserts: rows written by a composed INSERT read back as bulk_create's rows do."""

import contextlib
import sqlite3
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    NotSupportedError,
    connection,
    transaction,
)
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blacklist.models import BlacklistEntry
from core.compiled import CompiledQuery, _Session
from core.inserts import CompiledInsert
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient, SmtpServer

pytestmark = pytest.mark.django_db

MESSAGE_FIELDS = [
    "server_id",
    "status",
    "message_id",
    "subject",
    "raw",
    "test_mode",
    "attempts",
    "lease_expires_at",
    "created_by_id",
]
MESSAGE_ROWS = CompiledInsert(OutgoingMessage, MESSAGE_FIELDS)
RECIPIENT_ROWS = CompiledInsert(
    Recipient, ["message_id", "email", "kind", "status", "delivered_to", "blacklist_entry_id"]
)
EVENT_ROWS = CompiledInsert(MessageEvent, ["message_id", "kind", "detail", "user_id"])
# Text a database keeps as it is given (PostgreSQL refuses NUL in text, through either path).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)


def _stored(keys: list[int]) -> list[dict]:
    rows = OutgoingMessage.objects.filter(pk__in=keys).order_by("pk").values()
    return [
        {
            name: bytes(value) if isinstance(value, memoryview) else value
            for name, value in row.items()
            if name not in {"id", "created_at", "updated_at"}
        }
        for row in rows
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([*OutgoingMessage.Status, *OutgoingMessage.Status.values]),
            TEXT,
            st.one_of(TEXT, st.just(gettext_lazy("Queued for delivery."))),
            st.binary(max_size=300),
            st.booleans(),
            st.integers(min_value=0, max_value=2**31 - 1),
            st.none()
            | st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2100, 1, 1),
                timezones=st.just(UTC),
            ),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_rows_read_back_as_bulk_created_rows_do(make_server, rows):
    server = make_server()
    user = get_user_model().objects.get_or_create(username="office")[0]
    rows = [
        (
            server.pk,
            status,
            message_id,
            subject,
            raw,
            test_mode,
            attempts,
            lease,
            user.pk if by else None,
        )
        for status, message_id, subject, raw, test_mode, attempts, lease, by in rows
    ]
    keys = MESSAGE_ROWS.insert(rows)
    created = OutgoingMessage.objects.bulk_create(
        OutgoingMessage(**dict(zip(MESSAGE_FIELDS, row, strict=True))) for row in rows
    )
    assert _stored(keys) == _stored([message.pk for message in created])
    assert [row["subject"] for row in _stored(keys)] == [str(row[3]) for row in rows]
    OutgoingMessage.objects.all().delete()


def test_keys_come_back_in_the_rows_order_across_statements(make_server):
    server = make_server()
    rows = [
        (server.pk, "queued", f"<{n}@club.example>", f"Number {n}", b"", False, 0, None, None)
        for n in range(3_000)
    ]
    with contextlib.ExitStack() as stack:
        if connection.vendor == "sqlite":
            # A build of SQLite may take as few as 999 parameters a statement.
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
            stack.callback(
                connection.connection.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit
            )
        queries = stack.enter_context(CaptureQueriesContext(connection))
        keys = MESSAGE_ROWS.insert(rows)
    columns = len(OutgoingMessage._meta.concrete_fields) - 1  # all but the key
    per_statement = 999 // columns
    assert len(queries) == (1 if connection.vendor == "postgresql" else -(-3_000 // per_statement))
    subjects = dict(OutgoingMessage.objects.values_list("pk", "subject"))
    assert [subjects[key] for key in keys] == [f"Number {n}" for n in range(3_000)]


def test_fields_not_given_get_their_default_and_one_instant(make_server):
    server = make_server()
    before = timezone.now()
    (key,) = MESSAGE_ROWS.insert([(server.pk, "queued", "<1@c>", "Hi", b"x", False, 0, None, None)])
    message = OutgoingMessage.objects.get(pk=key)
    assert before <= message.created_at == message.updated_at <= timezone.now()
    assert (message.claimed_by, message.last_error, message.sent_at) == ("", "", None)
    assert message.original_from == "" and message.next_attempt_at is None


def test_a_field_class_of_its_own_prepares_its_values():
    # The password is encrypted by its field on the way in, as with the ORM.
    servers = CompiledInsert(SmtpServer, ["name", "sender_email", "host", "username", "password"])
    for rows in (
        [("Club", "office@club.example", "127.0.0.1", "u", "s3cret")],
        [(f"Club {n}", "office@club.example", "127.0.0.1", "u", "s3cret") for n in range(2)],
    ):
        for key in servers.insert(rows):
            assert str(SmtpServer.objects.get(pk=key).password) == "s3cret"
            with connection.cursor() as cursor:
                cursor.execute("SELECT password FROM smtpconfig_smtpserver WHERE id = %s", [key])
                assert "s3cret" not in str(cursor.fetchone()[0])


def test_a_callable_default_is_called_for_each_row(django_user_model):
    user = django_user_model.objects.create_user("office")
    devices = CompiledInsert(TOTPDevice, ["user_id", "name"])
    devices.insert([(user.pk, "phone"), (user.pk, "tablet")], returning=False)
    keys = set(TOTPDevice.objects.values_list("key", flat=True))
    assert len(keys) == 2 and all(len(key) == 40 for key in keys)


def test_without_returning_the_rows_are_written_and_nothing_is_read(make_server):
    (key,) = MESSAGE_ROWS.insert(
        [(make_server().pk, "queued", "<1@c>", "Hi", b"", False, 0, None, None)]
    )
    assert (
        EVENT_ROWS.insert([(key, "recorded", "a", None), (key, "note", "b", None)], returning=False)
        is None
    )
    assert list(MessageEvent.objects.order_by("pk").values_list("kind", "detail")) == [
        ("recorded", "a"),
        ("note", "b"),
    ]
    assert MESSAGE_ROWS.insert([]) == [] and EVENT_ROWS.insert([], returning=False) is None


def test_a_row_the_database_refuses_fails_the_statement_and_writes_none_of_it(make_server):
    server = make_server()
    rows = [
        (server.pk, "queued", "<1@c>", "Fine", b"", False, 0, None, None),
        (server.pk, "queued", None, "No Message-ID", b"", False, 0, None, None),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        MESSAGE_ROWS.insert(rows)
    assert not OutgoingMessage.objects.exists()


def test_fields_are_named_by_attribute():
    with pytest.raises(ValueError, match="server_id"):
        CompiledInsert(OutgoingMessage, ["server", "subject"])


def test_a_database_that_returns_no_keys_is_refused_before_writing(make_server, monkeypatch):
    server = make_server()
    row = (server.pk, "queued", "<1@c>", "Hi", b"", False, 0, None, None)
    monkeypatch.setattr(connection.features, "can_return_rows_from_bulk_insert", False)
    with pytest.raises(NotSupportedError, match="returns no keys"):
        MESSAGE_ROWS.insert([row])
    assert not OutgoingMessage.objects.exists()
    # Without keys asked for, it writes as any database does.
    assert MESSAGE_ROWS.insert([row, row], returning=False) is None
    assert OutgoingMessage.objects.count() == 2


def _family(message_pk: int) -> tuple:
    return (
        _stored([message_pk]),
        list(
            Recipient.objects.filter(message_id=message_pk)
            .order_by("pk")
            .values_list("email", "kind", "status", "delivered_to", "blacklist_entry_id")
        ),
        list(
            MessageEvent.objects.filter(message_id=message_pk)
            .order_by("pk")
            .values_list("kind", "detail", "user_id")
        ),
    )


def test_one_row_and_its_children_are_one_statement_on_postgresql(make_server):
    server = make_server()
    user = get_user_model().objects.create(username="office")
    entry = BlacklistEntry.objects.create(email="gone@golf.example")
    row = (
        server.pk,
        "queued",
        "<1@c>",
        gettext_lazy("Queued for delivery."),
        b"\x00\xff",
        True,
        0,
        datetime(2026, 11, 27, 12, tzinfo=UTC),
        user.pk,
    )
    recipients = [
        (None, "a@golf.example", "to", "pending", "a@golf.example", None),
        (None, "gone@golf.example", "cc", Recipient.Status.SUPPRESSED, "", entry.pk),
        (None, "Jörg@müller.example", "bcc", "pending", "", None),
    ]
    events = [(None, "recorded", "Route: the default server.\nQueued.", user.pk)]
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        (key,) = MESSAGE_ROWS.insert_with(
            [row], children=[(RECIPIENT_ROWS, [recipients]), (EVENT_ROWS, [events])]
        )
    # Leaving out the transaction's own statements (SQLite's, inside the test's transaction).
    sent = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(sent) == (1 if connection.vendor == "postgresql" else 3)
    # The same rows as the INSERTs one by one write, defaults and instants included.
    (by_statements,) = MESSAGE_ROWS.insert([row])
    RECIPIENT_ROWS.insert([(by_statements, *r[1:]) for r in recipients], returning=False)
    EVENT_ROWS.insert([(by_statements, *e[1:]) for e in events], returning=False)
    assert _family(key) == _family(by_statements)
    assert _family(key)[1][1] == ("gone@golf.example", "cc", "suppressed", "", entry.pk)
    recipient = Recipient.objects.filter(message_id=key).first()
    event = MessageEvent.objects.get(message_id=key)
    assert before <= recipient.updated_at <= timezone.now()
    assert before <= event.created_at <= timezone.now()
    # A model without children is one row, as with insert().
    (lonely,) = MESSAGE_ROWS.insert_with([row])
    assert _stored([lonely]) == _stored([key])


def test_a_child_the_database_refuses_leaves_nothing_of_the_family(make_server):
    server = make_server()
    row = (server.pk, "queued", "<1@c>", "Hi", b"", False, 0, None, None)
    recipients = [
        (None, "a@golf.example", "to", "pending", "a@golf.example", None),
        (None, "b@golf.example", None, "pending", "b@golf.example", None),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        MESSAGE_ROWS.insert_with([row], children=[(RECIPIENT_ROWS, [recipients])])
    assert not OutgoingMessage.objects.exists() and not Recipient.objects.exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite does not check a text's length"
)
def test_a_child_value_too_long_for_its_column_is_refused_not_cut(make_server):
    row = (make_server().pk, "queued", "<1@c>", "Hi", b"", False, 0, None, None)
    recipients = [(None, "b@golf.example", "to", "x" * 13, "b@golf.example", None)]
    with pytest.raises(DatabaseError, match="too long"), transaction.atomic():
        MESSAGE_ROWS.insert_with([row], children=[(RECIPIENT_ROWS, [recipients])])
    assert not OutgoingMessage.objects.exists() and not Recipient.objects.exists()


def test_children_must_point_to_the_parent_by_their_first_field():
    wrong = CompiledInsert(Recipient, ["email", "message_id"])
    with pytest.raises(ValueError, match="first field must point to OutgoingMessage"):
        MESSAGE_ROWS.insert_with(
            [(1, "queued", "<1@c>", "Hi", b"", False, 0, None, None)],
            children=[(wrong, [[("a@golf.example", None)]])],
        )
    assert not OutgoingMessage.objects.exists()


# The reads after the commit: outside any transaction, so these tests commit for real.
MESSAGE_BY_ID = CompiledQuery(lambda: OutgoingMessage.objects.filter(message_id="").order_by())
SERVER_BY_KEY = CompiledQuery(lambda: SmtpServer.objects.filter(pk=0).order_by())


@pytest.mark.django_db(transaction=True)
def test_reads_after_the_commit_see_the_rows_and_go_with_them_on_postgresql(make_server):
    server = make_server()
    row = (server.pk, "queued", "<then@c>", "Hi", b"raw", False, 0, None, None)
    recipients = [(None, "a@golf.example", "to", "pending", "a@golf.example", None)]
    with CaptureQueriesContext(connection) as queries:
        (key,), (messages, servers) = MESSAGE_ROWS.insert_with_then(
            [row],
            children=[(RECIPIENT_ROWS, [recipients])],
            then=[(MESSAGE_BY_ID, ["<then@c>"]), (SERVER_BY_KEY, [server.pk])],
        )
    # The reads found the message just written, and the other read its own row.
    assert [instance.pk for instance in MESSAGE_BY_ID.instances(messages)] == [key]
    assert [instance.pk for instance in SERVER_BY_KEY.instances(servers)] == [server.pk]
    assert Recipient.objects.get(message_id=key).email == "a@golf.example"
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # One message: the rows' own transaction, committed before the reads.
        (statement,) = statements
        assert statement.startswith("BEGIN; ")
        assert statement.count("; COMMIT; SELECT ") == 1
    else:
        assert sum("INSERT" in sql for sql in statements) == 2
        assert sum(sql.startswith("SELECT") for sql in statements) == 2
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_rows_refused_before_the_reads_leave_nothing_and_the_connection_goes_on(make_server):
    server = make_server()
    row = (server.pk, "queued", "<refused@c>", "Hi", b"", False, 0, None, None)
    recipients = [(None, "b@golf.example", None, "pending", "b@golf.example", None)]
    with pytest.raises(IntegrityError):
        MESSAGE_ROWS.insert_with_then(
            [row],
            children=[(RECIPIENT_ROWS, [recipients])],
            then=[(MESSAGE_BY_ID, ["<refused@c>"])],
        )
    assert not OutgoingMessage.objects.exists() and not Recipient.objects.exists()
    # Not left in a failed transaction: the next rows go in and are committed.
    (key,), (messages,) = MESSAGE_ROWS.insert_with_then(
        [(server.pk, "queued", "<next@c>", "Hi", b"", False, 0, None, None)],
        then=[(MESSAGE_BY_ID, ["<next@c>"])],
    )
    assert [instance.pk for instance in MESSAGE_BY_ID.instances(messages)] == [key]


def test_reads_after_the_commit_are_refused_inside_a_transaction(make_server):
    server = make_server()
    with pytest.raises(TransactionManagementError, match="outside a transaction"):
        MESSAGE_ROWS.insert_with_then(
            [(server.pk, "queued", "<in@c>", "Hi", b"", False, 0, None, None)],
            then=[(MESSAGE_BY_ID, ["<in@c>"])],
        )
    assert not OutgoingMessage.objects.exists()


# --- The rows' statement prepared once per PostgreSQL session (outside a transaction) -----

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL prepares the statements of a session"
)
# A subject and bytes that must travel as they are: quotes, a percent sign, a semicolon.
ODD_SUBJECT = "l'été; 100 %% sûr -- ou pas"
ODD_RAW = b"\x00\xff';%s--"


def written_then_read(message_id: str, recipients=None) -> tuple[int, list, list[str]]:
    """``insert_with_then`` for one message: its key, the read of it, the messages sent."""
    server_pk = SmtpServer.objects.values_list("pk", flat=True).first()
    row = (server_pk, "queued", message_id, ODD_SUBJECT, ODD_RAW, False, 0, None, None)
    recipients = recipients or [(None, "a@golf.example", "to", "pending", "a@golf.example", None)]
    with CaptureQueriesContext(connection) as queries:
        (key,), (messages,) = MESSAGE_ROWS.insert_with_then(
            [row],
            children=[(RECIPIENT_ROWS, [recipients])],
            then=[(MESSAGE_BY_ID, [message_id])],
        )
    return key, messages, [q["sql"] for q in queries.captured_queries]


def written(message_id: str) -> list[tuple]:
    return list(
        OutgoingMessage.objects.filter(message_id=message_id).values_list(
            "server_id", "status", "subject", "raw", "test_mode", "attempts", "recipients__email"
        )
    )


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_rows_statement_is_prepared_in_its_first_message_then_run_by_name(
    make_server, fresh_session
):
    make_server()
    key, messages, (first,) = written_then_read("<first@c>")
    assert first.startswith("BEGIN; PREPARE mailadmin_") and " AS WITH parent AS " in first
    assert first.count("; EXECUTE mailadmin_") == 1 and first.count("; COMMIT; SELECT ") == 1
    again, _messages, (second,) = written_then_read("<second@c>")
    assert second.startswith("BEGIN; EXECUTE mailadmin_") and "WITH" not in second
    assert [m.pk for m in MESSAGE_BY_ID.instances(messages)] == [key] and again != key
    # The rows a plain statement writes, the odd values included.
    with transaction.atomic():
        MESSAGE_ROWS.insert_with(
            [(make_server().pk, "queued", "<plain@c>", ODD_SUBJECT, ODD_RAW, False, 0, None, None)],
            children=[
                (
                    RECIPIENT_ROWS,
                    [[(None, "a@golf.example", "to", "pending", "a@golf.example", None)]],
                )
            ],
        )
    (plain,) = written("<plain@c>")
    assert (
        written("<first@c>") == written("<second@c>") == [(written("<first@c>")[0][0], *plain[1:])]
    )
    assert bytes(plain[3]) == ODD_RAW and plain[2] == ODD_SUBJECT


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_rows_statement_the_server_forgot_writes_the_rows_once_plain_in_the_same_call(
    make_server, fresh_session
):
    make_server()
    written_then_read("<before@c>")
    with connection.cursor() as cursor:
        # A proxy moving the connection to another server session, say.
        cursor.execute("DEALLOCATE ALL")
    key, messages, sent = written_then_read("<forgotten@c>")
    # By name first: refused before the COMMIT, so nothing written; then plain.
    assert [message.split(" ", 2)[1] for message in sent] == ["EXECUTE", "WITH"]
    assert len(written("<forgotten@c>")) == 1
    assert [m.pk for m in MESSAGE_BY_ID.instances(messages)] == [key]
    # Prepared again, under a new name.
    _key, _messages, (message,) = written_then_read("<after@c>")
    assert message.startswith("BEGIN; PREPARE mailadmin_1_")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_read_failing_after_the_commit_never_writes_the_rows_again(
    make_server, fresh_session, monkeypatch
):
    """Past the COMMIT the rows are written: the message must not run again, whatever the
    read's error (here one made to look like a forgotten statement's)."""
    server = make_server()
    monkeypatch.setattr(_Session, "RETRY_STATES", _Session.RETRY_STATES | {"22P02"})
    row = (server.pk, "queued", "<committed@c>", "Hi", b"", False, 0, None, None)
    with CaptureQueriesContext(connection) as queries, pytest.raises(DataError):
        MESSAGE_ROWS.insert_with_then([row], then=[(SERVER_BY_KEY, ["not a number"])])
    assert len(queries.captured_queries) == 1
    assert OutgoingMessage.objects.filter(message_id="<committed@c>").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_rows_a_prepared_statement_refuses_leave_nothing_and_the_next_are_prepared_anew(
    make_server, fresh_session
):
    make_server()
    written_then_read("<prepared@c>")
    refused = [(None, "b@golf.example", None, "pending", "b@golf.example", None)]
    with CaptureQueriesContext(connection) as queries, pytest.raises(IntegrityError):
        written_then_read("<refused@c>", recipients=refused)
    # Refused by the table, not by the name: not run again.
    (message,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("BEGIN")]
    assert message.startswith("BEGIN; EXECUTE mailadmin_0_")
    assert not written("<refused@c>")
    # What the failed message prepared is not relied on: new names, prepared again.
    _key, _messages, (message,) = written_then_read("<next@c>")
    assert message.startswith("BEGIN; PREPARE mailadmin_1_")
    assert len(written("<next@c>")) == 1


# --- Rows written unless a read finds a row ------------------------------------------------

SERVER_NAMED = CompiledQuery(lambda: SmtpServer.objects.filter(name="").order_by())


def written_unless(message_id: str, name: str) -> tuple[list[int], list, list[str]]:
    """One message and its recipient written unless a server named ``name`` exists; the
    keys, the rows of the read after the commit, the messages sent."""
    server_pk = SmtpServer.objects.values_list("pk", flat=True).first()
    row = (server_pk, "queued", message_id, ODD_SUBJECT, ODD_RAW, False, 0, None, None)
    recipients = [(None, "a@golf.example", "to", "pending", "a@golf.example", None)]
    with CaptureQueriesContext(connection) as queries:
        keys, (messages,) = MESSAGE_ROWS.insert_with_then(
            [row],
            children=[(RECIPIENT_ROWS, [recipients])],
            then=[(MESSAGE_BY_ID, [message_id])],
            unless=[(SERVER_NAMED, [name])],
        )
    return keys, messages, [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_rows_are_written_where_the_reads_unless_find_nothing(make_server):
    make_server(name="Club")
    keys, messages, sent = written_unless("<kept@c>", "Nobody")
    assert [m.pk for m in MESSAGE_BY_ID.instances(messages)] == keys and len(keys) == 1
    ((_server, status, subject, raw, *_rest, email),) = written("<kept@c>")
    assert (status, subject, bytes(raw), email) == (
        "queued",
        ODD_SUBJECT,
        ODD_RAW,
        "a@golf.example",
    )
    if connection.vendor == "postgresql":
        # The read is made by the statement that writes: one message, one round trip.
        (message,) = sent
        assert message.startswith("BEGIN; ") and message.count("; COMMIT; SELECT ") == 1


@pytest.mark.django_db(transaction=True)
def test_where_a_read_unless_finds_a_row_nothing_is_written_and_the_reads_after_still_run(
    make_server,
):
    make_server(name="Club")
    MESSAGE_ROWS.insert_with_then(
        [(SmtpServer.objects.get().pk, "queued", "<there@c>", "Hi", b"", False, 0, None, None)],
        then=[(MESSAGE_BY_ID, ["<there@c>"])],
    )
    keys, messages, _sent = written_unless("<there@c>", "Club")
    assert keys == []
    # Only the message written before: not the refused one, nor its recipient.
    assert len(MESSAGE_BY_ID.instances(messages)) == 1
    assert OutgoingMessage.objects.count() == 1 and not Recipient.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_rows_written_unless_are_prepared_once_and_the_read_runs_with_each_call(
    make_server, fresh_session
):
    make_server(name="Club")
    _keys, _messages, (first,) = written_unless("<one@c>", "Nobody")
    assert first.startswith("BEGIN; PREPARE mailadmin_") and " WHERE NOT (EXISTS (" in first
    keys, _messages, (second,) = written_unless("<two@c>", "Nobody")
    assert second.startswith("BEGIN; EXECUTE mailadmin_") and len(keys) == 1
    # The same prepared statement, its read now finding a row: nothing written.
    make_server(name="Golf")
    keys, _messages, (third,) = written_unless("<three@c>", "Golf")
    assert third.startswith("BEGIN; EXECUTE mailadmin_") and keys == []
    assert not written("<three@c>")


def test_rows_written_unless_are_refused_inside_a_transaction(make_server):
    make_server(name="Club")
    with pytest.raises(TransactionManagementError):
        written_unless("<inside@c>", "Nobody")
    assert not OutgoingMessage.objects.exists()
