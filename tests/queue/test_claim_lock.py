"""A claim's transaction holds the database's write lock before it reads anything.

On SQLite the settings make every transaction ``BEGIN IMMEDIATE``: a second worker's claim
waits for the first to commit instead of both reading the same free capacity. (PostgreSQL
gets the same from ``SELECT … FOR UPDATE`` on the server's row; the cluster tests prove the
outcome on both.)
"""

import sqlite3

import pytest
from django.db import connection, transaction

from smtpconfig.models import SmtpServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="SQLite's locking; PostgreSQL locks rows"
    ),
]


def test_settings_begin_transactions_immediately():
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_an_open_transaction_keeps_other_writers_out_until_it_commits(make_server):
    server = make_server()
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        with transaction.atomic():
            # Nothing written yet, only a read: the lock is already held.
            SmtpServer.objects.filter(pk=server.pk).exists()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
    finally:
        other.close()
