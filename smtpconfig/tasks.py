"""django-q2 entry points: thin, ids only, never message content or secrets."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from smtpconfig.delivery import DrainReport, outbox_drain

DRAIN_TASK = "smtpconfig.tasks.drain_outbox"


def drain_outbox() -> str:
    """One pass over the outbox; if it ran out of time, queue the next pass at once.

    The pass stops after half of django-q2's task ``timeout``, well before the cluster
    would kill it, so a long queue is drained in several tasks instead of one killed task.
    """
    budget = timedelta(seconds=settings.Q_CLUSTER.get("timeout", 300) / 2)
    report = outbox_drain(time_budget=budget)
    if report.unfinished:
        async_task(DRAIN_TASK, task_name="drain outbox (continued)")
    return drain_summary(report)


def drain_soon() -> None:
    """Ask the cluster for a drain pass once the current transaction commits.

    The routing backend calls this after recording queued mail; the every-minute schedule
    catches any request a broker lost.
    """
    transaction.on_commit(lambda: async_task(DRAIN_TASK, task_name="drain outbox"))


def drain_summary(report: DrainReport) -> str:
    parts = [
        f"claimed {report.claimed}",
        f"sent {report.sent}",
        f"deferred {report.deferred}",
        f"failed {report.failed}",
        f"requeued {report.requeued}",
        f"waiting for the send limit {report.limit_deferred}",
        f"expired leases released {report.released}",
    ]
    if report.unfinished:
        parts.append("more to do")
    return ", ".join(parts)
