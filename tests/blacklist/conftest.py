"""Users for the blacklist tests: a manager holding the blacklist permissions, plain staff."""

import pytest
from django.contrib.auth.models import Permission

BLACKLIST_PERMISSIONS = [
    "view_blacklistentry",
    "add_blacklistentry",
    "change_blacklistentry",
    "delete_blacklistentry",
    "view_historicalblacklistentry",
]


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manon", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="blacklist", codename__in=BLACKLIST_PERMISSIONS
        )
    )
    return user


@pytest.fixture
def plain_staff(django_user_model):
    return django_user_model.objects.create_user("stefan", password="pw", is_staff=True)


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client
