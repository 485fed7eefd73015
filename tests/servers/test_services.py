"""Server verbs and the database's own guard of the one default server."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from smtpconfig.exceptions import ServerChangeRefused
from smtpconfig.models import OutgoingMessage, SmtpServer
from smtpconfig.services import (
    from_filter_conflicts,
    server_create,
    server_delete,
    server_reset_limit,
    server_set_default,
    server_update,
    servers_delete,
)

pytestmark = pytest.mark.django_db


def new_server(name, **fields):
    return SmtpServer(name=name, sender_email="office@club.example", host="127.0.0.1", **fields)


def test_database_refuses_a_second_default(make_server):
    make_server(name="One", is_default=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_server(name="Two", is_default=True)


def test_database_refuses_a_limit_period_without_a_count(make_server):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_server(name="Broken", limit_period="day", limit_count=None)


def test_first_active_server_created_becomes_default():
    first = server_create(server=new_server("First"), password="Pw-1")
    second = server_create(server=new_server("Second"))

    assert (first.is_default, second.is_default) == (True, False)
    first.refresh_from_db()
    assert first.password == "Pw-1"


def test_an_inactive_first_server_is_not_made_default():
    server = server_create(server=new_server("Sleeping", is_active=False))

    assert not server.is_default


def test_set_default_moves_the_star_and_keeps_one(make_server):
    old = make_server(name="Old", is_default=True)
    new = make_server(name="New")

    server_set_default(server=new)
    server_set_default(server=new)

    assert list(SmtpServer.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert not old.is_default


def test_set_default_refuses_an_inactive_server(make_server):
    old = make_server(name="Old", is_default=True)
    sleeping = make_server(name="Sleeping", is_active=False)

    with pytest.raises(ServerChangeRefused) as refused:
        server_set_default(server=sleeping)

    assert refused.value.server_name == "Sleeping"
    assert list(SmtpServer.objects.filter(is_default=True)) == [old]


def test_update_refuses_to_deactivate_the_default(make_server):
    server = make_server(name="Main", is_default=True)
    server.is_active = False

    with pytest.raises(ServerChangeRefused):
        server_update(server=server)

    server.refresh_from_db()
    assert server.is_active


def test_update_password_rules(make_server):
    server = make_server(name="Main", password="Old-1")

    server_update(server=server)
    server.refresh_from_db()
    assert server.password == "Old-1"
    server_update(server=server, password="New-2")
    server.refresh_from_db()
    assert server.password == "New-2"
    server_update(server=server, clear_password=True)
    server.refresh_from_db()
    assert server.password == ""


def test_delete_refuses_the_default_while_others_remain(make_server):
    main = make_server(name="Main", is_default=True)
    other = make_server(name="Other")

    with pytest.raises(ServerChangeRefused) as refused:
        server_delete(server=main)

    assert "Make another server the default first" in str(refused.value)
    server_delete(server=other)
    server_delete(server=main)
    assert not SmtpServer.objects.exists()


def test_delete_refuses_a_server_the_outbox_names(make_server):
    make_server(name="Main", is_default=True)
    used = make_server(name="Used")
    OutgoingMessage.objects.create(server=used, message_id="<1@club.example>", raw=b"x")

    with pytest.raises(ServerChangeRefused) as refused:
        servers_delete(servers=[used])

    assert "Deactivate it instead" in str(refused.value)
    assert SmtpServer.objects.filter(pk=used.pk).exists()


def test_reset_limit_records_when_and_who(make_server, django_user_model):
    user = django_user_model.objects.create_user(username="manager")
    server = make_server(name="Limited", limit_period="hour", limit_count=50)
    before = timezone.now()

    server_reset_limit(server=server, acting_user=user)

    server.refresh_from_db()
    assert server.limit_reset_at >= before
    assert server.limit_reset_by == user


def test_filter_conflicts_ignore_the_server_itself_and_unreadable_filters(make_server):
    club = make_server(name="Club", from_filter="club.example, info@club.example")
    make_server(name="Legacy", from_filter="not a domain!, news.example")

    assert from_filter_conflicts(entries=["club.example"], server_id=club.pk) == {}
    assert from_filter_conflicts(entries=["club.example", "news.example"], server_id=None) == {
        "club.example": "Club"
    }
    assert from_filter_conflicts(entries=[], server_id=None) == {}
