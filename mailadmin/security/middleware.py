"""Session lifetime and the second-factor gate, applied to every request."""

import time
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext_lazy as _
from django_otp import user_has_device

from mailadmin.security.second_factor import second_factor_satisfied
from mailadmin.security.sessions import session_expired, session_touch


class SessionTimeoutMiddleware:
    """End a signed-in session after the idle timeout or the absolute lifetime."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            reason = session_expired(session=request.session, now=time.time())
            if reason:
                logout(request)
                messages.info(request, reason)
        response = self.get_response(request)
        if request.user.is_authenticated:
            # After the view, so the request that signs in starts the clock.
            session_touch(session=request.session, now=time.time())
        return response


class SecondFactorMiddleware(MiddlewareMixin):
    """Send a session that owes its second factor to verification (or enrolment).

    Until then, only verification, sign-out and the language switch answer, and enrolment
    for a user who has no authenticator yet: a password alone must never be enough to
    replace someone's authenticator with the intruder's.
    """

    OPEN_VIEWS = {"security:two_factor_verify", "security:sign_out", "set_language"}
    ENROLMENT_VIEW = "security:two_factor_setup"

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is None or match.view_name in self.OPEN_VIEWS:
            return None
        user = request.user
        if not user.is_authenticated or second_factor_satisfied(user=user):
            return None
        has_device = user_has_device(user, confirmed=True)
        if match.view_name == self.ENROLMENT_VIEW and not has_device:
            return None
        if has_device:
            target = reverse("security:two_factor_verify")
        else:
            messages.info(
                request, _("Your role needs two-factor sign-in. Set up your authenticator app.")
            )
            target = reverse("security:two_factor_setup")
        next_url = request.GET.get("next") if match.url_name == "login" else None
        next_url = next_url or (request.get_full_path() if request.method == "GET" else "")
        if next_url:
            target = f"{target}?{urlencode({'next': next_url})}"
        return HttpResponseRedirect(target)
