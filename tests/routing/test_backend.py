"""The routing backend through Django's public mail API into real SMTP sinks."""

from datetime import UTC, date, datetime

import pytest
from django.core import mail
from django.core.mail import EmailMessage, send_mail, send_mass_mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from blacklist.models import BlacklistEntry
from smtpconfig.exceptions import DeliveryFailed, InvalidMessage, NoServerAvailable
from smtpconfig.models import MailSettings, MessageEvent, OutgoingMessage, Recipient

pytestmark = pytest.mark.django_db


def only_message():
    (message,) = OutgoingMessage.objects.all()
    return message


def test_sender_of_a_filtered_domain_goes_to_that_server(servers, direct, club_sink, default_sink):
    sent = send_mail("Tee times", "Hello", "info@club.example", ["member@golf.example"])
    assert sent == 1
    assert default_sink.received == []
    (received,) = club_sink.received
    assert received.mail_from == "info@club.example"
    assert received.rcpt_tos == ["member@golf.example"]
    assert received.message["From"] == "info@club.example"
    assert received.message["Reply-To"] is None
    message = only_message()
    assert message.status == OutgoingMessage.Status.SENT
    assert message.server.name == "Club"
    assert message.route_reason == "matched domain club.example on server Club"
    assert bytes(message.raw) == received.content.replace(b"\n", b"\r\n").replace(b"\r\r", b"\r")
    assert message.recipients.get().status == Recipient.Status.SENT


def test_exact_address_beats_the_domain(servers, make_server, smtp_sink, direct, club_sink):
    info_sink = smtp_sink()
    make_server(sink=info_sink, name="Info", from_filter="info@club.example")
    send_mail("Hi", "Body", "Info@Club.example", ["member@golf.example"])
    assert club_sink.received == []
    assert info_sink.recipients() == ["member@golf.example"]
    assert only_message().route_reason == "matched address info@club.example on server Info"


def test_other_sender_goes_to_the_default_with_from_rewritten(
    servers, direct, club_sink, default_sink
):
    send_mail("Hi", "Body", "Some One <someone@else.example>", ["member@golf.example"])
    assert club_sink.received == []
    (received,) = default_sink.received
    assert received.mail_from == "noreply@relay.example"
    assert received.message["From"] == "Golf Club <noreply@relay.example>"
    assert received.message["Reply-To"] == "Some One <someone@else.example>"
    message = only_message()
    assert message.from_email == "Golf Club <noreply@relay.example>"
    assert message.original_from == "Some One <someone@else.example>"
    assert message.envelope_from == "noreply@relay.example"
    assert message.route_reason.startswith(
        "no filter matched; default server Relay; From rewritten"
    )


def test_queue_mode_records_queued_and_asks_for_a_drain_after_commit(
    servers, club_sink, default_sink, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sent = send_mass_mail(
            [
                ("One", "Body", "info@club.example", ["a@golf.example"]),
                ("Two", "Body", "info@club.example", ["b@golf.example"]),
            ]
        )
    assert sent == 2
    assert len(callbacks) == 1
    assert list(OutgoingMessage.objects.values_list("status", flat=True)) == ["queued", "queued"]
    assert club_sink.received == [] and default_sink.received == []
    assert MessageEvent.objects.filter(kind=MessageEvent.Kind.RECORDED).count() == 2


def test_test_mode_sends_only_to_the_test_address(servers, test_mode, club_sink):
    EmailMessage(
        "Results",
        "Dear member",
        "info@club.example",
        ["a@golf.example", "B <b@golf.example>"],
        cc=["c@golf.example"],
        bcc=["secret@golf.example"],
    ).send()
    (received,) = club_sink.received
    assert received.rcpt_tos == ["tester@club.example"]
    parsed = received.message
    assert parsed["To"] == "tester@club.example"
    assert parsed["Cc"] is None and parsed["Bcc"] is None
    assert parsed["Subject"] == "[TEST] Results"
    original = parsed["X-Mailadmin-Original-Recipients"]
    for address in ("a@golf.example", "b@golf.example", "c@golf.example", "secret@golf.example"):
        assert address in original
    body = parsed.get_body(("plain",)).get_content()
    assert body.startswith("TEST MODE: this message was sent only to tester@club.example.")
    assert "secret@golf.example" in body and body.rstrip().endswith("Dear member")
    message = only_message()
    assert message.test_mode
    rows = list(message.recipients.values_list("email", "kind", "status", "delivered_to"))
    assert rows == [
        ("a@golf.example", "to", "redirected", "tester@club.example"),
        ("b@golf.example", "to", "redirected", "tester@club.example"),
        ("c@golf.example", "cc", "redirected", "tester@club.example"),
        ("secret@golf.example", "bcc", "redirected", "tester@club.example"),
    ]


def test_blacklisted_recipient_never_reaches_the_server(servers, direct, club_sink):
    entry = BlacklistEntry.objects.create(email="gone@golf.example", reason="bounce")
    BlacklistEntry.objects.create(email="@closed.example", reason="privacy")
    EmailMessage(
        "News",
        "Body",
        "info@club.example",
        ["Gone <GONE@golf.example>", "stay@golf.example"],
        bcc=["x@closed.example"],
    ).send()
    (received,) = club_sink.received
    assert received.rcpt_tos == ["stay@golf.example"]
    assert b"gone@" not in received.content.lower() and b"closed.example" not in received.content
    message = only_message()
    assert message.status == OutgoingMessage.Status.SENT
    gone = message.recipients.get(email="GONE@golf.example")
    assert (gone.status, gone.blacklist_entry) == (Recipient.Status.SUPPRESSED, entry)
    assert message.recipients.get(kind="bcc").status == Recipient.Status.SUPPRESSED
    recorded = message.events.get(kind=MessageEvent.Kind.RECORDED).detail
    assert "GONE@golf.example suppressed: blacklisted as gone@golf.example (Bounced)" in recorded


def test_message_with_every_recipient_blacklisted_never_opens_a_connection(make_server, direct):
    # Nothing listens on this server's port: any connection attempt would fail the call.
    make_server(name="Nowhere", port=1, is_default=True)
    BlacklistEntry.objects.create(email="gone@golf.example")
    sent = send_mail("Hi", "Body", "x@else.example", ["gone@golf.example"])
    assert sent == 0
    message = only_message()
    assert message.status == OutgoingMessage.Status.SUPPRESSED
    assert message.attempts == 0
    assert "No recipient left" in message.events.get().detail


def test_direct_failure_is_recorded_and_raised_and_the_others_still_go(servers, direct, club_sink):
    club_sink.handler.rcpt_replies["refused@golf.example"] = "550 5.1.1 No such user"
    with pytest.raises(DeliveryFailed) as raised:
        send_mass_mail(
            [
                ("One", "Body", "info@club.example", ["a@golf.example"]),
                ("Two", "Body", "info@club.example", ["refused@golf.example"]),
                ("Three", "Body", "info@club.example", ["c@golf.example"]),
            ]
        )
    assert isinstance(raised.value, OSError)
    assert club_sink.recipients() == ["a@golf.example", "c@golf.example"]
    failed = OutgoingMessage.objects.get(subject="Two")
    assert raised.value.message_ids == [failed.pk]
    assert failed.message_id in str(raised.value) and "550 5.1.1 No such user" in str(raised.value)
    assert failed.status == OutgoingMessage.Status.FAILED
    assert "550 5.1.1 No such user" in failed.last_error
    assert failed.recipients.get().status == Recipient.Status.REFUSED
    assert set(OutgoingMessage.objects.exclude(pk=failed.pk).values_list("status", flat=True)) == {
        "sent"
    }


def test_unreachable_server_fails_every_message_of_the_call(make_server, direct):
    make_server(name="Down", port=1, is_default=True)
    with pytest.raises(DeliveryFailed):
        send_mass_mail(
            [
                ("One", "Body", "a@else.example", ["a@golf.example"]),
                ("Two", "Body", "a@else.example", ["b@golf.example"]),
            ]
        )
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {"failed"}


def test_a_date_header_may_be_given_as_a_datetime(servers, direct, club_sink):
    when = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    message = EmailMessage(
        "Hi", "Body", "info@club.example", ["ok@golf.example"], headers={"Date": when}
    )
    assert mail.mailers.default.send_messages([message]) == 1
    assert b"Date: Fri, 27 Nov 2026 08:30:00 +0000\r\n" in club_sink.received[0].content


def test_no_usable_server_raises_and_records_nothing(make_server, direct):
    make_server(name="Off", is_default=True, is_active=False)
    with pytest.raises(NoServerAvailable):
        send_mail("Hi", "Body", "a@else.example", ["b@golf.example"])
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"subject": "Hi\nBcc: victim@evil.example"}, "Bcc: victim@evil.example"),
        ({"to": ["not an address"]}, "not an address"),
        ({"to": ["ok@golf.example"], "from_email": "bad@@sender"}, "bad@@sender"),
        ({"headers": {"X-Note": "a\r\nb"}}, "a\\r\\nb"),
        ({"headers": {"X-Bad: y": "b"}}, "X-Bad: y"),
        # Python's email package would fail on these with a bare TypeError.
        ({"headers": {"X-Priority": 1}}, "X-Priority header's value 1 is not text"),
        ({"headers": {"Date": date(2026, 11, 27)}}, "datetime.date(2026, 11, 27)"),
    ],
)
def test_bad_input_is_named_and_nothing_is_recorded_or_sent(
    servers, direct, club_sink, default_sink, kwargs, named
):
    fields = {"subject": "Hi", "body": "Body", "from_email": "info@club.example"}
    fields["to"] = ["ok@golf.example"]
    fields.update(kwargs)
    good = EmailMessage("Fine", "Body", "info@club.example", ["ok@golf.example"])
    with pytest.raises(InvalidMessage) as raised:
        mail.mailers.default.send_messages([good, EmailMessage(**fields)])
    assert isinstance(raised.value, ValueError)
    assert named in str(raised.value)
    assert not OutgoingMessage.objects.exists()
    assert club_sink.received == [] and default_sink.received == []


def test_empty_list_returns_zero_and_unknown_options_are_refused(settings, db):
    assert mail.mailers.default.send_messages([]) == 0
    settings.MAILERS = {
        "default": {"BACKEND": "smtpconfig.backends.routing.EmailBackend", "OPTIONS": {"x": 1}}
    }
    with pytest.raises(mail.InvalidMailer, match="'x'"):
        mail.mailers.create_connection("default")


def test_mass_mailing_reads_the_blacklist_once_and_writes_in_bulk(servers):
    blocked = BlacklistEntry.objects.create(email="m7@golf.example")
    MailSettings.load()  # The settings row, made once on a new database.
    datatuple = [("Hi", "Body", "info@club.example", [f"m{i}@golf.example"]) for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        assert send_mass_mail(datatuple) == 19
    blacklist_reads = [q for q in queries if BlacklistEntry._meta.db_table in q["sql"]]
    assert len(blacklist_reads) == 1
    # The settings, servers and keys, the blacklist; the writes are a few inserts for the
    # whole call, whatever the number of messages.
    assert len(queries) <= 10
    assert OutgoingMessage.objects.count() == 20
    assert Recipient.objects.count() == 20
    assert MessageEvent.objects.filter(kind="recorded").count() == 20
    suppressed = Recipient.objects.get(status=Recipient.Status.SUPPRESSED)
    assert (suppressed.email, suppressed.blacklist_entry) == ("m7@golf.example", blocked)
    assert suppressed.message.status == OutgoingMessage.Status.SUPPRESSED
    assert Recipient.objects.filter(status=Recipient.Status.PENDING).count() == 19


def test_in_a_mass_mailing_only_the_message_with_a_blacklisted_recipient_changes(servers):
    BlacklistEntry.objects.create(email="blocked@golf.example")
    first = EmailMessage(
        "Hi", "Body", "info@club.example", ["a@golf.example"], headers={"To": "Team <t@x.example>"}
    )
    second = EmailMessage(
        "Hi",
        "Body",
        "info@club.example",
        ["b@golf.example", "blocked@golf.example"],
        headers={"To": "Team <t@x.example>"},
    )
    assert mail.mailers.default.send_messages([first, second]) == 2
    kept, changed = OutgoingMessage.objects.order_by("pk")
    # A caller's To header stands while every recipient is kept; once one is dropped the
    # header lists the recipients that are left.
    assert b"To: Team <t@x.example>" in bytes(kept.raw)
    assert b"To: b@golf.example" in bytes(changed.raw)
    assert b"blocked@" not in bytes(changed.raw)
