"""The database's plan for a query, to check which index serves it."""

from django.db import connection, transaction


def query_plan(queryset) -> str:
    """``queryset.explain()``; on PostgreSQL the plan an index makes possible, which it gives
    only if an index serves the query: it reads small tables whole whatever their indexes."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        return queryset.explain()
