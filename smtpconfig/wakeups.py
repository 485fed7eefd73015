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
"""

import threading

from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from core.compiled import CompiledQuery

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


def _waiting(broker: Broker, queued: tuple[object, str]) -> bool:
    """Whether ``queued`` is still in ``broker``, taken by no worker."""
    queued_id, package = queued
    if isinstance(broker, ORM):
        rows = _ORM_ENTRY.rows([queued_id, package])
        # The ORM broker's own test: a worker takes a task by moving its lock into the
        # future; one whose lock has passed again is taken again.
        return any(entry.lock <= timezone.now() for entry in _ORM_ENTRY.instances(rows))
    if isinstance(broker, Redis):
        # A worker takes a task by popping it off the list. The list is short: every
        # process keeps at most one such request in it.
        entries = broker.connection.lrange(broker.list_key, 0, -1)
        return package.encode() in {e if isinstance(e, bytes) else e.encode() for e in entries}
    return False


def task_request(func: str, *, task_name: str) -> bool:
    """Queue ``func`` unless the ``func`` task this process queued last still waits,
    untaken, in the broker; ``True`` if a task was queued (or run, in sync mode).

    Call it after the work the task is to find was committed (``transaction.on_commit``).
    """
    broker = _broker()
    key = (type(broker).__name__, broker.list_key, func)
    with _lock:
        queued = _queued.get(key)
        if queued is not None and _waiting(broker, queued):
            return False
        remembering = _RememberingBroker(broker)
        async_task(func, task_name=task_name, broker=remembering)
        if remembering.queued is None:
            _queued.pop(key, None)
        else:
            _queued[key] = remembering.queued
        return True
