"""Mailadmin's exceptions.

Each carries its context and also inherits the built-in type a caller would already catch,
so the CRM's existing error handling keeps working.
"""


class MailadminError(Exception):
    """Base of every error Mailadmin raises on purpose."""


class ConfigurationError(MailadminError):
    """Mailadmin is set up in a way that cannot work; ``fail_silently`` never hides it."""


class NoServerAvailable(ConfigurationError):
    """No active SMTP server can send this message: none matches and there is no default."""

    def __init__(self, message: str, *, from_email: str = ""):
        super().__init__(message)
        self.from_email = from_email


class InvalidMessage(MailadminError, ValueError):
    """A message that cannot be sent as given (bad header, unparsable address...)."""

    def __init__(self, message: str, *, value: str = ""):
        super().__init__(message)
        self.value = value


class DeliveryFailed(MailadminError, OSError):
    """Direct delivery failed for some messages of one call; the others were still attempted.

    An ``OSError`` (like ``smtplib.SMTPException``) so callers' SMTP error handling works.
    """

    def __init__(self, message: str, *, message_ids: list[int]):
        super().__init__(message)
        self.message_ids = message_ids


class DecryptionError(ConfigurationError):
    """A stored secret cannot be decrypted with any of ``MAILADMIN_ENCRYPTION_KEYS``."""


class ServerChangeRefused(MailadminError, ValueError):
    """A change to the SMTP servers that would leave mail without a way out (no default)."""

    def __init__(self, message: str, *, server_name: str = ""):
        super().__init__(message)
        self.server_name = server_name
