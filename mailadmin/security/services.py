"""User-account actions with security consequences: roles, deactivation, lockouts."""

from axes.utils import reset as axes_reset
from django.db import transaction

from audit.services import AuditAction, audit_record
from mailadmin.security.sessions import user_sessions_end


def user_access_snapshot(*, user) -> dict:
    """What decides a user's access: roles (groups) and the account flags."""
    return {
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
    }


def user_access_change_record(*, user, before: dict, request=None) -> None:
    """Audit a change of roles or flags; a deactivated user's sessions end at once."""
    after = user_access_snapshot(user=user)
    if after == before:
        return
    with transaction.atomic():
        audit_record(
            action=AuditAction.USER_ROLES_CHANGED,
            obj=user,
            before=before,
            after=after,
            request=request,
        )
        if before.get("is_active") and not after["is_active"]:
            ended = user_sessions_end(user=user)
            audit_record(
                action=AuditAction.USER_DEACTIVATED,
                obj=user,
                after={"sessions_ended": ended},
                request=request,
            )


def user_unlock(*, user, request=None) -> int:
    """Lift django-axes' sign-in lockouts of this username, from every address."""
    lifted = axes_reset(username=user.get_username())
    audit_record(
        action=AuditAction.USER_UNLOCKED,
        obj=user,
        after={"lockouts_lifted": lifted},
        request=request,
    )
    return lifted
