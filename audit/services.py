"""The audit trail: who changed what security-relevant setting, when, from where.

``audit_record`` is the one way to write it. It imports no app of the project, so any
service (smtpconfig, blacklist, the portal) can call it inside its own transaction.
"""

import json
import re
from enum import StrEnum

from axes.helpers import get_client_ip_address
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from audit.models import AuditEvent
from audit.secrets import Secret

MASK = "********"
# Keys whose values are never stored, whatever their type.
SECRET_KEYS = re.compile(
    r"pass|secret|token|credential|api_?key|private_?key|signature", re.IGNORECASE
)


class AuditAction(StrEnum):
    TEST_MODE_CHANGED = "mail_settings.test_mode"
    DEFAULT_SERVER_CHANGED = "server.default"
    SERVER_CREDENTIALS_CHANGED = "server.credentials"
    LIMIT_RESET = "server.limit_reset"
    BLACKLIST_REMOVED = "blacklist.removed"
    USER_ROLES_CHANGED = "user.roles"
    USER_DEACTIVATED = "user.deactivated"
    USER_UNLOCKED = "user.unlocked"
    TWO_FACTOR_ENABLED = "user.two_factor_enabled"
    TWO_FACTOR_REMOVED = "user.two_factor_removed"


AUDIT_ACTION_LABELS = {
    AuditAction.TEST_MODE_CHANGED: _("Test mode switched"),
    AuditAction.DEFAULT_SERVER_CHANGED: _("Default server changed"),
    AuditAction.SERVER_CREDENTIALS_CHANGED: _("Server credentials changed"),
    AuditAction.LIMIT_RESET: _("Send limit reset"),
    AuditAction.BLACKLIST_REMOVED: _("Blacklist entries removed"),
    AuditAction.USER_ROLES_CHANGED: _("User's roles changed"),
    AuditAction.USER_DEACTIVATED: _("User deactivated, sessions ended"),
    AuditAction.USER_UNLOCKED: _("Sign-in lockout lifted"),
    AuditAction.TWO_FACTOR_ENABLED: _("Two-factor sign-in set up"),
    AuditAction.TWO_FACTOR_REMOVED: _("Two-factor sign-in removed"),
}


def audit_record(
    *,
    action: str,
    obj,
    before: dict | None = None,
    after: dict | None = None,
    request: HttpRequest | None = None,
    user=None,
) -> AuditEvent:
    """Record one change. Secret values are masked: only the fact that they changed stays.

    ``user`` defaults to the request's signed-in user and the address to the request's
    client (behind ``TRUSTED_PROXY_COUNT`` proxies), read by ``AXES_CLIENT_IP_CALLABLE`` so
    the trail and the lockouts see the same address. Without ``request``, the request being
    served is used: django-simple-history's middleware already keeps it at hand, so a
    service called from a view records the address without passing the request down.
    """
    if request is None:
        request = getattr(HistoricalRecords.context, "request", None)
    if user is None and request is not None and request.user.is_authenticated:
        user = request.user
    before_clean = _without_secrets(before or {})
    after_clean = _without_secrets(after or {})
    return AuditEvent.objects.create(
        action=str(action),
        object_repr=_describe(obj)[:255],
        before=before_clean,
        after=after_clean,
        user=user if user is not None and user.is_authenticated else None,
        ip_address=get_client_ip_address(request) if request is not None else None,
    )


def audit_action_label(action: str) -> str:
    return str(AUDIT_ACTION_LABELS.get(action, action))


def _describe(obj) -> str:
    if isinstance(obj, models.Model):
        return f"{obj._meta.verbose_name}: {obj}"
    return str(obj)


def _without_secrets(value, key: str = ""):
    if isinstance(value, Secret) or (key and SECRET_KEYS.search(key)):
        # "Changed to an empty value" is information; the value itself never is.
        return MASK if value else ""
    if isinstance(value, dict):
        return {str(k): _without_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_without_secrets(item) for item in items]
    if isinstance(value, models.Model):
        return str(value)
    # Round-trip through JSON so dates, decimals and lazy strings are stored as text.
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
