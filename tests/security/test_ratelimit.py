"""Per-user rate limit of "Test connection" and "Send test mail"."""

import os
import uuid

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import reverse

from smtpconfig import ratelimit
from smtpconfig.ratelimit import rate_limit_hit
from tests.security.conftest import verified_client


def test_the_limit_counts_per_key():
    hits = [rate_limit_hit(key="a", limit=3, period=600) for _ in range(5)]
    assert hits == [False, False, False, True, True]
    assert rate_limit_hit(key="b", limit=3, period=600) is False


def test_a_zero_limit_refuses_at_once():
    assert rate_limit_hit(key="zero", limit=0, period=600) is True


@pytest.mark.django_db
@override_settings(MAILADMIN={**settings.MAILADMIN, "TEST_ACTION_LIMIT": 2})
def test_each_user_and_action_has_its_own_budget(administrator, staff_member):
    assert not ratelimit.test_action_rate_limited(user=administrator, action="test_connection")
    assert not ratelimit.test_action_rate_limited(user=administrator, action="test_connection")
    assert ratelimit.test_action_rate_limited(user=administrator, action="test_connection")
    assert not ratelimit.test_action_rate_limited(user=administrator, action="send_test_mail")
    assert not ratelimit.test_action_rate_limited(user=staff_member, action="test_connection")


@pytest.mark.django_db
@override_settings(MAILADMIN={**settings.MAILADMIN, "TEST_ACTION_LIMIT": 2})
def test_test_connection_in_the_admin_is_rate_limited(make_server, sink, administrator):
    server = make_server(sink=sink, name="Relay")
    client = verified_client(Client(), administrator)
    url = reverse("admin:smtpconfig_smtpserver_test_connection", args=[server.pk])
    pages = [client.post(url, follow=True).content.decode() for _ in range(3)]
    refusal = "Too many tests in a short time"
    assert [refusal in page for page in pages] == [False, False, True]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_the_limit_holds_in_redis_shared_by_every_web_process(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": f"mailadmin-test-{uuid.uuid4()}",
        }
    }
    hits = [rate_limit_hit(key="redis", limit=2, period=60) for _ in range(4)]
    assert hits == [False, False, True, True]
    caches["default"].delete("ratelimit:redis")
