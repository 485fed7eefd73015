"""Session lifetime and ending sessions on behalf of a user."""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from smtpconfig.conf import mailadmin_setting

STARTED_KEY = "_mailadmin_session_started"
SEEN_KEY = "_mailadmin_session_seen"
# Writing the session on every request would cost a database write per click; the idle
# clock is precise to this many seconds instead.
TOUCH_GRANULARITY = 30


def session_expired(*, session, now: float) -> str:
    """Why this signed-in session must end now (idle or too old), or "" while it may go on."""
    started = session.get(STARTED_KEY)
    seen = session.get(SEEN_KEY)
    if started is None or seen is None:
        return ""
    idle = mailadmin_setting("SESSION_IDLE_TIMEOUT")
    if now - seen > idle:
        return str(
            _("You were signed out after %(minutes)d minutes without activity.")
            % {"minutes": max(1, idle // 60)}
        )
    if now - started > settings.SESSION_COOKIE_AGE:
        return str(_("Your session reached its maximum length. Please sign in again."))
    return ""


def session_touch(*, session, now: float) -> None:
    """Record activity; the first call after sign-in also starts the absolute clock."""
    session.setdefault(STARTED_KEY, int(now))
    if now - session.get(SEEN_KEY, 0) >= TOUCH_GRANULARITY:
        session[SEEN_KEY] = int(now)


def user_sessions_end(*, user) -> int:
    """Delete every stored session of ``user``; return how many ended."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended
