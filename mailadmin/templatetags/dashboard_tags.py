from django import template
from django.utils import timezone

from mailadmin.dashboard import (
    chart_bars,
    dashboard_days,
    dashboard_failed,
    dashboard_queue_counts,
    dashboard_servers,
)

register = template.Library()


@register.inclusion_tag("mailadmin/dashboard/dashboard.html", takes_context=True)
def mailadmin_dashboard(context):
    user = context["request"].user
    now = timezone.now()
    can_see_servers = user.has_perm("smtpconfig.view_smtpserver")
    days = dashboard_days(now=now)
    bars, top = chart_bars(days)
    return {
        "request": context["request"],
        "now": now,
        "can_see_servers": can_see_servers,
        "can_see_outbox": user.has_perm("smtpconfig.view_outgoingmessage"),
        "servers": dashboard_servers(now=now)
        if user.has_perm("smtpconfig.view_smtpserver")
        else [],
        "counts": dashboard_queue_counts(),
        "failed": dashboard_failed(),
        "days": days,
        "bars": bars,
        "top": top,
    }
