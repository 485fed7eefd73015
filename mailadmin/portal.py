"""Portal pages of the mail administrators and staff: the routing check."""

from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailadmin.services import template_route_describe


class RoutingCheckForm(forms.Form):
    sender = forms.CharField(
        label=gettext_lazy("Sender address"),
        max_length=320,
        help_text=gettext_lazy("As the club's software would send it, e.g. info@club.example."),
    )
    reply_to = forms.EmailField(label=gettext_lazy("Reply-To (optional)"), required=False)


@login_required
def routing_check(request):
    """Which server would send mail from a sender, whether its From is rewritten, and why."""
    if not request.user.is_staff:
        raise PermissionDenied
    form = RoutingCheckForm(request.GET or None)
    result = None
    if form.is_valid():
        result = template_route_describe(
            sender_email=form.cleaned_data["sender"], reply_to=form.cleaned_data["reply_to"]
        )
    context = {
        **admin.site.each_context(request),
        "title": _("Routing check"),
        "form": form,
        "result": result,
    }
    return render(request, "mailadmin/routing_check.html", context)
