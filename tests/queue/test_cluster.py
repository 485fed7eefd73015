"""The queue with its real parts: `manage.py qcluster` processes drain into SMTP sinks.

The broker is the test run's own: django-q2's ORM broker by default, Redis when REDIS_URL
is set (e.g. ``REDIS_URL=redis://127.0.0.1:6379/7``). The workers share the test database,
a file (see tests/settings.py), so these tests commit for real (``transaction=True``).
Windows are real but small: a reset, or a one-second retry delay.
"""

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from smtpconfig.limits import server_usage
from smtpconfig.models import MailSettings, MessageEvent, OutgoingMessage, Recipient
from smtpconfig.services import server_reset_limit
from smtpconfig.tasks import DRAIN_TASK
from tests.queue.factory import queued_message, queued_messages

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

Status = OutgoingMessage.Status
WAIT = 60  # seconds: a generous bound for a condition, never a speed assertion
RUN_LOGS = []  # the current test's log directory, for the message of a failed wait


def wait_for(condition, *, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    state = list(OutgoingMessage.objects.values_list("pk", "status", "last_error"))
    logs = "\n".join(path.read_text()[-4000:] for path in sorted(RUN_LOGS[0].glob("process-*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{state}\n{logs}")


def counts(server) -> dict[str, int]:
    return collections.Counter(
        OutgoingMessage.objects.filter(server=server).values_list("status", flat=True)
    )


class Cluster:
    """Starts processes on the test database and stops them all afterwards."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def _start(self, args: list[str], **env) -> subprocess.Popen:
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.queue.cluster_settings",
            "MAILADMIN_TEST_DATABASE": str(connection.settings_dict["NAME"]),
            **{name: str(value) for name, value in env.items()},
        }
        log = (self.tmp_path / f"process-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=django_settings.BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the workers die with it
        )
        self.processes.append(process)
        return process

    def qcluster(self, **env) -> subprocess.Popen:
        return self._start(["qcluster"], **env)

    def drain_outbox(self, **env) -> subprocess.Popen:
        return self._start(["drain_outbox"], **env)

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the process and its workers (its process group): no clean-up of any kind."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=30)

    def stop_all(self) -> None:
        # SIGKILL: a graceful stop waits for the workers' timeouts; the database is flushed
        # after the test anyway and SQLite and PostgreSQL survive a killed client.
        for process in self.processes:
            self.kill(process)


@pytest.fixture
def cluster(transactional_db, tmp_path):
    processes = Cluster(tmp_path)
    RUN_LOGS[:] = [tmp_path]
    yield processes
    processes.stop_all()


def request_drain():
    async_task(DRAIN_TASK)


def test_limit_holds_and_reset_lets_the_next_ten_go(cluster, smtp_sink, make_server):
    sink = smtp_sink()
    server = make_server(sink=sink, limit_period="hour", limit_count=10)
    messages = queued_messages(server=server, count=25)
    cluster.qcluster()
    request_drain()
    wait_for(lambda: counts(server) == {Status.SENT: 10, Status.DEFERRED: 15}, what="10 sent")
    assert len(sink.received) == 10
    usage = server_usage(server=server)
    assert (usage.used, usage.limit) == (10, 10)
    assert usage.next_fit_at > timezone.now() + timedelta(minutes=55)

    staff = get_user_model().objects.create_user("staff", is_staff=True)
    # The admin's "Reset limit": the waiting mail wakes up and a drain is asked for.
    server_reset_limit(server=server, acting_user=staff)
    wait_for(lambda: counts(server) == {Status.SENT: 20, Status.DEFERRED: 5}, what="20 sent")
    assert len(sink.received) == 20
    received = [item.message["Message-ID"] for item in sink.received]
    assert received == [message.message_id for message in messages[:20]]


def test_451_waits_then_arrives_and_550_refuses_only_its_recipient(cluster, smtp_sink, make_server):
    greylisting, strict = smtp_sink(), smtp_sink()
    greylisting.handler.data_reply = "451 4.7.1 Greylisted, come back later"
    strict.handler.rcpt_replies["gone@m.example"] = "550 5.1.1 <gone@m.example>: no such user"
    waiting = queued_message(server=make_server(sink=greylisting))
    partly = queued_message(
        server=make_server(sink=strict), to=("a@m.example", "gone@m.example", "b@m.example")
    )
    cluster.qcluster(MAILADMIN_RETRY_FIRST_DELAY=1)
    request_drain()

    partly = wait_for(
        lambda: OutgoingMessage.objects.filter(pk=partly.pk, status=Status.SENT).first(),
        what="the partly refused message",
    )
    assert strict.recipients() == ["a@m.example", "b@m.example"]
    gone = partly.recipients.get(email="gone@m.example")
    assert (gone.status, gone.reply) == (
        Recipient.Status.REFUSED,
        "550 5.1.1 <gone@m.example>: no such user",
    )

    waiting = wait_for(
        lambda: OutgoingMessage.objects.filter(pk=waiting.pk, status=Status.DEFERRED).first(),
        what="the greylisted message to wait",
    )
    assert waiting.last_error == "451 4.7.1 Greylisted, come back later"
    greylisting.handler.data_reply = None
    wait_for(lambda: timezone.now() > waiting.next_attempt_at, what="the retry time")
    request_drain()
    waiting = wait_for(
        lambda: OutgoingMessage.objects.filter(pk=waiting.pk, status=Status.SENT).first(),
        what="the greylisted message to arrive",
    )
    assert waiting.attempts == 2
    assert [item.message["Message-ID"] for item in greylisting.received] == [waiting.message_id]
    assert greylisting.received[0].content == bytes(waiting.raw)


def test_concurrent_workers_together_stay_under_the_limit(cluster, smtp_sink, make_server):
    sink = smtp_sink()
    # Each message takes a moment to answer, so the workers' batches overlap.
    sink.handler.data_delay = 0.2
    server = make_server(sink=sink, limit_period="hour", limit_count=10, max_connections=3)
    queued_messages(server=server, count=30)
    env = {"MAILADMIN_BATCH_SIZE": 2, "Q_WORKERS": 2}
    cluster.qcluster(**env)
    for _task in range(4):
        request_drain()
    cluster.drain_outbox(**env)
    wait_for(
        lambda: counts(server) == {Status.SENT: 10, Status.DEFERRED: 20},
        what="the limit to be reached",
    )
    time.sleep(1)  # any worker still claiming would show up now
    assert counts(server) == {Status.SENT: 10, Status.DEFERRED: 20}
    assert len(sink.recipients()) == 10
    workers = {
        detail.rsplit("Queue worker: ", 1)[1]
        for detail in MessageEvent.objects.filter(
            message__server=server, kind=MessageEvent.Kind.ATTEMPT
        ).values_list("detail", flat=True)
    }
    assert len(workers) >= 2, "the workers did not overlap; the test proved nothing"


def test_a_worker_killed_mid_batch_loses_nothing(cluster, smtp_sink, make_server):
    sink = smtp_sink()
    sink.handler.data_delay = 0.3
    # A one-second timeout keeps the lease (a few timeouts at least) short.
    server = make_server(sink=sink, timeout=1)
    messages = queued_messages(server=server, count=12)
    env = {"MAILADMIN_LEASE_SECONDS": 3}
    first = cluster.qcluster(**env)
    request_drain()
    wait_for(lambda: len(sink.received) >= 3, what="the batch to be under way")
    cluster.kill(first)
    stranded = list(OutgoingMessage.objects.filter(server=server, status=Status.SENDING))
    assert stranded, "the worker had finished before it was killed"

    cluster.qcluster(**env)
    leases_end = max(message.lease_expires_at for message in stranded)
    wait_for(lambda: timezone.now() > leases_end, what="the leases to expire")
    request_drain()
    wait_for(lambda: counts(server) == {Status.SENT: 12}, what="every message to be sent")

    copies = collections.Counter(item.message["Message-ID"] for item in sink.received)
    assert set(copies) == {message.message_id for message in messages}
    # At least once: only the message in flight when the worker died may arrive twice.
    assert sum(copies.values()) - len(copies) <= 1
    assert all(count <= 2 for count in copies.values())
    released = MessageEvent.objects.filter(
        message__server=server, kind=MessageEvent.Kind.LEASE_EXPIRED
    ).count()
    assert released == len(stranded)


def test_mail_sent_through_django_is_queued_and_drained(
    cluster, smtp_sink, make_server, routing_mailer
):
    sink = smtp_sink()
    make_server(sink=sink, is_default=True)
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.QUEUE
    settings_row.save()
    cluster.qcluster()
    # The backend asks for a drain itself once the records are committed.
    send_mail("Welcome", "Hello", "office@club.example", ["member@members.example"])
    message = wait_for(
        lambda: OutgoingMessage.objects.filter(status=Status.SENT).first(),
        what="the queued mail to be sent",
    )
    assert sink.recipients() == ["member@members.example"]
    assert sink.received[0].message["Message-ID"] == message.message_id
