"""Settings, secrets at rest and the test SMTP sink itself."""

import smtplib

import pytest
from django.db import connection

from smtpconfig.crypto import Secret


def test_sink_receives_what_is_sent(sink):
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        client.sendmail("a@club.example", ["b@member.example"], b"Subject: hi\r\n\r\nbody\r\n")
    assert sink.recipients() == ["b@member.example"]
    assert sink.received[0].message["Subject"] == "hi"


@pytest.mark.django_db
def test_password_is_encrypted_at_rest(make_server):
    server = make_server(password="s3cret-Passw0rd")
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM smtpconfig_smtpserver WHERE id = %s", [server.pk])
        stored = cursor.fetchone()[0]
    assert "s3cret" not in stored
    server.refresh_from_db()
    assert server.password == "s3cret-Passw0rd"
    assert isinstance(server.password, Secret)
    assert "s3cret" not in repr(server.password)
    assert "s3cret" not in repr(server)
