"""The public unsubscribe page: no login, the signed link is the authorisation."""

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from smtpconfig.unsubscribe import InvalidUnsubscribeLink, unsubscribe_address, unsubscribe_apply


# Mailbox providers POST "List-Unsubscribe=One-Click" without cookies or a CSRF token
# (RFC 8058); the signed token in the URL is what protects the action.
@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    """GET asks for confirmation (link scanners must not unsubscribe anyone); POST does it."""
    try:
        address = unsubscribe_address(token=token)
    except InvalidUnsubscribeLink:
        return render(request, "smtpconfig/unsubscribe_invalid.html", status=400)
    if request.method == "POST":
        unsubscribe_apply(token=token)
        return render(request, "smtpconfig/unsubscribe_done.html", {"address": address})
    return render(request, "smtpconfig/unsubscribe.html", {"address": address})
