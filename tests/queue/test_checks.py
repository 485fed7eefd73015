"""Start-up checks: a queue or SMTP configuration that cannot work fails with an id."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from smtpconfig.checks import check_queue_and_timeouts


def ids(**overrides):
    with override_settings(**overrides):
        return {error.id for error in check_queue_and_timeouts(None)}


def test_the_shipped_settings_pass(settings):
    assert not {"smtpconfig.E001", "smtpconfig.E002"} & ids()


def test_retry_not_above_timeout_fails(settings):
    for retry in (300, 200):
        assert "smtpconfig.E001" in ids(Q_CLUSTER={**settings.Q_CLUSTER, "retry": retry})


def test_missing_retry_or_timeout_fails(settings):
    q_cluster = {key: value for key, value in settings.Q_CLUSTER.items() if key != "retry"}
    assert "smtpconfig.E001" in ids(Q_CLUSTER=q_cluster)


def test_unset_smtp_timeout_fails(settings):
    for timeout in (None, 0):
        assert "smtpconfig.E002" in ids(MAILADMIN={**settings.MAILADMIN, "SMTP_TIMEOUT": timeout})


def test_start_up_fails_on_a_misconfigured_queue(settings, db):
    q_cluster = {**settings.Q_CLUSTER, "retry": settings.Q_CLUSTER["timeout"]}
    with override_settings(Q_CLUSTER=q_cluster), pytest.raises(SystemCheckError, match="E001"):
        call_command("check")
