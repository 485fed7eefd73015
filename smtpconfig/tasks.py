"""django-q2 entry points: thin, ids only, never message content or secrets."""

from datetime import timedelta

from django.conf import settings

from smtpconfig.delivery import (
    DRAIN_TASK,
    DrainReport,
    drain_soon,
    drain_waiting_check,
    outbox_drain,
)

__all__ = ["DRAIN_TASK", "drain_outbox", "drain_soon", "drain_summary", "drain_waiting_check"]


def drain_outbox() -> str:
    """One pass over the outbox; if it ran out of time, queue the next pass at once.

    The pass stops after half of django-q2's task ``timeout``, well before the cluster
    would kill it, so a long queue is drained in several tasks instead of one killed task.
    """
    budget = timedelta(seconds=settings.Q_CLUSTER.get("timeout", 300) / 2)
    report = outbox_drain(time_budget=budget)
    if report.unfinished:
        drain_soon()
    return drain_summary(report)


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
