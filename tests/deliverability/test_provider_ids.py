"""A service's ids for a message: every one finds the message, through an index.

Some services (Mailjet, Mandrill) give one id per recipient, and a message may be sent on
several attempts: each id gets its own indexed row, so a tracking event finds its message
in a few page reads however long the history is, and no list of ids is too long to record.
"""

import copy
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from smtpconfig.delivery import message_record_attempt
from smtpconfig.esp import EspSendResult
from smtpconfig.models import OutgoingMessage, ProviderMessageId, Recipient
from smtpconfig.replies import Outcome
from smtpconfig.transport import RecipientResult
from smtpconfig.webhooks import _message_for, messages_named
from tests.deliverability.test_webhooks import POSTMARK_BOUNCE, SECRET, post_postmark
from tests.plans import query_plan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def _message(server, *addresses: str) -> OutgoingMessage:
    message = OutgoingMessage.objects.create(
        server=server,
        status=OutgoingMessage.Status.SENDING,
        message_id=f"<{uuid.uuid4()}@club.example>",
        from_email="office@club.example",
        envelope_from="office@club.example",
        raw=b"Subject: x\r\n\r\nbody",
    )
    for address in addresses:
        message.recipients.create(email=address)
    return message


def _result(outcome: Outcome, addresses, ids: tuple[str, ...]) -> EspSendResult:
    return EspSendResult(
        outcome,
        200 if outcome == Outcome.ACCEPTED else 503,
        "",
        [RecipientResult(address, outcome, None, "") for address in addresses],
        provider_message_ids=ids,
    )


@pytest.fixture
def service(make_server):
    return make_server(name="postmark", transport="postmark", credentials='{"server_token": "t"}')


def test_each_recipients_id_brings_its_bounce_to_the_message(client, service):
    addresses = ["john@example.com", "ann@example.com"]
    message = _message(service, *addresses)
    message_record_attempt(
        message=message,
        result=_result(Outcome.ACCEPTED, addresses, ("id-john", "id-ann")),
        retry=True,
    )
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.provider_message_id == "id-john,id-ann"
    for address, provider_id in zip(addresses, ["id-john", "id-ann"], strict=True):
        bounce = copy.deepcopy(POSTMARK_BOUNCE)
        bounce.update(MessageID=provider_id, Email=address, ID=hash(provider_id) % 10**9)
        assert post_postmark(client, bounce).status_code == 200
    statuses = dict(message.recipients.values_list("email", "status"))
    assert statuses == {address: Recipient.Status.REFUSED for address in addresses}
    assert set(message.provider_events.values_list("provider_message_id", flat=True)) == {
        "id-john",
        "id-ann",
    }


def test_an_earlier_attempts_ids_still_find_the_message(service):
    message = _message(service, "member@example.com")
    message_record_attempt(
        message=message,
        result=_result(Outcome.TEMPORARY, ["member@example.com"], ("id-1",)),
        retry=True,
    )
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.DEFERRED
    message_record_attempt(
        message=message,
        result=_result(Outcome.ACCEPTED, ["member@example.com"], ("id-2", "id-1")),
        retry=True,
    )
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.provider_message_id == "id-1,id-2"
    assert sorted(message.provider_ids.values_list("value", flat=True)) == ["id-1", "id-2"]
    assert _message_for("id-1") == message
    assert _message_for("id-2") == message
    assert _message_for("id-3") is None
    assert _message_for("") is None


def test_the_newest_message_wins_when_a_service_repeats_an_id(service):
    older, newer = _message(service, "a@example.com"), _message(service, "a@example.com")
    for message in (older, newer):
        message_record_attempt(
            message=message,
            result=_result(Outcome.ACCEPTED, ["a@example.com"], ("same-id",)),
            retry=True,
        )
    assert _message_for("same-id") == newer


def test_one_id_per_recipient_of_a_large_message_is_recorded_in_full(service):
    # 40 ids of 36 characters: far more than the 255 characters a single column held, which
    # PostgreSQL refused, losing the record of a message the service had accepted.
    addresses = [f"member{number}@example.com" for number in range(40)]
    ids = tuple(str(uuid.UUID(int=number)) for number in range(40))
    message = _message(service, *addresses)
    message_record_attempt(
        message=message, result=_result(Outcome.ACCEPTED, addresses, ids), retry=True
    )
    message.refresh_from_db()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.provider_message_id.split(",") == list(ids)
    assert len(message.provider_message_id) > 1_000
    assert ProviderMessageId.objects.filter(message=message).count() == 40
    assert _message_for(ids[-1]) == message


def test_the_lookup_reads_the_index_not_the_history(service):
    plan = query_plan(messages_named("<id-1@service.example>")[:1])
    if connection.vendor == "postgresql":
        assert "smtpconfig_provider_id_once" in plan
        assert "Seq Scan" not in plan
    else:
        # SQLite names a table's unique constraint's index itself.
        assert "SEARCH smtpconfig_providermessageid USING COVERING INDEX" in plan
        assert "(value=?)" in plan
        assert "SCAN" not in plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_each_stored_id_its_row():
    before = [("smtpconfig", "0006_claim_index")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldMessage = old_apps.get_model("smtpconfig", "OutgoingMessage")
        fields = {
            "status": "sent",
            "message_id": "<m@club.example>",
            "from_email": "office@club.example",
            "envelope_from": "office@club.example",
            "raw": b"x",
        }
        one = OldMessage.objects.create(provider_message_id="solo", **fields)
        several = OldMessage.objects.create(provider_message_id="a,b,a", **fields)
        OldMessage.objects.create(provider_message_id="", **fields)
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(latest)
    rows = sorted(ProviderMessageId.objects.values_list("message_id", "value"))
    assert rows == [(one.pk, "solo"), (several.pk, "a"), (several.pk, "b")]
    assert _message_for("b").pk == several.pk


@pytest.mark.django_db(transaction=True)
def test_migrating_back_keeps_the_ids_the_old_column_can_hold(service):
    message = _message(service, "member@example.com")
    ids = tuple(str(uuid.UUID(int=number)) for number in range(10))
    message_record_attempt(
        message=message,
        result=_result(Outcome.ACCEPTED, ["member@example.com"], ids),
        retry=True,
    )
    before = [("smtpconfig", "0006_claim_index")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(before)
        OldMessage = executor.loader.project_state(before).apps.get_model(
            "smtpconfig", "OutgoingMessage"
        )
        kept = OldMessage.objects.get(pk=message.pk).provider_message_id
    finally:
        MigrationExecutor(connection).migrate(latest)
    # 369 characters of ids: PostgreSQL's old column holds the first 255 of them; SQLite,
    # which never enforced the length, keeps them all.
    joined = ",".join(ids)
    assert kept == (joined[:255] if connection.vendor == "postgresql" else joined)
