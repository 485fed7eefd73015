"""Users in each role, real sign-ins through the admin login, TOTP codes computed here."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from mailadmin.roles import CLUB_STAFF, MAIL_ADMINISTRATORS
from tests.signin import client_sign_in_verified

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # Rate-limit counters live in the cache. With REDIS_URL that is a Redis database other
    # tests and runs share, and clearing it would flush them all: each test gets its own
    # memory cache instead (test_ratelimit covers Redis itself).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"security-tests-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def make_user(db):
    def make(username, *, groups=(), superuser=False, staff=True):
        user = get_user_model().objects.create_user(
            username=username,
            password=PASSWORD,
            email=f"{username}@club.example",
            is_staff=staff or superuser,
            is_superuser=superuser,
        )
        user.groups.set(Group.objects.filter(name__in=groups))
        return user

    return make


@pytest.fixture
def administrator(make_user):
    return make_user("alice", groups=[MAIL_ADMINISTRATORS])


@pytest.fixture
def staff_member(make_user):
    return make_user("bob", groups=[CLUB_STAFF])


def confirmed_authenticator(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """The code the user's phone would show now, as the RFC 6238 algorithm computes it."""
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(code).zfill(device.digits)


def sign_in(client, username, password=PASSWORD, *, address="192.0.2.10", next_url=None):
    """Post the admin login form, as a browser would."""
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("admin:login"), data, REMOTE_ADDR=address)


def verified_client(client, user, device=None):
    """A client signed in with both factors, for tests about something else."""
    device = device or TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return client_sign_in_verified(client, user, device or confirmed_authenticator(user))
