"""A database that refuses a write, for real: a trigger, on SQLite and PostgreSQL alike."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def database_refuses(*, table: str, operation: str, message: str, when: str = ""):
    """Make the database raise ``message`` on ``operation`` (``"INSERT"``, ``"UPDATE OF
    status"``…) of the rows of ``table`` that match ``when`` (a condition on ``NEW``, written
    the same for both databases), as a full disk or a lost server would; undone afterwards."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE {operation} ON {table} "
                f"{f'WHEN {when} ' if when else ''}"
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE {operation} ON {table} FOR EACH ROW "
                f"{f'WHEN ({when}) ' if when else ''}EXECUTE FUNCTION refuse()"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("DROP TRIGGER refuse")
            else:
                cursor.execute(f"DROP TRIGGER refuse ON {table}")
                cursor.execute("DROP FUNCTION refuse()")
