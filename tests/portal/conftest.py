"""Users in each role of the portal, signed in without a second factor where none is needed."""

import pytest
from django.contrib.auth.models import Group

from mailadmin.roles import BLACKLIST_MANAGERS, CLUB_STAFF


@pytest.fixture
def make_member(db, django_user_model):
    """A staff user in the named roles (groups of migration 0003_roles)."""

    def make(username, *groups):
        user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
        user.groups.set(Group.objects.filter(name__in=groups))
        return user

    return make


@pytest.fixture
def club_staff(make_member):
    return make_member("clara", CLUB_STAFF)


@pytest.fixture
def blacklist_manager(make_member):
    return make_member("bruno", BLACKLIST_MANAGERS)
