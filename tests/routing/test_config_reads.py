"""What one send_mail reads, and that a change however written applies to the next message.

The backend reads the settings, the active servers and the active DKIM keys as whole rows on
every call and rebuilds instances only when those rows changed; on PostgreSQL a call plans
with what the call before read, and its write checks that nothing it relies on changed. These
tests change the rows the ways the portal, scripts and other processes do
(``queryset.update()`` and ``delete()``, which no signal or ``updated_at`` reveals), on a
connection of their own, and send the next message. Each test starts with nothing kept, as a
new process does: what an earlier test kept must not decide whether a later one passes.
"""

import re
import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.mail import send_mail
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import OrmQ

from blacklist.models import BlacklistEntry
from smtpconfig.delivery import server_pause
from smtpconfig.dkim import dkim_key_generate
from smtpconfig.exceptions import DecryptionError, NoServerAvailable
from smtpconfig.models import (
    DkimKey,
    MailSettings,
    MessageEvent,
    OutgoingMessage,
    Recipient,
    SmtpServer,
)
from smtpconfig.selectors import _last_config, routing_config, routing_kept

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def nothing_kept():
    _last_config.clear()
    yield
    _last_config.clear()


CONTROL = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT"}
TABLES = [
    model._meta.db_table
    for model in (
        MailSettings,
        SmtpServer,
        DkimKey,
        BlacklistEntry,
        OutgoingMessage,
        Recipient,
        MessageEvent,
        OrmQ,
    )
]


def elsewhere(change) -> None:
    """Run ``change`` on a connection of its own, committed, like another process would."""

    def run():
        try:
            change()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def send(subject: str, sender: str = "info@club.example") -> OutgoingMessage:
    send_mail(subject, "Body", sender, ["member@golf.example"])
    return OutgoingMessage.objects.get(subject__endswith=subject)


def queue_mode() -> None:
    MailSettings.objects.update_or_create(pk=1, defaults={"delivery": "queue"})


def tables_in(sql: str) -> list[str]:
    return sorted((t for t in TABLES if f'"{t}"' in sql), key=lambda t: sql.index(f'"{t}"'))


def prepared_spelt_out(sql: str) -> str:
    """``sql`` with each ``EXECUTE name(…)`` of a statement prepared in this session replaced
    by that statement's text (PostgreSQL; ``core.compiled`` runs reads by name)."""
    if connection.vendor != "postgresql":
        return sql
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        texts = dict(cursor.fetchall())
    return re.sub(r"EXECUTE (\w+)(\([^;]*\))?", lambda match: texts[match[1]], sql)


def counted_send(subject: str) -> list[str]:
    """The statements of one ``send_mail``, each ``EXECUTE`` spelt out; without the
    ``BEGIN`` and ``COMMIT`` SQLite shows as statements of their own (PostgreSQL does not)."""
    with CaptureQueriesContext(connection) as queries:
        send_mail(subject, "Body", "info@club.example", ["member@golf.example"])
    return [
        prepared_spelt_out(q["sql"]) for q in queries.captured_queries if q["sql"] not in CONTROL
    ]


def test_one_send_mail_reads_four_tables_together_and_writes_three_at_once(servers):
    queue_mode()
    get_broker().purge_queue()
    send("warm-up")
    statements = counted_send("Counted")
    # The settings, the active servers, the active DKIM keys; the blacklist for this
    # message's recipients: one round trip on PostgreSQL, four reads in the process on SQLite.
    reads = [
        MailSettings._meta.db_table,
        SmtpServer._meta.db_table,
        DkimKey._meta.db_table,
        BlacklistEntry._meta.db_table,
    ]
    # The message, its recipient and its event: one statement on PostgreSQL, one transaction
    # on SQLite.
    writes = [
        OutgoingMessage._meta.db_table,
        Recipient._meta.db_table,
        MessageEvent._meta.db_table,
    ]
    # The drain task the warm-up queued still waits: a look at it (in the database when it
    # is the broker), no second task. On PostgreSQL it goes with the writes, after their
    # COMMIT: one round trip for both.
    look = [OrmQ._meta.db_table] if isinstance(get_broker(), ORM) else []
    if connection.vendor == "postgresql":
        # The configuration the warm-up read is kept; the statement writing the message
        # checks it is still what the tables hold, and that no recipient is blacklisted: all
        # in one round trip (see the tests of the kept configuration below).
        (statement,) = statements
        assert tables_in(statement) == [writes[0], *reads, *writes[1:], *look]
    else:
        assert [tables_in(sql) for sql in statements] == [[t] for t in [*reads, *writes, *look]]
    assert get_broker().queue_size() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL keeps the configuration"
)
def test_postgresql_the_first_send_mail_of_a_process_reads_then_writes(servers):
    queue_mode()
    get_broker().purge_queue()
    send("warm-up")  # the drain task it queues still waits: no look at the broker of its own
    _last_config.clear()
    reads, write = counted_send("First")
    # The version of the configuration's rows first (it names the three tables too).
    assert "xmin" in reads.split(";")[0]
    assert tables_in(reads) == [
        MailSettings._meta.db_table,
        SmtpServer._meta.db_table,
        DkimKey._meta.db_table,
        BlacklistEntry._meta.db_table,
    ]
    assert tables_in(write)[:2] == [OutgoingMessage._meta.db_table, Recipient._meta.db_table]
    (kept,) = counted_send("Second")
    assert tables_in(kept)[:2] == [OutgoingMessage._meta.db_table, MailSettings._meta.db_table]


def test_test_mode_switched_on_elsewhere_applies_to_the_next_message(servers):
    queue_mode()
    assert send("before").test_mode is False
    # queryset.update() in another process: no save(), no signal, no updated_at.
    elsewhere(
        lambda: MailSettings.objects.update(test_mode=True, test_address="tester@club.example")
    )
    after = send("after")
    assert after.test_mode is True
    assert list(after.recipients.values_list("delivered_to", flat=True)) == ["tester@club.example"]
    elsewhere(lambda: MailSettings.objects.update(test_mode=False))
    assert send("off again").test_mode is False


def test_a_filter_changed_elsewhere_reroutes_the_next_message(servers):
    club, default = servers
    queue_mode()
    assert send("before").server_id == club.pk
    elsewhere(lambda: SmtpServer.objects.filter(pk=club.pk).update(from_filter="other.example"))
    assert send("after").server_id == default.pk


def test_a_server_deleted_elsewhere_is_not_used_for_the_next_message(
    servers,
    make_server,
):
    _club, default = servers
    golf = make_server(name="Golf", from_filter="golf.example", sender_email="info@golf.example")
    queue_mode()
    assert routing_config().servers[1].pk == golf.pk  # read, and kept, with three servers
    elsewhere(lambda: SmtpServer.objects.filter(pk=golf.pk).delete())
    after = send("after", sender="info@golf.example")
    assert after.server_id == default.pk
    assert after.from_email == "Golf Club <noreply@relay.example>"


def test_a_dkim_key_added_elsewhere_signs_the_next_message(servers):
    queue_mode()
    assert not bytes(send("before").raw).startswith(b"DKIM-Signature:")
    key = dkim_key_generate(domain="club.example")
    DkimKey.objects.filter(pk=key.pk).update(is_active=False)
    assert not bytes(send("inactive").raw).startswith(b"DKIM-Signature:")
    elsewhere(lambda: DkimKey.objects.update(is_active=True))
    assert bytes(send("after").raw).startswith(b"DKIM-Signature:")


def test_a_missing_settings_row_is_made_with_its_defaults(servers):
    MailSettings.objects.all().delete()
    config = routing_config()
    assert config.mail_settings.pk == 1
    assert config.mail_settings.delivery == MailSettings.Delivery.QUEUE
    assert MailSettings.objects.count() == 1


def test_each_call_gets_instances_of_its_own(servers):
    first = routing_config()
    first.servers[0].host = "changed.invalid"
    first.mail_settings.test_mode = True
    second = routing_config()
    assert second.servers[0].host == "127.0.0.1"
    assert second.mail_settings.test_mode is False
    assert second.servers[0] is not first.servers[0]


def test_instances_are_the_ones_the_orm_gives(make_server):
    server = make_server(is_default=True, use_auth=True, username="u", password="s3cret")
    dkim_key_generate(domain="club.example")
    config = routing_config()
    (read,) = config.servers
    fresh = SmtpServer.objects.get(pk=server.pk)
    for field in SmtpServer._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(fresh, field.attname), field.name
    assert str(read.password) == "s3cret"
    assert config.dkim_keys["club.example"].private_key == DkimKey.objects.get().private_key
    assert config.mail_settings == MailSettings.load()
    assert read._state.adding is False and read._state.db == connection.alias


def test_other_encryption_keys_are_not_served_from_what_the_old_ones_decrypted(
    make_server, settings
):
    make_server(is_default=True, use_auth=True, username="u", password="s3cret")
    assert str(routing_config().servers[0].password) == "s3cret"
    settings.MAILADMIN = {**settings.MAILADMIN, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    with pytest.raises(DecryptionError):
        routing_config()


# --- The configuration kept between calls (PostgreSQL), checked by the write ---------------
# On PostgreSQL a send_mail after the first plans with the configuration the call before
# read, and the statement writing the message checks that it is still what the tables
# hold and that no recipient is blacklisted; else it writes nothing and the call reads,
# plans and writes again. The tests above (test mode, a filter, a deleted server, a DKIM
# key, each changed elsewhere) go through that check too; ``send`` fails should a message
# be written twice. On SQLite the same tests read at every call.


def recorded_subjects() -> list[str]:
    return list(OutgoingMessage.objects.order_by("pk").values_list("subject", flat=True))


def test_a_recipient_blacklisted_elsewhere_is_suppressed_in_the_next_message(servers):
    queue_mode()
    assert send("before").status == OutgoingMessage.Status.QUEUED
    elsewhere(lambda: BlacklistEntry.objects.create(email="member@golf.example"))
    after = send("after")
    assert after.status == OutgoingMessage.Status.SUPPRESSED
    assert list(after.recipients.values_list("status", flat=True)) == ["suppressed"]
    assert recorded_subjects() == ["before", "after"]


def test_a_domain_blacklisted_elsewhere_is_suppressed_in_the_next_message(servers):
    queue_mode()
    send("before")
    elsewhere(lambda: BlacklistEntry.objects.create(email="@golf.example"))
    assert send("after").status == OutgoingMessage.Status.SUPPRESSED
    # Struck off again: the next one goes.
    elsewhere(lambda: BlacklistEntry.objects.all().delete())
    assert send("again").status == OutgoingMessage.Status.QUEUED
    assert recorded_subjects() == ["before", "after", "again"]


def test_a_server_added_elsewhere_routes_what_the_kept_configuration_could_not(make_server):
    make_server(name="Club", from_filter="club.example", sender_email="office@club.example")
    queue_mode()
    send("kept", sender="office@club.example")
    with pytest.raises(NoServerAvailable):
        send_mail("No route", "Body", "info@golf.example", ["member@golf.example"])
    elsewhere(lambda: make_server(name="Relay", is_default=True))
    assert send("routed", sender="info@golf.example").server.name == "Relay"
    assert recorded_subjects() == ["kept", "routed"]


def test_every_server_switched_off_elsewhere_refuses_the_next_message_and_writes_nothing(
    servers,
):
    queue_mode()
    send("before")
    elsewhere(lambda: SmtpServer.objects.update(is_active=False))
    with pytest.raises(NoServerAvailable):
        send_mail("Refused", "Body", "info@club.example", ["member@golf.example"])
    assert recorded_subjects() == ["before"]


def test_a_server_paused_elsewhere_is_seen_by_the_next_message(servers):
    club, _default = servers
    queue_mode()
    send("before")
    until = timezone.now() + timedelta(hours=1)
    elsewhere(lambda: server_pause(server=club, until=until, reason="Too many errors"))
    assert routing_config().servers[0].paused_until == until


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL keeps the configuration"
)
def test_any_row_written_to_the_configuration_tables_makes_the_kept_one_stale(servers):
    queue_mode()
    routing_config()
    _config, (changed, params) = routing_kept()
    assert changed.rows(params) == []
    # The same values written again (a form saved unchanged): not told apart, read again.
    elsewhere(lambda: MailSettings.objects.update(delivery="queue"))
    assert changed.rows(params) == [(1,)]
    routing_config()
    _config, (changed, params) = routing_kept()
    assert changed.rows(params) == []
    # A row of any of the three tables, an inactive one included.
    elsewhere(lambda: dkim_key_generate(domain="golf.example"))
    assert changed.rows(params) == [(1,)]


def test_no_configuration_is_kept_before_a_first_read_or_on_sqlite(servers, settings):
    assert routing_kept() is None
    routing_config()
    assert (routing_kept() is not None) is (connection.vendor == "postgresql")
    settings.MAILADMIN = {**settings.MAILADMIN, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    assert routing_kept() is None
