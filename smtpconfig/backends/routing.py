"""Mailadmin's email backend: ``MAILERS["default"]``.

The club's code keeps calling ``send_mail``, ``send_mass_mail`` or ``EmailMessage.send()``;
this backend routes each message to a server, applies the blacklist and test mode, records
it, and then queues it or sends it at once (``MailSettings.delivery``).
"""

import threading

from django.core.mail.backends.base import BaseEmailBackend
from django.utils.translation import gettext as _

from smtpconfig.direct import messages_deliver_direct
from smtpconfig.exceptions import DeliveryFailed
from smtpconfig.models import MailSettings, OutgoingMessage
from smtpconfig.recording import messages_plan, messages_plan_kept, messages_record


class EmailBackend(BaseEmailBackend):
    """Route, record and deliver messages through the servers configured in Mailadmin.

    It takes no OPTIONS: everything it needs is configured in the portal and read when
    messages are sent, so a change there applies to the next message.

    ``send_messages`` returns how many messages were handed on for delivery: queued, or
    accepted by a server in direct mode. A message whose recipients were all blacklisted is
    recorded but not counted, like Django's own backends do not count a message without
    recipients.

    Errors: ``InvalidMessage`` (a ``ValueError``) and ``NoServerAvailable`` are raised before
    anything of the call is recorded and are never silenced. In direct mode a failed message
    is recorded ``failed`` and, once the others were attempted, ``DeliveryFailed`` (an
    ``OSError``, like ``smtplib``'s errors) names the failures; ``fail_silently`` only
    silences this one.

    ``open()`` starts a session in which server connections opened for direct delivery stay
    open for the next calls; ``close()`` closes them and never raises. ``send_messages``
    opens and closes a session itself unless one is open already.
    """

    def __init__(self, *, fail_silently=False, **kwargs):
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        self._connections: dict | None = None
        self._lock = threading.RLock()

    def open(self) -> bool:
        """Start a session; ``True`` if this call started it, ``False`` if one was open."""
        with self._lock:
            if self._connections is not None:
                return False
            self._connections = {}
            return True

    def close(self) -> None:
        """Close every server connection of the session; never raises."""
        with self._lock:
            connections, self._connections = self._connections or {}, None
            for connection in connections.values():
                connection.close()

    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        with self._lock:
            created_session = self.open()
            try:
                return self._send(list(email_messages))
            finally:
                if created_session:
                    self.close()

    def _send(self, email_messages: list) -> int:
        # One message on PostgreSQL: planned with the configuration the call before read,
        # which the statement recording it checks (one round trip, not two); where that
        # configuration is no longer the database's, nothing is written and the call reads.
        kept = messages_plan_kept(email_messages=email_messages)
        keys = None
        if kept is not None:
            config, plans, unless = kept
            keys = messages_record(
                plans=plans, delivery=config.mail_settings.delivery, unless=unless
            )
        if keys is None:
            config, plans = messages_plan(email_messages=email_messages)
            keys = messages_record(plans=plans, delivery=config.mail_settings.delivery)
        mail_settings = config.mail_settings
        handed_on = [key for key, plan in zip(keys, plans, strict=True) if not plan.is_suppressed]
        if mail_settings.delivery != MailSettings.Delivery.DIRECT:
            return len(handed_on)
        messages = OutgoingMessage.objects.filter(pk__in=handed_on).select_related("server")
        failed = messages_deliver_direct(
            messages=list(messages.order_by("pk")), connections=self._connections
        )
        if failed and not self.fail_silently:
            raise DeliveryFailed(
                _("Sending failed for %(count)d of %(total)d message(s): %(details)s")
                % {
                    "count": len(failed),
                    "total": len(handed_on),
                    "details": "; ".join(
                        f"{message.message_id} ({message.subject!r}): {message.last_error}"
                        for message in failed
                    ),
                },
                message_ids=[message.pk for message in failed],
            )
        return len(handed_on) - len(failed)
