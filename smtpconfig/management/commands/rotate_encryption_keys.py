"""Re-encrypt every stored secret with the first of ``MAILADMIN_ENCRYPTION_KEYS``.

Put the new key first, keep the old ones after it, run this, then remove the old keys.
"""

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from smtpconfig.crypto import EncryptedTextField, secret_rotate


def encrypted_columns() -> list[tuple[type, EncryptedTextField]]:
    """Every (model, field) stored encrypted, found from the fields' type, not a list."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of MAILADMIN_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        quote = connection.ops.quote_name
        total = 0
        with transaction.atomic():
            for model, field in encrypted_columns():
                table = quote(model._meta.db_table)
                column = quote(field.column)
                pk_column = quote(model._meta.pk.column)
                # Raw SQL: the field would decrypt on read and encrypt anew on write, and the
                # point is to carry the stored token from one key to the other unread.
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT {pk_column}, {column} FROM {table} "  # noqa: S608
                        f"WHERE {column} IS NOT NULL AND {column} <> ''"
                    )
                    rows = cursor.fetchall()
                    for pk, token in rows:
                        try:
                            rotated = secret_rotate(token=token)
                        except InvalidToken:
                            raise CommandError(
                                f"{model._meta.label}.{field.name} of row {pk} cannot be "
                                "decrypted with any key of MAILADMIN_ENCRYPTION_KEYS; nothing "
                                "was changed. Add back the key it was encrypted with."
                            ) from None
                        cursor.execute(
                            f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s",  # noqa: S608
                            [rotated, pk],
                        )
                total += len(rows)
                if rows:
                    self.stdout.write(f"{model._meta.label}.{field.name}: {len(rows)}")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secrets with the first key."))
