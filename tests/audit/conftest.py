"""The security tests' users and their own cache: the trail is read by the same roles."""

from tests.security.conftest import (  # noqa: F401 (fixtures)
    _own_cache,
    administrator,
    make_user,
    staff_member,
)
