"""Admin of SMTP servers. The outbox and the mail settings live in admin_outbox."""

from smtpconfig import admin_outbox  # noqa: F401  (registers the outbox and settings admins)
