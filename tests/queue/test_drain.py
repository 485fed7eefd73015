"""The drain, in this process, against real SMTP sinks and the real database.

Each test passes ``now`` so that windows and back-off are controlled; the cluster tests
(test_cluster.py) run the same code in real django-q2 processes.
"""

import email.policy
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from smtpconfig.delivery import outbox_claim, outbox_drain
from smtpconfig.limits import server_usage
from smtpconfig.models import MessageEvent, OutgoingMessage, Recipient
from smtpconfig.services import server_reset_limit, server_update
from smtpconfig.tasks import DRAIN_TASK, drain_outbox
from tests.queue.factory import queued_message, queued_messages

pytestmark = pytest.mark.django_db

Status = OutgoingMessage.Status


def drain(now, **kwargs):
    return outbox_drain(now=now, **kwargs)


def refreshed(messages):
    return [OutgoingMessage.objects.get(pk=message.pk) for message in messages]


def statuses(messages):
    return [message.status for message in refreshed(messages)]


def test_stored_bytes_are_sent_over_one_connection(sink, make_server, now):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=3)
    report = drain(now)
    assert (report.claimed, report.sent) == (3, 3)
    assert statuses(messages) == [Status.SENT] * 3
    assert [item.content for item in sink.received] == [bytes(m.raw) for m in messages]
    assert sink.handler.sessions == 1
    assert all(m.lease_expires_at is None and m.claimed_by == "" for m in refreshed(messages))


def test_nothing_due_means_no_connection(sink, make_server, now):
    server = make_server(sink=sink)
    queued_message(server=server, status=Status.SENT)
    deferred = queued_message(server=server, status=Status.DEFERRED)
    OutgoingMessage.objects.filter(pk=deferred.pk).update(next_attempt_at=now + timedelta(hours=1))
    report = drain(now)
    assert report.claimed == 0
    assert sink.handler.sessions == 0


def test_limit_defers_what_does_not_fit_and_reset_lets_the_next_go(sink, make_server, staff, now):
    server = make_server(sink=sink, limit_period="hour", limit_count=10)
    messages = queued_messages(server=server, count=25)
    report = drain(now)
    assert (report.sent, report.limit_deferred) == (10, 15)
    assert len(sink.received) == 10
    usage = server_usage(server=server, now=now + timedelta(seconds=1))
    assert (usage.used, usage.limit) == (10, 10)
    # Capacity comes back one hour (plus at most one one-minute bucket) after the sends.
    assert now + timedelta(hours=1) <= usage.next_fit_at <= now + timedelta(minutes=62)
    waiting = [m for m in refreshed(messages) if m.status == Status.DEFERRED]
    assert len(waiting) == 15
    assert {m.next_attempt_at for m in waiting} == {usage.next_fit_at}
    assert "Send limit reached (10/10)" in waiting[0].last_error

    # Nothing moves before the window allows.
    assert drain(now + timedelta(minutes=30)).claimed == 0

    # "Reset limit" happens now (the service reads the clock); the drain runs as if later.
    server_reset_limit(server=server, acting_user=staff)
    server.refresh_from_db()
    assert server.limit_reset_by == staff
    report = drain(now + timedelta(minutes=31))
    assert report.sent == 10
    assert len(sink.received) == 20
    assert server_usage(server=server, now=now + timedelta(minutes=32)).used == 10

    # The last five go when the window since the reset has moved on.
    assert drain(now + timedelta(minutes=60)).sent == 0
    assert drain(now + timedelta(minutes=93)).sent == 5
    assert statuses(messages) == [Status.SENT] * 25
    # Oldest first: the sink received them in the order they were recorded.
    assert [item.message["Message-ID"] for item in sink.received] == [
        m.message_id for m in messages
    ]


def test_message_larger_than_the_limit_fails_saying_so(sink, make_server, now):
    server = make_server(sink=sink, limit_period="day", limit_count=2)
    big = queued_message(server=server, to=("a@m.example", "b@m.example", "c@m.example"))
    small = queued_message(server=server)
    drain(now)
    big, small = refreshed([big, small])
    assert big.status == Status.FAILED
    assert "3 recipients are more than this server's limit of 2 per day" in big.last_error
    assert small.status == Status.SENT
    assert sink.recipients() == ["member@members.example"]


def test_451_waits_then_arrives_with_the_same_message_id(sink, make_server, now):
    server = make_server(sink=sink)
    message = queued_message(server=server)
    sink.handler.data_reply = "451 4.3.0 Try again later"
    with override_settings(MAILADMIN={"RETRY_FIRST_DELAY": 60}):
        report = drain(now)
    assert report.deferred == 1
    message.refresh_from_db()
    assert message.status == Status.DEFERRED
    assert message.last_error.endswith("451 4.3.0 Try again later")
    assert now + timedelta(seconds=60) <= message.next_attempt_at < now + timedelta(seconds=62)
    assert message.recipients.get().status == Recipient.Status.DEFERRED

    sink.handler.data_reply = None
    assert drain(now + timedelta(seconds=30)).claimed == 0
    assert drain(now + timedelta(seconds=63)).sent == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 2
    assert sink.received[0].message["Message-ID"] == message.message_id
    assert sink.received[0].content == bytes(message.raw)


def test_550_for_one_recipient_delivers_to_the_others(sink, make_server, now):
    server = make_server(sink=sink)
    sink.handler.rcpt_replies["gone@m.example"] = "550 5.1.1 <gone@m.example>: no such user"
    message = queued_message(
        server=server, to=("a@m.example", "gone@m.example"), cc=("c@m.example",)
    )
    drain(now)
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert sink.recipients() == ["a@m.example", "c@m.example"]
    gone = message.recipients.get(email="gone@m.example")
    assert gone.status == Recipient.Status.REFUSED
    assert gone.reply == "550 5.1.1 <gone@m.example>: no such user"
    assert message.recipients.get(email="c@m.example").status == Recipient.Status.SENT
    # Never retried.
    assert drain(now + timedelta(days=1)).claimed == 0


def test_temporary_refusal_is_retried_for_that_recipient_only(sink, make_server, now):
    server = make_server(sink=sink)
    sink.handler.rcpt_replies["full@m.example"] = "452 4.2.2 Mailbox full"
    message = queued_message(server=server, to=("a@m.example", "full@m.example"))
    drain(now)
    message.refresh_from_db()
    assert message.status == Status.DEFERRED
    assert message.recipients.get(email="full@m.example").status == Recipient.Status.DEFERRED
    del sink.handler.rcpt_replies["full@m.example"]
    drain(now + timedelta(hours=1))
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert [item.rcpt_tos for item in sink.received] == [["a@m.example"], ["full@m.example"]]


def test_permanent_data_reply_fails_at_once(sink, make_server, now):
    server = make_server(sink=sink)
    sink.handler.data_reply = "554 5.6.0 Message rejected as spam"
    message = queued_message(server=server)
    drain(now)
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.last_error.endswith("554 5.6.0 Message rejected as spam")
    assert drain(now + timedelta(days=1)).claimed == 0


def test_drop_mid_data_defers_and_the_rest_waits_for_the_next_pass(sink, make_server, now):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=3)
    sink.handler.drop_in_data = True
    report = drain(now)
    assert (report.deferred, report.requeued) == (1, 2)
    assert statuses(messages) == [Status.DEFERRED, Status.QUEUED, Status.QUEUED]
    sink.handler.drop_in_data = False
    drain(now + timedelta(seconds=1))
    assert statuses(messages) == [Status.DEFERRED, Status.SENT, Status.SENT]
    drain(now + timedelta(hours=1))
    assert statuses(messages) == [Status.SENT] * 3


def test_a_stalled_server_times_out_and_the_message_is_deferred(smtp_sink, make_server, now):
    sink = smtp_sink()
    server = make_server(sink=sink, timeout=1)
    message = queued_message(server=server)
    sink.handler.data_delay = 2.5
    drain(now)
    message.refresh_from_db()
    assert message.status == Status.DEFERRED
    assert "timed out" in message.last_error


def test_421_backs_off_the_server_without_failing_its_messages(sink, make_server, now):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=3)
    sink.handler.data_reply = "421 4.3.2 Service shutting down"
    drain(now)
    server.refresh_from_db()
    assert statuses(messages) == [Status.QUEUED] * 3
    assert server.paused_until > now
    assert "421 4.3.2 Service shutting down" in server.pause_reason
    assert drain(now + timedelta(seconds=1)).claimed == 0
    sink.handler.data_reply = None
    drain(server.paused_until + timedelta(seconds=1))
    assert statuses(messages) == [Status.SENT] * 3


def test_refused_connection_backs_off_the_server(make_server, now):
    server = make_server(host="127.0.0.1", port=1)  # nothing listens on port 1
    message = queued_message(server=server)
    drain(now)
    message.refresh_from_db()
    server.refresh_from_db()
    assert message.status == Status.QUEUED
    assert server.paused_until > now
    assert server.pause_reason.startswith("Server busy")


def test_rejected_credentials_pause_the_server_and_keep_mail_queued(smtp_sink, make_server, now):
    sink = smtp_sink(username="club", password="right")
    server = make_server(sink=sink, use_auth=True, username="club", password="wrong")
    messages = queued_messages(server=server, count=2)
    drain(now)
    server.refresh_from_db()
    assert statuses(messages) == [Status.QUEUED] * 2
    assert server.pause_reason.startswith("Credentials rejected")
    assert "535" in server.pause_reason
    assert sink.received == []
    # The password is corrected in the admin: the pause is lifted and the mail goes at once.
    server_update(server=server, password="right")
    server.refresh_from_db()
    assert (server.paused_until, server.pause_reason) == (None, "")
    drain(now)
    assert statuses(messages) == [Status.SENT] * 2


def test_a_credentials_pause_ends_on_its_own_too(smtp_sink, make_server, now):
    sink = smtp_sink(username="club", password="right")
    server = make_server(sink=sink, use_auth=True, username="club", password="wrong")
    message = queued_message(server=server)
    drain(now)
    server.refresh_from_db()
    assert now + timedelta(hours=1) <= server.paused_until < now + timedelta(hours=1, seconds=30)
    assert drain(server.paused_until - timedelta(seconds=1)).claimed == 0
    # Still wrong an hour later: tried once more, paused again, the mail still queued.
    drain(server.paused_until + timedelta(seconds=1))
    assert statuses([message]) == [Status.QUEUED]
    assert len(sink.auth_attempts) >= 2


@pytest.mark.parametrize(
    "reply",
    [
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
        "Failed to process message due to a permanent exception with message "
        "[BeginDiagnosticData]Message submission quota exceeded",
        "550 5.4.5 Daily user sending quota exceeded.",
    ],
)
def test_quota_reply_pauses_the_server_until_its_window_allows(sink, make_server, now, reply):
    server = make_server(sink=sink, limit_period="day", limit_count=100)
    first = queued_message(server=server)
    drain(now)
    rest = queued_messages(server=server, count=2)
    sink.handler.data_reply = reply
    drain(now + timedelta(minutes=5))
    server.refresh_from_db()
    assert statuses(rest) == [Status.QUEUED] * 2
    assert server.pause_reason.startswith("Sending quota reached")
    # The one recipient accepted earlier leaves the daily window a day later.
    assert server.paused_until >= now + timedelta(days=1)
    assert statuses([first]) == [Status.SENT]


def test_one_bad_message_fails_and_the_rest_are_sent(sink, make_server, now):
    server = make_server(sink=sink)
    good_before, bad, good_after = queued_messages(server=server, count=3)
    # An address smtplib refuses to put on the wire (a line break: command injection).
    bad.recipients.update(email="<bad@m.example>\r\nRCPT TO:<victim@m.example>")
    report = drain(now)
    assert statuses([good_before, bad, good_after]) == [Status.SENT, Status.FAILED, Status.SENT]
    bad.refresh_from_db()
    assert bad.last_error.startswith("ValueError")
    assert len(report.errors) == 1
    assert "victim@m.example" not in sink.recipients()


def test_expired_lease_returns_the_message_to_the_queue(sink, make_server, now):
    server = make_server(sink=sink)
    message = queued_message(server=server)
    OutgoingMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_by="dead-worker", lease_expires_at=now - timedelta(seconds=1)
    )
    report = drain(now)
    assert report.released == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.events.filter(kind=MessageEvent.Kind.LEASE_EXPIRED).exists()


def test_live_lease_is_left_alone(sink, make_server, now):
    server = make_server(sink=sink, max_connections=2)
    message = queued_message(server=server)
    OutgoingMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, claimed_by="busy-worker", lease_expires_at=now + timedelta(minutes=1)
    )
    assert drain(now).claimed == 0
    assert sink.received == []


def test_parallel_connections_are_capped_per_server(sink, make_server, now):
    server = make_server(sink=sink, max_connections=1)
    busy = queued_message(server=server)
    waiting = queued_message(server=server)
    OutgoingMessage.objects.filter(pk=busy.pk).update(
        status=Status.SENDING, claimed_by="busy-worker", lease_expires_at=now + timedelta(minutes=1)
    )
    assert drain(now).claimed == 0
    server.max_connections = 2
    server.save()
    assert drain(now).sent == 1
    assert statuses([waiting]) == [Status.SENT]


def test_in_flight_recipients_count_against_the_limit(sink, make_server, now):
    server = make_server(sink=sink, limit_period="hour", limit_count=3, max_connections=2)
    busy = queued_message(server=server, to=("a@m.example", "b@m.example"))
    OutgoingMessage.objects.filter(pk=busy.pk).update(
        status=Status.SENDING, claimed_by="busy-worker", lease_expires_at=now + timedelta(minutes=1)
    )
    fits, too_many = queued_message(server=server), queued_message(server=server)
    drain(now)
    assert statuses([fits, too_many]) == [Status.SENT, Status.DEFERRED]


def test_inactive_servers_are_not_drained(sink, make_server, now):
    server = make_server(sink=sink, is_active=False)
    message = queued_message(server=server)
    assert drain(now).claimed == 0
    assert statuses([message]) == [Status.QUEUED]


def test_batches_follow_each_other_until_the_queue_is_empty(sink, make_server, now):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=7)
    report = drain(now, batch_size=3)
    assert report.sent == 7
    assert statuses(messages) == [Status.SENT] * 7
    assert sink.handler.sessions == 3


def test_test_mode_message_goes_to_the_test_address_only(sink, make_server, now):
    server = make_server(sink=sink)
    message = queued_message(server=server, to=("a@m.example",), bcc=("b@m.example",))
    message.recipients.update(status=Recipient.Status.REDIRECTED, delivered_to="qa@club.example")
    drain(now)
    assert sink.recipients() == ["qa@club.example"]
    assert statuses([message]) == [Status.SENT]


def test_drain_outbox_command_prints_what_it_did(sink, make_server, capsys):
    server = make_server(sink=sink)
    queued_messages(server=server, count=2)
    call_command("drain_outbox")
    assert "claimed 2, sent 2" in capsys.readouterr().out


def test_the_schedule_drains_every_minute():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="smtpconfig.tasks.drain_outbox")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        1,
        -1,
    )


def test_sent_bytes_parse_to_the_recorded_message(sink, make_server, now):
    server = make_server(sink=sink)
    message = queued_message(server=server, subject="Tournoi d'été ⛳")
    drain(now)
    received = sink.received[0].message
    assert received["Subject"] == "Tournoi d'été ⛳"
    assert received.as_bytes(policy=email.policy.SMTP) == bytes(message.raw)


def test_a_pass_out_of_time_queues_the_next_one(
    sink, make_server, settings, django_capture_on_commit_callbacks
):
    server = make_server(sink=sink)
    messages = queued_messages(server=server, count=3)
    broker = get_broker()
    # Nothing waits in the broker (Redis keeps what earlier tests queued): a pass waiting
    # there would serve the request, and none would be added.
    broker.purge_queue()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 0}
    settings.MAILADMIN = {**settings.MAILADMIN, "BATCH_SIZE": 2}
    # The task runs outside any transaction: the request for the next pass goes at once.
    with django_capture_on_commit_callbacks(execute=True):
        summary = drain_outbox()
    assert "more to do" in summary
    assert statuses(messages) == [Status.SENT, Status.SENT, Status.QUEUED]
    (waiting,) = broker.dequeue()
    assert SignedPackage.loads(waiting[1])["func"] == DRAIN_TASK


def test_a_pass_that_finishes_queues_nothing(
    sink, make_server, settings, django_capture_on_commit_callbacks
):
    server = make_server(sink=sink)
    queued_messages(server=server, count=2)
    broker = get_broker()
    before = broker.queue_size()
    settings.MAILADMIN = {**settings.MAILADMIN, "BATCH_SIZE": 2}
    with django_capture_on_commit_callbacks(execute=True):
        assert "more to do" not in drain_outbox()
    assert broker.queue_size() == before


def test_a_slow_server_gets_a_lease_longer_than_its_timeouts(sink, make_server, now, settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "LEASE_SECONDS": 10}
    slow = make_server(sink=sink, timeout=60, max_connections=2)
    message = queued_message(server=slow)
    _server, claimed, _report = outbox_claim(server_id=slow.pk, worker="w", now=now, batch_size=10)
    assert claimed[0].pk == message.pk
    assert claimed[0].lease_expires_at >= now + timedelta(seconds=4 * 60)
