"""Why a message did or did not reach a member, in words staff can read out on the phone."""

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from smtpconfig.models import OutgoingMessage, Recipient


def _when(moment) -> str:
    return formats.localize(timezone.localtime(moment)) if moment else "—"


def _server_name(message: OutgoingMessage) -> str:
    return message.server.name if message.server_id else _("no server")


def _message_fate(message: OutgoingMessage) -> str:
    status = message.status
    server = _server_name(message)
    if status == OutgoingMessage.Status.SENT:
        return _("sent by server %(server)s") % {"server": server}
    if status == OutgoingMessage.Status.FAILED:
        return _("failed on server %(server)s: %(error)s") % {
            "server": server,
            "error": message.last_error,
        }
    if status == OutgoingMessage.Status.DEFERRED:
        return _("deferred on server %(server)s until %(when)s: %(error)s") % {
            "server": server,
            "when": _when(message.next_attempt_at),
            "error": message.last_error,
        }
    if status == OutgoingMessage.Status.CANCELLED:
        return _("cancelled")
    if status == OutgoingMessage.Status.SENDING:
        return _("being sent by server %(server)s") % {"server": server}
    return _("waiting to be sent by server %(server)s") % {"server": server}


def recipient_reason(*, recipient: Recipient) -> str:
    """The reason behind ``recipient``'s status: which server, which blacklist entry, which reply.

    Reads only the message, its server and the blacklist entry (the history's select_related).
    """
    message = recipient.message
    status = recipient.status
    if status == Recipient.Status.SENT:
        return _("Sent by server %(server)s; it answered “%(reply)s”.") % {
            "server": _server_name(message),
            "reply": recipient.reply or "250",
        }
    if status == Recipient.Status.SUPPRESSED:
        entry = recipient.blacklist_entry
        if entry is None:
            return _("Suppressed by a blacklist entry that has since been removed.")
        return _("Suppressed by the blacklist entry %(entry)s (%(reason)s).") % {
            "entry": entry.email,
            "reason": entry.get_reason_display(),
        }
    if status == Recipient.Status.REDIRECTED:
        return _("Redirected by test mode to %(address)s; %(fate)s.") % {
            "address": recipient.delivered_to or _("the test address"),
            "fate": _message_fate(message),
        }
    if status == Recipient.Status.REFUSED:
        return _("Refused by server %(server)s: “%(reply)s”.") % {
            "server": _server_name(message),
            "reply": recipient.reply or message.last_error,
        }
    if status == Recipient.Status.DEFERRED:
        return _("Deferred: server %(server)s answered “%(reply)s”; next attempt %(when)s.") % {
            "server": _server_name(message),
            "reply": recipient.reply,
            "when": _when(message.next_attempt_at),
        }
    return _("Not sent yet: %(fate)s.") % {"fate": _message_fate(message)}
