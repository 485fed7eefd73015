"""Portal pages for club staff: compose from a template, and a member's mail history."""

from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from mailadmin.forms import ComposeForm, HistoryLookupForm, context_as_json
from mailadmin.history import recipient_reason
from mailadmin.models import MailTemplate
from mailadmin.selectors import recipient_history_page
from mailadmin.services import compose_send, template_preview
from smtpconfig.exceptions import MailadminError
from smtpconfig.models import MailSettings, OutgoingMessage

SEND_TEST = "_send_test"
SEND_REAL = "_send_real"


def _portal_context(request, *, title: str) -> dict:
    # The admin's own context (site header, user links, sidebar) so the portal pages look
    # like the rest of it.
    return {**admin.site.each_context(request), "title": title}


def _chosen_template(request) -> MailTemplate | None:
    template_id = request.POST.get("template") or request.GET.get("template")
    if not template_id or not str(template_id).isdigit():
        return None
    return MailTemplate.objects.filter(pk=template_id).first()


@login_required
@permission_required("mailadmin.compose_mail", raise_exception=True)
@require_http_methods(["GET", "POST"])
def compose(request):
    """Pick a template, enter recipients and values, preview, send.

    While test mode is on, "Send" leads to a confirmation that offers the test address or
    the real recipients; the real recipients need ``mailadmin.send_real_in_test_mode``.
    """
    settings_row = MailSettings.load()
    template = _chosen_template(request)
    page = _portal_context(request, title=_("Compose a mail"))
    page["mail_settings"] = settings_row

    if request.method == "GET" or "_load" in request.POST:
        source = request.POST if request.method == "POST" else request.GET
        initial = {
            "template": template,
            "recipients": source.get("recipients") or source.get("to", ""),
        }
        form = ComposeForm(template=template, initial=initial)
        return render(request, "mailadmin/compose.html", {**page, "form": form})

    form = ComposeForm(request.POST, template=template)
    if not form.is_valid():
        return render(request, "mailadmin/compose.html", {**page, "form": form})

    template = form.cleaned_data["template"]
    recipients = form.cleaned_data["recipients"]
    context = form.context()
    page.update(form=form, mail_preview=template_preview(template=template, context=context))

    wants_real = SEND_REAL in request.POST
    if wants_real or SEND_TEST in request.POST:
        if settings_row.test_mode and wants_real:
            if not request.user.has_perm("mailadmin.send_real_in_test_mode"):
                raise PermissionDenied(
                    _("Only users allowed to send for real during test mode may do this.")
                )
        elif not settings_row.test_mode and not wants_real:
            # The user chose the test address, but test mode was switched off meanwhile:
            # sending now would reach the real recipients, which they did not choose.
            messages.warning(
                request,
                _("Test mode was switched off in the meantime. Check and send again."),
            )
            return render(request, "mailadmin/compose.html", page)
        return _send(
            request,
            template=template,
            recipients=recipients,
            context=context,
            test_mode=settings_row.test_mode,
            bypass_test_mode=settings_row.test_mode and wants_real,
        )

    if "_send" in request.POST:
        if settings_row.test_mode:
            page.update(
                recipients=recipients,
                context_json=context_as_json(context),
                can_send_real=request.user.has_perm("mailadmin.send_real_in_test_mode"),
            )
            return render(request, "mailadmin/compose_confirm.html", page)
        return _send(
            request,
            template=template,
            recipients=recipients,
            context=context,
            test_mode=False,
            bypass_test_mode=False,
        )

    return render(request, "mailadmin/compose.html", page)


def _send(request, *, template, recipients, context, test_mode: bool, bypass_test_mode: bool):
    history_links = format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("mailadmin_history", kwargs={"address": address}), address)
            for address in recipients
        ),
    )
    try:
        records = compose_send(
            template=template,
            recipients=recipients,
            context=context,
            user=request.user,
            bypass_test_mode=bypass_test_mode,
        )
    except MailadminError as error:
        messages.error(
            request,
            format_html(
                "{} {} {} {}", _("Sending failed:"), str(error), _("History:"), history_links
            ),
        )
    else:
        queued = any(record.status == OutgoingMessage.Status.QUEUED for record in records)
        if queued and test_mode and not bypass_test_mode:
            intro = _("Queued for the test address instead of:")
        elif queued:
            intro = _("Queued for sending to:")
        elif bypass_test_mode:
            intro = _("Sent to the real recipients although test mode is on:")
        elif test_mode:
            intro = _("Sent to the test address instead of:")
        else:
            intro = _("Sent to:")
        messages.success(request, format_html("{} {}", intro, history_links))
    return redirect(f"{reverse('mailadmin_compose')}?template={template.pk}")


@login_required
@permission_required("smtpconfig.view_recipient", raise_exception=True)
@require_http_methods(["GET"])
def history_lookup(request):
    """A box to type a member's address; it opens that address's history."""
    form = HistoryLookupForm(request.GET or None)
    if form.is_valid():
        return redirect("mailadmin_history", address=form.cleaned_data["address"])
    page = _portal_context(request, title=_("Mail history of a member"))
    page["form"] = form
    return render(request, "mailadmin/history_lookup.html", page)


@login_required
@permission_required("smtpconfig.view_recipient", raise_exception=True)
@require_http_methods(["GET"])
def history(request, address: str):
    """Every message to ``address``, newest first, with its status and the reason for it."""
    page_obj = recipient_history_page(address=address, page_number=request.GET.get("page"))
    rows = [(recipient, recipient_reason(recipient=recipient)) for recipient in page_obj]
    page = _portal_context(request, title=_("Mail history of %(address)s") % {"address": address})
    page.update(
        address=address,
        page_obj=page_obj,
        rows=rows,
        can_open_messages=request.user.has_perm("smtpconfig.view_outgoingmessage")
        and admin.site.is_registered(OutgoingMessage),
    )
    return render(request, "mailadmin/history.html", page)
