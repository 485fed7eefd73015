"""Fixtures of the server admin tests: a signed-in administrator."""

import pytest

# The local OAuth2 token endpoint and XOAUTH2 peer, for servers set up through the form.
from tests.oauth.conftest import (  # noqa: F401
    service_account_key,
    token_endpoint,
    xoauth2_peer,
)
from tests.signin import client_sign_in_verified


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@club.example", password="correct horse battery"
    )


def sign_in_with_second_factor(client, user) -> None:
    """Sign ``client`` in as ``user``, as if the authenticator code had just been typed."""
    client_sign_in_verified(client, user)


@pytest.fixture
def admin_client(client, admin_user):
    """A client signed in as a superuser who has passed the second factor."""
    sign_in_with_second_factor(client, admin_user)
    return client
