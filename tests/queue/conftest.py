"""Fixtures of the queue's tests: a staff user and a clock fixed where each test starts."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staff", "staff@club.example", "pw", is_staff=True)


@pytest.fixture
def now():
    return timezone.now()
