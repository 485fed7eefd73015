"""Two-factor pages and the lockout page. Each view calls the services, nothing more."""

from datetime import timedelta

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from audit.services import AuditAction, audit_record
from mailadmin.security.forms import CodeForm, EnrolmentForm
from mailadmin.security.network import client_ip_address
from mailadmin.security.second_factor import (
    SecondFactorThrottled,
    authenticator_confirm,
    authenticator_for_enrolment,
    authenticator_qr_svg,
    authenticator_secret,
    backup_codes_generate,
    second_factor_remove,
    second_factor_status,
    second_factor_verify,
)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' lockout page: says why, and when this username may try again from here."""
    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request) or timedelta(0)
    last_failure = AccessAttempt.objects.filter(
        username=username, ip_address=client_ip_address(request)
    ).aggregate(last=Max("attempt_time"))["last"]
    retry_at = (last_failure or timezone.now()) + cool_off
    context = {
        **admin.site.each_context(request),
        "title": _("Sign-in locked"),
        "username": username,
        "failure_limit": get_failure_limit(request, credentials),
        "retry_at": retry_at,
        "retry_minutes": max(1, round((retry_at - timezone.now()).total_seconds() / 60)),
    }
    return render(request, "registration/locked_out.html", context, status=429)


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _context(request, **extra):
    return {**admin.site.each_context(request), "next": _next_url(request), **extra}


@never_cache
@login_required
def two_factor_overview(request):
    status = second_factor_status(user=request.user)
    return render(
        request,
        "two_factor/overview.html",
        _context(request, title=_("Two-factor sign-in"), status=status),
    )


@never_cache
@sensitive_post_parameters("code")
@login_required
def two_factor_setup(request):
    device = authenticator_for_enrolment(user=request.user)
    form = EnrolmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = authenticator_confirm(
            request=request, device=device, code=form.cleaned_data["code"]
        )
        if codes is not None:
            audit_record(action=AuditAction.TWO_FACTOR_ENABLED, obj=request.user, request=request)
            return render(
                request,
                "two_factor/backup_codes.html",
                _context(request, title=_("Your backup codes"), codes=codes),
            )
        form.add_error(
            "code", _("This code is not right. Check the time on your phone and try again.")
        )
    return render(
        request,
        "two_factor/setup.html",
        _context(
            request,
            title=_("Set up two-factor sign-in"),
            form=form,
            qr_svg=mark_safe(authenticator_qr_svg(device=device)),  # noqa: S308 (made here)
            secret=authenticator_secret(device=device),
        ),
    )


@never_cache
@sensitive_post_parameters("code")
@login_required
def two_factor_verify(request):
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = second_factor_verify(request=request, code=form.cleaned_data["code"])
        except SecondFactorThrottled as error:
            form.add_error("code", str(error))
        else:
            if device is not None:
                return HttpResponseRedirect(_next_url(request))
            form.add_error("code", _("This code is not right. Try again."))
    return render(
        request,
        "two_factor/verify.html",
        _context(request, title=_("Second step: your code"), form=form),
    )


@never_cache
@require_POST
@login_required
def backup_codes_renew(request):
    if second_factor_status(user=request.user).authenticator is None:
        messages.error(request, _("Set up your authenticator app first."))
        return redirect("security:two_factor")
    codes = backup_codes_generate(user=request.user)
    return render(
        request,
        "two_factor/backup_codes.html",
        _context(request, title=_("Your backup codes"), codes=codes),
    )


@require_POST
@login_required
def two_factor_remove(request):
    if second_factor_status(user=request.user).required:
        messages.error(request, _("Your role needs two-factor sign-in: it cannot be removed."))
        return redirect("security:two_factor")
    if second_factor_remove(user=request.user):
        audit_record(action=AuditAction.TWO_FACTOR_REMOVED, obj=request.user, request=request)
    messages.success(request, _("Two-factor sign-in is off."))
    return redirect("security:two_factor")


@require_POST
def sign_out(request):
    """Sign out, also for a session that has not passed its second factor yet."""
    logout(request)
    return redirect("admin:login")
