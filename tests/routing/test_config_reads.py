"""What one send_mail reads, and that a change however written applies to the next message.

The backend reads the settings, the active servers and the active DKIM keys as whole rows on
every call and rebuilds instances only when those rows changed. These tests change the rows
the ways the portal, scripts and other processes do (``queryset.update()`` and ``delete()``, which
no signal or ``updated_at`` reveals), on a connection of their own, and send the next
message.
"""

import re
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.mail import send_mail
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import OrmQ

from blacklist.models import BlacklistEntry
from smtpconfig.dkim import dkim_key_generate
from smtpconfig.exceptions import DecryptionError
from smtpconfig.models import (
    DkimKey,
    MailSettings,
    MessageEvent,
    OutgoingMessage,
    Recipient,
    SmtpServer,
)
from smtpconfig.selectors import routing_config

pytestmark = pytest.mark.django_db(transaction=True)

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


def test_one_send_mail_reads_four_tables_together_and_writes_three_at_once(servers):
    queue_mode()
    get_broker().purge_queue()
    send("warm-up")
    with CaptureQueriesContext(connection) as queries:
        send_mail("Counted", "Body", "info@club.example", ["member@golf.example"])
    # SQLite shows its BEGIN and COMMIT as statements, PostgreSQL does not.
    statements = [
        prepared_spelt_out(q["sql"]) for q in queries.captured_queries if q["sql"] not in CONTROL
    ]
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
    postgresql = connection.vendor == "postgresql"
    assert [tables_in(sql) for sql in statements] == [
        *([reads] if postgresql else [[table] for table in reads]),
        *([[*writes, *look]] if postgresql else [[table] for table in [*writes, *look]]),
    ]
    if connection.vendor == "sqlite":
        assert [q["sql"] for q in queries.captured_queries].count("COMMIT") == 1
    assert get_broker().queue_size() == 1


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
