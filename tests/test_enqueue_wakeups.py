"""A drain request queues a task unless the one this process queued still waits, untaken.

Through the test run's broker (django-q2's ORM broker, or Redis when REDIS_URL is set); a
worker taking a task is the broker's own ``dequeue()``, as the cluster calls it.
"""

from datetime import timedelta

import pytest
from django.core.mail import send_mail
from django.db import DEFAULT_DB_ALIAS, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import Broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from smtpconfig.models import MailSettings, OutgoingMessage
from smtpconfig.tasks import DRAIN_TASK
from smtpconfig.wakeups import _broker, task_request, task_waiting_check

pytestmark = pytest.mark.django_db


def request() -> bool:
    return task_request(DRAIN_TASK, task_name="drain outbox")


def test_a_second_request_while_the_first_task_waits_queues_nothing(broker):
    assert request() is True
    assert request() is False
    assert request() is False
    assert broker.queue_size() == 1


def test_a_task_taken_by_a_worker_no_longer_serves_the_next_request(broker):
    """The worker may be past its claims already: a message committed now needs a new pass."""
    assert request() is True
    taken = broker.dequeue()
    assert [SignedPackage.loads(package)["func"] for _ack, package in taken] == [DRAIN_TASK]
    assert request() is True
    assert broker.queue_size() == 1
    assert request() is False


def test_a_task_purged_from_the_queue_is_queued_again(broker):
    assert request() is True
    broker.purge_queue()
    assert request() is True
    assert broker.queue_size() == 1


def test_a_task_whose_worker_died_waits_again_and_serves_the_next_request(broker):
    """The ORM broker hands a task out again once its lock has passed (the worker died)."""
    if not isinstance(broker, ORM):
        pytest.skip("Redis hands out a task once; the ORM broker again after its lock")
    assert request() is True
    broker.dequeue()
    # The worker's lock passes: the task is handed out again, so it waits again.
    OrmQ.objects.update(lock=timezone.now() - timedelta(seconds=1))
    assert request() is False
    assert broker.queue_size() == 1


def test_other_tasks_in_the_queue_are_not_mistaken_for_it(broker):
    assert request() is True
    broker.dequeue()
    broker.enqueue(SignedPackage.dumps({"id": "x", "name": "other", "func": "math.floor"}))
    assert request() is True
    assert broker.queue_size() == 2


class ListBroker(Broker):
    """A broker the wake-ups cannot look into: every request queues a task."""

    tasks: list = []

    def enqueue(self, task):
        self.tasks.append(task)
        return len(self.tasks)

    def queue_size(self):
        return len(self.tasks)


def test_a_broker_it_cannot_look_into_gets_every_request(monkeypatch):
    monkeypatch.setattr(Conf, "BROKER_CLASS", f"{__name__}.ListBroker")
    monkeypatch.setattr(ListBroker, "tasks", [])
    assert request() is True
    assert request() is True
    assert len(ListBroker.tasks) == 2


def test_sync_mode_runs_a_pass_on_every_request(
    monkeypatch, broker, sink, make_server, routing_mailer, django_capture_on_commit_callbacks
):
    """django-q2's sync mode runs the task at once and queues nothing to look at later."""
    monkeypatch.setattr(Conf, "SYNC", True)
    make_server(sink=sink, is_default=True)
    MailSettings.objects.update_or_create(pk=1, defaults={"delivery": "queue"})
    for number in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            send_mail(f"News {number}", "Body", "info@club.example", [f"m{number}@golf.example"])
    assert list(OutgoingMessage.objects.values_list("status", flat=True)) == ["sent", "sent"]
    assert sink.recipients() == ["m0@golf.example", "m1@golf.example"]
    assert broker.queue_size() == 0


def test_one_broker_per_thread_until_the_configuration_changes(monkeypatch):
    first = _broker()
    assert _broker() is first
    monkeypatch.setattr(Conf, "BROKER_CLASS", f"{__name__}.ListBroker")
    assert isinstance(_broker(), ListBroker)
    monkeypatch.undo()
    assert type(_broker()) is type(first)


def orm_broker_only(broker):
    if not isinstance(broker, ORM):
        pytest.skip("the look goes with the caller's statement in the ORM broker's database")


@pytest.mark.django_db(transaction=True)
def test_an_answer_read_with_the_callers_statement_spares_the_broker_a_look(broker):
    orm_broker_only(broker)
    assert request() is True
    check = task_waiting_check(DRAIN_TASK, using=DEFAULT_DB_ALIAS)
    waiting = check.answered(check.read[0].rows(check.read[1]))
    with CaptureQueriesContext(connection) as queries:
        assert task_request(DRAIN_TASK, task_name="drain outbox", checked=waiting) is False
    assert queries.captured_queries == []
    # Read once the task was taken, the answer says so: a new task is queued.
    broker.dequeue()
    taken = check.answered(check.read[0].rows(check.read[1]))
    assert task_request(DRAIN_TASK, task_name="drain outbox", checked=taken) is True
    assert broker.queue_size() == 1


@pytest.mark.django_db(transaction=True)
def test_an_answer_about_an_older_task_is_not_taken_for_the_new_one(broker):
    orm_broker_only(broker)
    assert request() is True
    check = task_waiting_check(DRAIN_TASK, using=DEFAULT_DB_ALIAS)
    stale = check.answered(check.read[0].rows(check.read[1]))  # the first task, waiting
    broker.dequeue()
    assert request() is True  # the first was taken: a second task, remembered now
    broker.dequeue()  # and taken too
    # The answer about the first task says "waiting" but is about another task: the broker
    # is read for the one remembered, which was taken, so a third task is queued.
    assert task_request(DRAIN_TASK, task_name="drain outbox", checked=stale) is True
    assert broker.queue_size() == 1


def test_inside_a_transaction_the_look_waits_for_the_commit(broker):
    orm_broker_only(broker)
    assert request() is True
    # The test runs in a transaction: nothing the caller writes is committed before the look.
    assert task_waiting_check(DRAIN_TASK, using=DEFAULT_DB_ALIAS) is None


@pytest.mark.django_db(transaction=True)
def test_a_broker_in_another_database_is_looked_at_by_the_request(broker):
    orm_broker_only(broker)
    assert request() is True
    assert task_waiting_check(DRAIN_TASK, using=DEFAULT_DB_ALIAS) is not None
    # Work written to another database cannot carry the look at this one.
    assert task_waiting_check(DRAIN_TASK, using="elsewhere") is None
