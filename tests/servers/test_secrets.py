"""Secrets at rest: no plaintext in the database, and key rotation with raw SQL reads."""

import datetime
import io
import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection

from smtpconfig.diagnostics import server_connection_test
from smtpconfig.management.commands.rotate_encryption_keys import encrypted_columns
from smtpconfig.models import DkimKey, OAuthToken, SmtpServer

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def keys(settings):
    def use(*keys):
        settings.MAILADMIN = {**settings.MAILADMIN, "ENCRYPTION_KEYS": list(keys)}

    return use


@pytest.fixture
def secrets(keys, make_server):
    """One secret in each encrypted column, all written with the old key."""
    keys(OLD_KEY)
    server = make_server(name="Relay", password="Smtp-Pw-1", credentials='{"api_key": "k-123"}')
    dkim = DkimKey.objects.create(
        domain="club.example", private_key="-----BEGIN PRIVATE KEY-----x", public_key="p"
    )
    token = OAuthToken.objects.create(
        server=server,
        access_token="oauth-access-1",
        expires_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    )
    return {
        ("smtpconfig_smtpserver", "password", server.pk): "Smtp-Pw-1",
        ("smtpconfig_smtpserver", "credentials", server.pk): '{"api_key": "k-123"}',
        ("smtpconfig_dkimkey", "private_key", dkim.pk): "-----BEGIN PRIVATE KEY-----x",
        ("smtpconfig_oauthtoken", "access_token", token.pk): "oauth-access-1",
    }


def test_the_password_column_holds_a_token_not_the_password(make_server):
    server = make_server(name="Relay", password="Smtp-Pw-1")

    stored = raw("smtpconfig_smtpserver", "password", server.pk)

    assert "Smtp-Pw-1" not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_every_encrypted_column_is_found_from_its_type():
    found = {(model.__name__, field.name) for model, field in encrypted_columns()}

    assert {
        ("SmtpServer", "password"),
        ("SmtpServer", "credentials"),
        ("DkimKey", "private_key"),
        ("OAuthToken", "access_token"),
    } <= found


def test_rotation_re_encrypts_every_secret_with_the_first_key(keys, secrets):
    keys(NEW_KEY, OLD_KEY)

    output = io.StringIO()
    call_command("rotate_encryption_keys", stdout=output)

    assert "Re-encrypted 4 secrets with the first key." in output.getvalue()
    for (table, column, pk), plaintext in secrets.items():
        token = raw(table, column, pk)
        assert plaintext not in token
        assert Fernet(NEW_KEY).decrypt(token.encode()).decode() == plaintext
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(token.encode())
    # The old key can go: everything still reads.
    keys(NEW_KEY)
    server = SmtpServer.objects.get()
    assert server.password == "Smtp-Pw-1"
    assert DkimKey.objects.get().private_key == "-----BEGIN PRIVATE KEY-----x"
    assert OAuthToken.objects.get().access_token == "oauth-access-1"


def test_empty_secrets_stay_empty(keys, make_server):
    keys(OLD_KEY)
    server = make_server(name="Open relay", password="")
    keys(NEW_KEY, OLD_KEY)

    call_command("rotate_encryption_keys", stdout=io.StringIO())

    assert raw("smtpconfig_smtpserver", "password", server.pk) == ""


def test_a_secret_no_key_opens_stops_the_rotation_and_changes_nothing(keys, secrets):
    keys(NEW_KEY, OLD_KEY)
    before = {location: raw(*location) for location in secrets}
    keys(NEW_KEY)  # the old key was removed too early

    with pytest.raises(CommandError) as error:
        call_command("rotate_encryption_keys", stdout=io.StringIO())

    assert "cannot be decrypted with any key" in str(error.value)
    assert {location: raw(*location) for location in secrets} == before


def test_a_refused_login_logs_no_password(make_server, smtp_sink, caplog):
    sink = smtp_sink(username="club", password="Right-Pw-1")
    server = make_server(sink=sink, use_auth=True, username="club", password="Wrong-Pw-2")

    with caplog.at_level(logging.DEBUG):
        report = server_connection_test(server=server)

    assert not report.ok
    assert "Wrong-Pw-2" not in caplog.text and "Right-Pw-1" not in caplog.text
    assert "Wrong-Pw-2" not in repr(report)
