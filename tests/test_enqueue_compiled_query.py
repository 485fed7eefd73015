"""core.compiled: a query composed once gives the instances the queryset gives."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from blacklist.models import BlacklistEntry
from core.compiled import CompiledQuery, _numbered, _Session, rows_together
from smtpconfig.models import SmtpServer

pytestmark = pytest.mark.django_db


def test_instances_match_the_orm_with_converters_and_related_objects(
    django_user_model, make_server, django_assert_num_queries
):
    user = django_user_model.objects.create_user("manager", password="pw")
    entry = BlacklistEntry.objects.create(email="gone@golf.example", created_by=user)
    BlacklistEntry.objects.create(email="@spam.example")
    query = CompiledQuery(
        lambda: BlacklistEntry.objects.filter(email__in=["0@", "1@"]).select_related("created_by")
    )
    with django_assert_num_queries(1):
        (found,) = query.instances(query.rows(["gone@golf.example", "other@golf.example"]))
        assert found.created_by == user  # came with the row
    assert found == entry
    assert found.created_at == BlacklistEntry.objects.get(pk=entry.pk).created_at
    assert found._state.adding is False

    server = make_server(use_auth=True, username="u", password="s3cret")
    servers = CompiledQuery(lambda: SmtpServer.objects.order_by("pk"))
    (read,) = servers.instances(servers.rows())
    assert str(read.password) == "s3cret"  # decrypted, like the ORM does
    assert read.is_default is False and read.port == server.port


def test_the_composed_parameters_are_used_when_none_are_given(make_server):
    make_server(name="A")
    make_server(name="B")
    query = CompiledQuery(lambda: SmtpServer.objects.filter(name="B"))
    assert [server.name for server in query.instances(query.rows())] == ["B"]
    assert [server.name for server in query.instances(query.rows(["A"]))] == ["A"]


def test_a_wrong_number_of_parameters_is_refused():
    query = CompiledQuery(lambda: BlacklistEntry.objects.filter(email__in=["0@", "1@"]))
    with pytest.raises(ValueError, match="2 parameters expected, 3 given"):
        query.rows(["a@b.example", "c@d.example", "e@f.example"])


@pytest.mark.parametrize(
    "queryset_factory",
    [
        lambda: SmtpServer.objects.annotate(count=Count("messages")),
        lambda: SmtpServer.objects.values("name"),
        lambda: SmtpServer.objects.only("name"),
        lambda: SmtpServer.objects.defer("password"),
    ],
    ids=["annotate", "values", "only", "defer"],
)
def test_queries_whose_rows_are_not_whole_instances_are_refused(queryset_factory):
    with pytest.raises(TypeError, match="cannot be compiled"):
        CompiledQuery(queryset_factory).rows()


def test_reads_together_give_each_query_its_rows_in_one_round_trip_on_postgresql(
    django_user_model, make_server
):
    user = django_user_model.objects.create_user("manager", password="pw")
    BlacklistEntry.objects.create(email="gone@golf.example", created_by=user)
    BlacklistEntry.objects.create(email="@spam.example")
    make_server(name="A", use_auth=True, username="u", password="s3cret")
    make_server(name="B")
    entries = CompiledQuery(
        lambda: BlacklistEntry.objects.filter(email__in=["0@", "1@"]).select_related("created_by")
    )
    servers = CompiledQuery(lambda: SmtpServer.objects.filter(name="A"))
    # A literal percent sign and a semicolon travel as values, never as SQL.
    reads = [
        (entries, ["gone@golf.example", "100%; DROP TABLE x"]),
        (servers, None),
        (servers, ["B"]),
        (entries, ["nobody@golf.example", "@spam.example"]),
        (servers, ["none"]),
    ]
    with CaptureQueriesContext(connection) as queries:
        together = rows_together(reads)
    assert len(queries) == (1 if connection.vendor == "postgresql" else len(reads))
    assert together == [query.rows(params) for query, params in reads]
    (entry,) = entries.instances(together[0])
    assert entry.created_by == user
    (server,) = servers.instances(together[1])
    assert str(server.password) == "s3cret"
    assert [len(rows) for rows in together] == [1, 1, 1, 1, 0]
    assert rows_together([]) == []


def test_a_read_that_fails_raises_the_database_error_and_the_connection_goes_on(
    make_server,
):
    make_server(name="A")
    servers = CompiledQuery(lambda: SmtpServer.objects.filter(name="A"))
    by_port = CompiledQuery(lambda: SmtpServer.objects.filter(port=25))
    # PostgreSQL's server refuses the second statement (text for a number); SQLite's driver
    # refuses a value it cannot bind.
    port = "not a number" if connection.vendor == "postgresql" else object()
    with pytest.raises(DatabaseError), transaction.atomic():
        rows_together([(servers, None), (by_port, [port])])
    assert [server.name for server in servers.instances(rows_together([(servers, None)])[0])] == [
        "A"
    ]


def test_reads_together_refuse_a_wrong_number_of_parameters_before_sending_anything():
    servers = CompiledQuery(lambda: SmtpServer.objects.filter(name="A"))
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(ValueError, match="1 parameters expected, 2 given"),
    ):
        rows_together([(servers, None), (servers, ["A", "B"])])
    assert len(queries) == 0


# --- Reads prepared once per PostgreSQL session (outside a transaction) -------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL prepares the reads of a session"
)
BY_EMAIL = CompiledQuery(lambda: BlacklistEntry.objects.filter(email="").order_by("pk"))
BY_NAME = CompiledQuery(lambda: SmtpServer.objects.filter(name="").order_by("pk"))


def sent(reads) -> tuple[list, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        rows = rows_together(reads)
    return rows, [q["sql"] for q in queries.captured_queries]


def emails(rows) -> list[str]:
    return [entry.email for entry in BY_EMAIL.instances(rows)]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_reads_are_prepared_in_their_first_message_then_run_by_name(make_server, fresh_session):
    # Quotes, a percent sign and a semicolon in a value travel as they are.
    odd = "o'brien%;--@golf.example"
    BlacklistEntry.objects.create(email=odd)
    make_server(name="A")
    reads = [(BY_EMAIL, [odd]), (BY_NAME, ["A"])]
    first, (message,) = sent(reads)
    assert message.count("PREPARE ") == 2 and message.count("EXECUTE ") == 2
    again, (message,) = sent(reads)
    assert "PREPARE" not in message and message.count("EXECUTE ") == 2
    assert first == again
    assert emails(first[0]) == [odd]
    assert [server.name for server in BY_NAME.instances(first[1])] == ["A"]
    # The same rows as the plain statements give.
    with transaction.atomic():
        plain, (message,) = sent(reads)
    assert "EXECUTE" not in message and plain == first


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_statements_the_server_forgot_are_run_plain_then_prepared_again(fresh_session):
    BlacklistEntry.objects.create(email="gone@golf.example")
    reads = [(BY_EMAIL, ["gone@golf.example"]), (BY_NAME, ["A"])]
    sent(reads)
    for forgotten in range(_Session.RETRIES):
        # A proxy moving the connection to another server session, say.
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        rows, messages = sent(reads)
        assert emails(rows[0]) == ["gone@golf.example"]
        # The message by name failed; the reads ran again, plain, in the same call.
        assert [message.startswith("EXECUTE") for message in messages] == [True, False]
        if forgotten < _Session.RETRIES - 1:
            # Then prepared again, under new names.
            rows, (message,) = sent(reads)
            assert message.count("PREPARE ") == 2
    # Forgotten too often: this session's reads run plain from now on.
    rows, (message,) = sent(reads)
    assert emails(rows[0]) == ["gone@golf.example"]
    assert "PREPARE" not in message and "EXECUTE" not in message


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_read_the_database_refuses_raises_and_the_next_reads_are_prepared_anew(
    make_server, fresh_session
):
    make_server(name="A")
    by_port = CompiledQuery(lambda: SmtpServer.objects.filter(port=25))
    with pytest.raises(DatabaseError):
        sent([(BY_NAME, ["A"]), (by_port, ["not a number"])])
    # What the failed message prepared is not relied on: new names, prepared again.
    rows, (message,) = sent([(BY_NAME, ["A"])])
    assert message.startswith("PREPARE ")
    assert [server.name for server in BY_NAME.instances(rows[0])] == ["A"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_past_its_limit_a_session_runs_new_shapes_plain(fresh_session, monkeypatch):
    monkeypatch.setattr(_Session, "LIMIT", 1)
    sent([(BY_EMAIL, ["a@golf.example"])])
    _rows, (message,) = sent([(BY_EMAIL, ["a@golf.example"]), (BY_NAME, ["A"])])
    assert message.startswith("EXECUTE ") and message.count("EXECUTE") == 1
    assert "PREPARE" not in message and '"smtpconfig_smtpserver"' in message


def test_placeholders_are_numbered_for_prepare_and_a_literal_percent_stays_escaped():
    assert _numbered("a = %s AND b LIKE '%%x' AND c IN (%s, %s)") == (
        "a = $1 AND b LIKE '%%x' AND c IN ($2, $3)"
    )


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_of_the_callers_own_the_reads_run_plain(fresh_session):
    """A failed message there would doom the caller's transaction: nothing is prepared."""
    connection.set_autocommit(False)
    try:
        _rows, (message,) = sent([(BY_NAME, ["A"])])
    finally:
        connection.rollback()
        connection.set_autocommit(True)
    assert "PREPARE" not in message and "EXECUTE" not in message
