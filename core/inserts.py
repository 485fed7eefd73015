"""Model rows written by an INSERT composed once, for the rows every recorded message adds.

``bulk_create`` makes an instance of each row and prepares each of its values through the
field (about 4 µs a value: a third of a millisecond for the three rows of a message), yet
nearly every value here is a string or a number the database driver takes as it is.
``CompiledInsert`` takes rows as tuples and asks the field only for the values that need
it: every value of a field class Django does not ship (an encrypted field, say) and every
value of another type than the field's own (a ``datetime``, ``bytes``, a lazy string…).
A ``str`` for a text field, an ``int`` for an integer field or a key, a ``bool`` for a
boolean field, and ``None`` for any of them, go to the driver unchanged, as those fields
would give them.

It writes what ``bulk_create`` writes: each field not given gets its default, and now for
``auto_now`` and ``auto_now_add`` (one instant for the whole call); primary keys come back
in the rows' order (``RETURNING`` after a multi-row ``VALUES``; on PostgreSQL, after
``UNNEST`` for more than one row, as ``bulk_create`` does). ``insert_with`` writes rows and
the rows that point to them, all or none: one statement on PostgreSQL for one row;
``insert_with_then`` also reads, once they are committed, in the same round trip.
"""

import functools
from collections.abc import Sequence

from django.db import DatabaseError, NotSupportedError, connections, transaction
from django.db.models import Model, fields
from django.db.models.fields.related import ForeignKey
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from core.compiled import (
    Read,
    counted,
    message_results,
    one_message,
    prepared_session,
    rows_together,
)

_PLAIN_TYPES = {
    fields.CharField: str,
    fields.EmailField: str,
    fields.TextField: str,
    fields.IntegerField: int,
    fields.PositiveIntegerField: int,
    fields.PositiveSmallIntegerField: int,
    fields.PositiveBigIntegerField: int,
    fields.SmallIntegerField: int,
    fields.BigIntegerField: int,
    fields.AutoField: int,
    fields.BigAutoField: int,
    fields.SmallAutoField: int,
    fields.BooleanField: bool,
}


def _plain_type(field) -> type | None:
    """The type whose values ``field`` gives the driver unchanged, if it has one."""
    if type(field) is ForeignKey:
        return _plain_type(field.target_field)
    return _PLAIN_TYPES.get(type(field))


def _is_auto_time(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


class CompiledInsert:
    """Rows of ``model`` given as tuples of the values of ``field_names`` (attribute names:
    a foreign key as ``server_id``). Every other concrete field but the primary key is
    written with its default."""

    def __init__(self, model: type[Model], field_names: Sequence[str]):
        opts = model._meta
        self.model = model
        self.given = [opts.get_field(name) for name in field_names]
        names = [field.attname for field in self.given]
        if names != list(field_names):
            raise ValueError(f"{model.__name__}: give fields by attribute name: {names}.")
        self.rest = [
            field
            for field in opts.concrete_fields
            if field not in self.given and not field.primary_key
        ]
        self.plain = [_plain_type(field) for field in self.given]
        self.columns = [*self.given, *self.rest]

    def _head(self, connection) -> str:
        """``INSERT INTO table (columns)``: only names quoted by the database's own rules go
        into the text; values are parameters."""
        ops = connection.ops
        return "INSERT INTO {} ({})".format(
            ops.quote_name(self.model._meta.db_table),
            ", ".join(ops.quote_name(field.column) for field in self.columns),
        )

    def _prepared(self, rows: Sequence[Sequence], connection) -> list[list]:
        now = timezone.now()
        # The fields not given take the same value in every row, but for a callable
        # default, called for each row.
        called = [
            index
            for index, field in enumerate(self.rest)
            if callable(field.default) and not _is_auto_time(field)
        ]
        rest = [
            field.get_db_prep_save(now if _is_auto_time(field) else field.get_default(), connection)
            for field in self.rest
        ]
        steps = list(zip(self.given, self.plain, strict=True))
        prepared = []
        for row in rows:
            values = [
                value
                if plain is not None and (value is None or type(value) is plain)
                else field.get_db_prep_save(value, connection)
                for (field, plain), value in zip(steps, row, strict=True)
            ]
            values += rest
            for index in called:
                field = self.rest[index]
                values[len(steps) + index] = field.get_db_prep_save(field.get_default(), connection)
            prepared.append(values)
        return prepared

    def insert(self, rows: Sequence[Sequence], *, returning: bool = True, using: str = "default"):
        """Write ``rows`` in as few statements as the database allows; with ``returning``,
        the list of their primary keys in the rows' order."""
        if not rows:
            return [] if returning else None
        connection = connections[using]
        if returning and not connection.features.can_return_rows_from_bulk_insert:
            raise NotSupportedError(f"{connection.display_name} returns no keys from an INSERT.")
        prepared = self._prepared(rows, connection)
        head = self._head(connection)
        pk = connection.ops.quote_name(self.model._meta.pk.column)
        tail = f" RETURNING {pk}" if returning else ""
        if connection.vendor == "postgresql" and len(prepared) > 1:
            return self._unnest(connection, head, tail, self.columns, prepared)
        with connection.cursor() as cursor:
            row_sql = "({})".format(", ".join(["%s"] * len(self.columns)))
            if not returning and len(prepared) > 1:
                cursor.executemany(f"{head} VALUES {row_sql}", prepared)
                return None
            keys = []
            limit = connection.features.max_query_params
            batch = max(1, limit // len(self.columns)) if limit else len(prepared)
            for start in range(0, len(prepared), batch):
                chunk = prepared[start : start + batch]
                cursor.execute(
                    f"{head} VALUES {', '.join([row_sql] * len(chunk))}{tail}",
                    [value for row in chunk for value in row],
                )
                if returning:
                    # SQLite gives RETURNING rows "in an arbitrary order"; the keys it
                    # gives the rows of one statement increase in the rows' order.
                    keys += sorted(key for (key,) in cursor.fetchall())
            return keys if returning else None

    def insert_with(
        self,
        rows: Sequence[Sequence],
        *,
        children: Sequence[tuple["CompiledInsert", Sequence[Sequence[Sequence]]]] = (),
        using: str = "default",
    ) -> list[int]:
        """Write ``rows`` and the rows of other models that point to them, all or none; the
        keys of ``rows``, in their order.

        ``children`` pairs a ``CompiledInsert`` whose first field is the foreign key to this
        model with, for each of ``rows``, the list of its rows, that field given as ``None``:
        the row's new key goes there.

        One row and its children are one statement on PostgreSQL (a data-modifying
        ``WITH``): atomic on its own and one round trip, without a ``BEGIN`` and a
        ``COMMIT`` to wait for besides (inside a caller's transaction, it joins it).
        Otherwise, one ``insert`` per model in one transaction.
        """
        for child, _rows_of in children:
            key_field = child.given[0] if child.given else None
            if getattr(key_field, "related_model", None) is not self.model:
                raise ValueError(
                    f"{child.model.__name__}: the first field must point to {self.model.__name__}."
                )
        if not rows:
            return []
        connection = connections[using]
        if connection.vendor == "postgresql" and len(rows) == 1:
            return [self._one_with(connection, rows[0], children)]
        with transaction.atomic(using=using):
            keys = self.insert(rows, using=using)
            for child, rows_of in children:
                child.insert(
                    [
                        (key, *values[1:])
                        for key, child_rows in zip(keys, rows_of, strict=True)
                        for values in child_rows
                    ],
                    returning=False,
                    using=using,
                )
        return keys

    def insert_with_then(
        self,
        rows: Sequence[Sequence],
        *,
        children: Sequence[tuple["CompiledInsert", Sequence[Sequence[Sequence]]]] = (),
        then: Sequence[Read],
        unless: Sequence[Read] = (),
        using: str = "default",
    ) -> tuple[list[int], list[list[tuple]]]:
        """``insert_with``, then the reads ``then`` once the rows are committed: the keys of
        ``rows`` and the rows of each read (as ``CompiledQuery.rows`` gives them).

        With ``unless``, nothing is written if any of those reads finds a row (the keys are
        then ``[]``; the reads ``then`` still run): a write that holds only while what its
        rows were made from is unchanged.

        Outside a transaction only: inside one, nothing would be committed before the reads.
        On PostgreSQL one row, its children and the reads go to the server as one message
        (``BEGIN; WITH …; COMMIT; SELECT …``): one round trip, the reads seeing what was
        committed once the rows were, and the reads ``unless`` made by the statement that
        writes. Otherwise ``insert_with``, then the reads together; the reads ``unless``
        first, in the rows' transaction.
        """
        connection = connections[using]
        if connection.in_atomic_block:
            raise TransactionManagementError(
                "Reads after the commit need the rows committed on their own: call this "
                "outside a transaction."
            )
        if connection.vendor == "postgresql" and len(rows) == 1 and (then or unless):
            with connection.cursor() as cursor:
                if one_message(connection, cursor):
                    return self._one_with_then(connection, cursor, rows[0], children, then, unless)
        if not unless:
            return self.insert_with(rows, children=children, using=using), rows_together(then)
        with transaction.atomic(using=using):
            found = any(rows_together(unless))
            keys = [] if found else self.insert_with(rows, children=children, using=using)
        return keys, rows_together(then)

    def _one_with_then(self, connection, cursor, row: Sequence, children, then, unless) -> tuple:
        """PostgreSQL: one row, its children and the reads ``then`` in one message; the
        statement writes nothing where one of the reads ``unless`` finds a row.

        Outside a transaction (autocommit) the statement is prepared once per server session,
        like the reads of ``rows_together``: the server then neither parses nor plans it
        again (its CPU for a message's rows goes from about 0.8 to 0.5 ms). The reads after
        the ``COMMIT`` stay plain: the rows are written by then, and a read that failed there
        could not run again without writing them twice. A statement the server no longer
        knows fails before the ``COMMIT``: nothing is written, and the message runs again,
        plain.
        """
        guards = [query._statement(read_params) for query, read_params in unless]
        reads = [query._statement(read_params) for query, read_params in then]
        if {compiled.alias for compiled, _params in [*guards, *reads]} != {connection.alias}:
            raise ValueError(f"Reads of the database written ({connection.alias}) only.")
        sql, params = self._one_with_statement(connection, row, children, guards)
        session = prepared_session(connection)
        if session is not None:
            statement, values, prepared = session.message([(sql, params)])
            try:
                results = _written_then_read(connection, cursor, statement, values, reads)
            except DatabaseError as error:
                if not (session.failed(error) and error.rolled_back):
                    raise
            else:
                session.names |= prepared
                return results
        return _written_then_read(connection, cursor, sql, params, reads)

    def _one_with(self, connection, row: Sequence, children) -> int:
        """PostgreSQL: one row and its children in one statement; its key."""
        sql, params = self._one_with_statement(connection, row, children)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ((key,),) = cursor.fetchall()
        return key

    def _one_with_statement(
        self, connection, row: Sequence, children, guards: Sequence = ()
    ) -> tuple[str, list]:
        shape = tuple((child, len(rows)) for child, (rows,) in children if rows)
        (params,) = self._prepared([row], connection)
        for _compiled, values in guards:
            params += values
        for child, (rows,) in children:
            params += [
                value for values in child._prepared(rows, connection) for value in values[1:]
            ]
        unless = tuple(compiled.sql for compiled, _values in guards)
        return _family_sql(self, connection.alias, shape, unless), params

    @staticmethod
    def _unnest(connection, head: str, tail: str, columns: list, prepared: list):
        """PostgreSQL: one array per column, so the statement's text is the same for any
        number of rows (as Django's own bulk insert does). The arrays travel as parameters
        bound by the server, in binary: as literals, each value of each array would be
        quoted in Python and parsed back by the server (1,000 messages: 90 ms against 38)."""
        from django.db.backends.postgresql.base import ServerBindingCursor

        arrays = ", ".join(f"%b::{_cast_type(field, connection)}[]" for field in columns)
        connection.ensure_connection()
        connection.validate_thread_sharing()
        inner = ServerBindingCursor(connection.connection)
        wrapped = (
            connection.make_debug_cursor(inner)
            if connection.queries_logged
            else connection.make_cursor(inner)
        )
        with wrapped as cursor:
            cursor.execute(
                f"{head} SELECT * FROM UNNEST({arrays}){tail}",  # noqa: S608
                [list(column) for column in zip(*prepared, strict=True)],
            )
            return [key for (key,) in cursor.fetchall()] if tail else None


def _written_then_read(connection, cursor, sql: str, params: list, reads: list) -> tuple:
    """``BEGIN; sql; COMMIT;`` and the reads, as one message: the key ``sql`` returns and
    the rows of each read. When the message fails, the error says whether what it wrote
    was rolled back (``rolled_back``): else the reads after the ``COMMIT`` failed."""
    try:
        # BEGIN and COMMIT give no rows: the results are the statement's, then the reads'.
        results = counted(
            message_results(
                cursor,
                "; ".join(["BEGIN", sql, "COMMIT", *(compiled.sql for compiled, _p in reads)]),
                [*params, *(value for _compiled, values in reads for value in values)],
            ),
            [None, *reads],
        )
    except DatabaseError as error:
        error.rolled_back = _abandoned_transaction_end(connection)
        raise
    except BaseException:
        _abandoned_transaction_end(connection)
        raise
    return [key for (key,) in results[0]], results[1:]


def _abandoned_transaction_end(connection) -> bool:
    """After a failed message that opened its own transaction (``BEGIN``), end it: the server
    skipped the rest and would refuse every statement until then. Whether the failure came
    inside that transaction (and so nothing of it is written). A connection too broken to
    end it is Django's to replace; the error raised is the statement's."""
    from psycopg import pq

    driver = connection.connection
    if driver is None or driver.info.transaction_status != pq.TransactionStatus.INERROR:
        return False
    try:
        with connection.wrap_database_errors:
            driver.execute("ROLLBACK")
    except Exception:  # noqa: BLE001, S110  (the statement's own error is the one to raise)
        pass
    return True


def _cast_type(field, connection) -> str:
    """The type of ``field``'s column without a length: a value too long then fails as it
    would in an INSERT of its own, instead of being cut by the cast."""
    return field.db_type(connection).split("(")[0]


@functools.lru_cache(maxsize=256)
def _family_sql(
    parent: CompiledInsert,
    using: str,
    shape: tuple[tuple[CompiledInsert, int], ...],
    unless: tuple[str, ...] = (),
) -> str:
    """``CompiledInsert.insert_with``'s statement for one row and children of ``shape``
    (each with its number of rows), composed once per shape; with the reads ``unless``, the
    row (and so its children) is written only where none of them finds a row."""
    connection = connections[using]
    pk = connection.ops.quote_name(parent.model._meta.pk.column)
    if unless:
        # A value is typed by its column's type, as in VALUES of an INSERT.
        casts = ", ".join(f"%s::{_cast_type(field, connection)}" for field in parent.columns)
        found = " OR ".join(f"EXISTS ({sql})" for sql in unless)
        row = f"SELECT {casts} WHERE NOT ({found})"
    else:
        row = f"VALUES ({', '.join(['%s'] * len(parent.columns))})"
    parts = [f"parent AS ({parent._head(connection)} {row} RETURNING {pk})"]
    for index, (child, count) in enumerate(shape):
        casts = ", ".join(f"%s::{_cast_type(field, connection)}" for field in child.columns[1:])
        values = ", ".join([f"({casts})"] * count)
        parts.append(
            f"child{index} AS ({child._head(connection)}"  # noqa: S608
            f" SELECT parent.{pk}, given.* FROM parent, (VALUES {values}) AS given)"
        )
    return f"WITH {', '.join(parts)} SELECT {pk} FROM parent"  # noqa: S608
