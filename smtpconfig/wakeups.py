"""Asking django-q2 for a task without piling up copies nobody needs.

A drain pass claims every message that is due when it runs. So while a pass this process
queued is still waiting in the broker, untaken, it will also claim a message committed
now: queuing another pass for that message would cost the sender a broker write (and the
cluster an empty pass) and change nothing. Once a worker has taken the pass, it may be past
its claims already, so the next request queues a new one.

Whether the task still waits is read from the broker each time, for that very task (its id
and its signed content), never assumed: a task taken, finished, purged or lost is not
waiting, and the next request queues a new one. Brokers other than the ORM and Redis are
not looked into; every request queues a task there, as ``async_task`` always does.

With the ORM broker in the database the work is written to, that read can go with the
work's own statement (``task_waiting_check``): the recording of a ``send_mail`` and the look
at its broker entry then cost one round trip to PostgreSQL instead of two.
"""

import dataclasses
import threading

from django.db import transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from core.compiled import CompiledQuery, Read

# One ORM-broker entry by id and content; its lock says whether a worker took it.
_ORM_ENTRY = CompiledQuery(
    lambda: OrmQ.objects.using(Conf.ORM).filter(pk=0).filter(payload="").order_by()
)
# What django-q2's get_broker() decides on: a broker is made anew only when these change.
_BROKER_SETTINGS = (
    "BROKER_CLASS",
    "IRON_MQ",
    "SQS",
    "ORM",
    "MONGO",
    "REDIS",
    "DJANGO_REDIS",
    "CLUSTER_NAME",
)
_brokers = threading.local()
_lock = threading.Lock()
# (broker class, queue, task) -> (broker's id, signed package) of the last task queued.
_queued: dict[tuple[str, str, str], tuple[object, str]] = {}


def _broker() -> Broker:
    """The configured broker, one per thread: making one per request would open a Redis
    connection pool each time, and the ORM broker's closes stale database connections,
    which costs PostgreSQL a health-check query on the next statement."""
    settings = tuple(repr(getattr(Conf, name, None)) for name in _BROKER_SETTINGS)
    made = getattr(_brokers, "made", None)
    if made is None or made[0] != settings:
        made = _brokers.made = (settings, get_broker())
    return made[1]


class _RememberingBroker:
    """The configured broker, remembering the last task given to it to queue."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.queued: tuple[object, str] | None = None

    def __getattr__(self, name):
        return getattr(self.broker, name)

    def enqueue(self, task: str):
        queued_id = self.broker.enqueue(task)
        self.queued = (queued_id, task)
        return queued_id


def _key(broker: Broker, func: str) -> tuple[str, str, str]:
    return (type(broker).__name__, broker.list_key, func)


def _entries_waiting(rows: list[tuple]) -> bool:
    # The ORM broker's own test: a worker takes a task by moving its lock into the future;
    # one whose lock has passed again is taken again.
    return any(entry.lock <= timezone.now() for entry in _ORM_ENTRY.instances(rows))


def _waiting(broker: Broker, queued: tuple[object, str]) -> bool:
    """Whether ``queued`` is still in ``broker``, taken by no worker."""
    queued_id, package = queued
    if isinstance(broker, ORM):
        return _entries_waiting(_ORM_ENTRY.rows([queued_id, package]))
    if isinstance(broker, Redis):
        # A worker takes a task by popping it off the list. The list is short: every
        # process keeps at most one such request in it.
        entries = broker.connection.lrange(broker.list_key, 0, -1)
        return package.encode() in {e if isinstance(e, bytes) else e.encode() for e in entries}
    return False


@dataclasses.dataclass(frozen=True)
class WaitingCheck:
    """The look at the broker that ``task_request`` would make, to run after the caller's
    work is committed, with it (``read``); ``rows``, its answer, once read."""

    func: str
    queued: tuple[object, str]
    read: Read
    rows: list[tuple] | None = None

    def answered(self, rows: list[tuple]) -> "WaitingCheck":
        return dataclasses.replace(self, rows=rows)


def task_waiting_check(func: str, *, using: str) -> WaitingCheck | None:
    """The read telling whether the ``func`` task this process queued last still waits, for
    the caller to run once its work on the database ``using`` is committed, and to give
    ``task_request`` with its rows; ``None`` where ``task_request`` has to look itself: a
    broker other than the ORM's on ``using``, no task queued yet, or inside a transaction
    (the look comes after the caller's commit, ``transaction.on_commit``)."""
    broker = _broker()
    if (
        not isinstance(broker, ORM)
        or using != Conf.ORM
        or transaction.get_connection(using).in_atomic_block
    ):
        return None
    queued = _queued.get(_key(broker, func))
    if queued is None:
        return None
    return WaitingCheck(func=func, queued=queued, read=(_ORM_ENTRY, list(queued)))


def task_request(func: str, *, task_name: str, checked: WaitingCheck | None = None) -> bool:
    """Queue ``func`` unless the ``func`` task this process queued last still waits,
    untaken, in the broker; ``True`` if a task was queued (or run, in sync mode).

    Call it after the work the task is to find was committed (``transaction.on_commit``).
    ``checked`` is the answer to ``task_waiting_check``, read after that commit: when it is
    about the task still remembered, the broker is not read again.
    """
    broker = _broker()
    key = _key(broker, func)
    with _lock:
        queued = _queued.get(key)
        if queued is not None:
            if (
                checked is not None
                and checked.rows is not None
                and (checked.func, checked.queued) == (func, queued)
                and isinstance(broker, ORM)
            ):
                waiting = _entries_waiting(checked.rows)
            else:
                waiting = _waiting(broker, queued)
            if waiting:
                return False
        remembering = _RememberingBroker(broker)
        async_task(func, task_name=task_name, broker=remembering)
        if remembering.queued is None:
            _queued.pop(key, None)
        else:
            _queued[key] = remembering.queued
        return True
