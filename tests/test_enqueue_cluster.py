"""Drain requests with a real cluster: a burst of send_mail calls while passes run.

Each call asks for a pass unless the one its process queued still waits untaken; the cluster
keeps taking passes in the middle of the burst, so some messages are committed while a pass
is running (possibly past its claims). The every-minute schedule is removed first: a
message left without a pass would wait forever and the test would time out.
"""

import time

import pytest
from django.core.mail import send_mail
from django_q.brokers import get_broker
from django_q.models import Schedule, Task

from smtpconfig.models import MailSettings, OutgoingMessage
from smtpconfig.tasks import DRAIN_TASK
from tests.queue.test_cluster import cluster, wait_for  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

MESSAGES = 60


def test_a_burst_of_send_mail_is_drained_without_the_schedule(
    cluster,  # noqa: F811
    smtp_sink,
    make_server,
    routing_mailer,
):
    Schedule.objects.all().delete()
    get_broker().purge_queue()
    sink = smtp_sink()
    make_server(sink=sink, is_default=True)
    MailSettings.objects.update_or_create(pk=1, defaults={"delivery": "queue"})
    cluster.qcluster()
    for number in range(MESSAGES):
        send_mail(f"Booking {number}", "Body", "office@club.example", [f"m{number}@golf.example"])
        if number % 5 == 4:
            # The cluster polls every 0.2 s: let it take passes in the middle of the burst.
            time.sleep(0.1)
    wait_for(
        lambda: (
            OutgoingMessage.objects.filter(status=OutgoingMessage.Status.SENT).count() == MESSAGES
        ),
        what=f"all {MESSAGES} messages to be sent",
    )
    assert sorted(sink.recipients()) == sorted(f"m{n}@golf.example" for n in range(MESSAGES))
    assert not Schedule.objects.exists()
    # django-q2 saves a pass's result after the pass committed its work: wait for them.
    passes = Task.objects.filter(func=DRAIN_TASK)
    wait_for(
        lambda: (
            sum(claimed(result) for result in passes.values_list("result", flat=True)) == MESSAGES
        ),
        what="every pass's result",
    )
    # Far fewer passes than messages: a waiting pass served the messages behind it.
    assert passes.count() < MESSAGES


def claimed(result: str) -> int:
    """The number of messages a pass claimed, from its summary (``drain_summary``)."""
    return int(result.removeprefix("claimed ").split(",")[0])
