"""Settings of the `qcluster` and `drain_outbox` processes the cluster tests start.

The test settings, on the test run's own database (``MAILADMIN_TEST_DATABASE``), with
short django-q2 timeouts; the broker (ORM, or Redis under ``REDIS_URL``) and the cluster's
name are the test process's own, so tasks it queues reach these workers.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ["MAILADMIN_TEST_DATABASE"]  # noqa: F405
Q_CLUSTER = {  # noqa: F405
    **Q_CLUSTER,  # noqa: F405
    "timeout": 60,
    "retry": 90,
    "poll": 0.2,
}
