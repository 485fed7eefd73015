"""Secrets at rest: MultiFernet over ``MAILADMIN_ENCRYPTION_KEYS``.

The first key encrypts, all of them decrypt.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.db import models

from audit.secrets import Secret
from smtpconfig.conf import mailadmin_setting
from smtpconfig.exceptions import ConfigurationError, DecryptionError


def _fernet() -> MultiFernet:
    keys = mailadmin_setting("ENCRYPTION_KEYS")
    if not keys:
        raise ConfigurationError("MAILADMIN_ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    return MultiFernet([Fernet(key) for key in keys])


def secret_encrypt(*, plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(*, token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with MAILADMIN_ENCRYPTION_KEYS; "
            "was a key removed before `manage.py rotate_encryption_keys` ran?"
        ) from None


def secret_rotate(*, token: str) -> str:
    """Re-encrypt ``token`` with the first key."""
    return _fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; Python code sees the plaintext as ``Secret``.

    An empty value is stored as an empty string, so "no secret set" stays visible to queries.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return Secret("")
        return Secret(secret_decrypt(token=value))

    def to_python(self, value):
        if value is None or isinstance(value, Secret):
            return value
        return Secret(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return ""
        return secret_encrypt(plaintext=str(value))
