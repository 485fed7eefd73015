"""Model queries composed once and then run as plain SQL, for reads every sent message makes.

Composing a query through the ORM costs far more than running it on a small table (about
0.2 ms against 0.02 ms on SQLite). A query whose shape never changes needs composing only
once; its rows become instances the way Django's own ``ModelIterable`` makes them (the
fields' converters, decryption included, and ``select_related`` objects), so they are the
instances the queryset would give.

On PostgreSQL, outside a transaction, the reads are also prepared once per server session
and then executed by name (``PREPARE`` and ``EXECUTE``, in the same message as the reads
themselves): the server parses and plans each once instead of at every call, which halves
its time for a ``send_mail``'s four reads (0.48 to 0.24 ms). ``core.inserts`` prepares the
statement writing a message's rows the same way (``prepared_session``).
"""

import functools
import hashlib
import itertools
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    alias: str
    sql: str
    params: tuple
    model: type[Model]
    fetch_mode: object
    model_columns: slice
    attnames: list[str]
    compiler: object
    converters: dict
    related_populators: list


class CompiledQuery:
    """``queryset_factory()``'s query, composed on first use in each thread (the converters
    belong to the thread's connection), on the database the queryset reads from then.

    Only queries whose rows are model instances qualify: ``select_related`` is fine;
    annotations, ``values()`` and deferred fields are refused (``TypeError``).
    """

    def __init__(self, queryset_factory: Callable[[], QuerySet]):
        self._queryset_factory = queryset_factory
        self._local = threading.local()

    def _compiled(self) -> _Compiled:
        compiled = getattr(self._local, "compiled", None)
        if compiled is not None:
            return compiled
        queryset = self._queryset_factory()
        query = queryset.query
        if query.annotations or not query.default_cols or query.deferred_loading[0]:
            raise TypeError(
                f"A query of {query.model.__name__} with annotations, values() or deferred "
                "fields cannot be compiled."
            )
        compiler = query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        select, klass_info = compiler.select, compiler.klass_info
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1]
        model_columns = slice(first, last + 1)
        compiled = _Compiled(
            alias=queryset.db,
            sql=sql,
            params=tuple(params),
            model=query.model,
            fetch_mode=queryset._fetch_mode,
            model_columns=model_columns,
            attnames=[column.target.attname for column, _sql, _alias in select[model_columns]],
            compiler=compiler,
            converters=compiler.get_converters([column for column, _sql, _alias in select]),
            related_populators=get_related_populators(
                klass_info, select, queryset.db, queryset._fetch_mode
            ),
        )
        self._local.compiled = compiled
        return compiled

    def _statement(self, params: Sequence | None) -> tuple[_Compiled, tuple]:
        compiled = self._compiled()
        if params is None:
            return compiled, compiled.params
        if len(params) != len(compiled.params):
            raise ValueError(
                f"{compiled.model.__name__}: {len(compiled.params)} parameters expected, "
                f"{len(params)} given."
            )
        return compiled, tuple(params)

    def rows(self, params: Sequence | None = None) -> list[tuple]:
        """The rows as the database driver returns them; ``params`` replace the composed
        query's parameters one for one (same number, same order)."""
        (rows,) = rows_together([(self, params)])
        return rows

    def instances(self, rows: list[tuple]) -> list[Model]:
        """The instances of ``rows`` (from ``rows()``), as the ORM would have made them."""
        compiled = self._compiled()
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        instances = []
        for row in rows:
            instance = compiled.model.from_db(
                compiled.alias,
                compiled.attnames,
                tuple(row[compiled.model_columns]),
                fetch_mode=compiled.fetch_mode,
            )
            for populator in compiled.related_populators:
                populator.populate(row, instance)
            instances.append(instance)
        return instances


@dataclass(frozen=True)
class _Written:
    alias: str
    sql: str


class SqlRead:
    """A read written as SQL, whose rows are wanted as the driver gives them (no instances):
    ``sql_for(connection)`` composes it once per database, with ``%s`` for each of its
    ``params`` parameters and ``%%`` for a literal percent sign, as Django's own SQL.
    It goes wherever a ``CompiledQuery`` read goes (``rows_together``, ``core.inserts``)."""

    def __init__(
        self,
        sql_for: Callable[[BaseDatabaseWrapper], str],
        *,
        params: int = 0,
        using: str = DEFAULT_DB_ALIAS,
    ):
        self._sql_for = sql_for
        self._params = params
        self._using = using

    @functools.cached_property
    def _written(self) -> _Written:
        return _Written(alias=self._using, sql=self._sql_for(connections[self._using]))

    def _statement(self, params: Sequence | None) -> tuple[_Written, tuple]:
        params = tuple(params or ())
        if len(params) != self._params:
            raise ValueError(f"{self._params} parameters expected, {len(params)} given.")
        return self._written, params

    def rows(self, params: Sequence | None = None) -> list[tuple]:
        (rows,) = rows_together([(self, params)])
        return rows


Read = tuple[CompiledQuery | SqlRead, Sequence | None]


def one_message(connection: BaseDatabaseWrapper, cursor) -> bool:
    """Whether ``cursor`` sends several statements as one message to the server:
    PostgreSQL's simple query protocol, which psycopg uses for a client-side binding
    cursor (Django's default)."""
    if connection.vendor != "postgresql":
        return False
    from psycopg import ClientCursor

    return isinstance(cursor.cursor, ClientCursor)


def rows_together(reads: Sequence[Read]) -> list[list[tuple]]:
    """The rows of each of ``reads`` (a compiled query and its parameters, as for
    ``CompiledQuery.rows``), all of one database, in the order given.

    On PostgreSQL they go to the server as one message and come back in one round trip: the
    reads a call makes before writing cost one wait for the server instead of one each.
    Under ``READ COMMITTED`` each statement still sees what was committed when it started,
    as when they ran one by one; in autocommit they run in one implicit transaction, as
    prepared statements of the server session (``_Session``). On SQLite (in the process: no
    round trip) and with server-side binding they run one by one.
    """
    statements = [query._statement(params) for query, params in reads]
    aliases = {compiled.alias for compiled, _params in statements}
    if len(aliases) > 1:
        raise ValueError(f"Reads of one database only, not of {sorted(aliases)}.")
    if not statements:
        return []
    connection = connections[aliases.pop()]
    with connection.cursor() as cursor:
        if not one_message(connection, cursor):
            results = []
            for compiled, params in statements:
                cursor.execute(compiled.sql, params)
                results.append(cursor.fetchall())
            return results
        # Outside a transaction only: a message that fails there leaves nothing to undo, and
        # the reads run again at once (inside one, the failure would doom the caller's).
        session = prepared_session(connection)
        if session is not None:
            sql, params, prepared = session.message(
                [(compiled.sql, params) for compiled, params in statements]
            )
            try:
                results = message_results(cursor, sql, params)
            except DatabaseError as error:
                if not session.failed(error):
                    raise
            else:
                session.names |= prepared
                return counted(results, statements)
        results = message_results(
            cursor,
            "; ".join(compiled.sql for compiled, _params in statements),
            [value for _compiled, params in statements for value in params],
        )
    return counted(results, statements)


def message_results(cursor, sql: str, params: list) -> list[list[tuple]]:
    """Run ``sql`` (statements joined by ``;``, sent as one message to PostgreSQL); the rows
    of each of its statements that gives rows, in order. Django's composed SQL holds no
    statement separator of its own and escapes any literal percent sign, so its statements
    join as they are.

    Whether a statement gave rows is read off the driver's result, not ``description``,
    which describes every column of it (a tenth of a millisecond for a ``send_mail``'s
    eight results)."""
    from psycopg.pq import ExecStatus

    cursor.execute(sql, params)
    driver_cursor = cursor.cursor
    results = []
    with cursor.db.wrap_database_errors:
        while True:
            result = driver_cursor.pgresult
            if result is not None and (result.nfields or result.status == ExecStatus.TUPLES_OK):
                results.append(driver_cursor.fetchall())
            if not driver_cursor.nextset():
                return results


def counted(results: list, statements: list) -> list:
    """``results``, one for each of ``statements`` (else the message was not what was sent)."""
    if len(results) != len(statements):
        raise RuntimeError(f"{len(statements)} statements gave {len(results)} results.")
    return results


class _Session:
    """The reads prepared in one PostgreSQL server session (one driver connection).

    A read not prepared yet is prepared in the message that first runs it
    (``PREPARE name AS …; EXECUTE name(…)``), so a new connection costs no extra round
    trip. The name holds the session's generation and a hash of the query: a message that
    fails may have prepared some of its statements, unknown to us, so the generation moves
    on and nothing is ever prepared twice under one name. A statement the server no longer
    knows (``DEALLOCATE``, a proxy that moves the connection to another server session)
    or a plan the server can no longer use makes the reads run again as plain statements;
    after a few of these the session prepares nothing more. Past ``LIMIT`` statements a
    session runs new shapes plain.
    """

    LIMIT = 64
    RETRIES = 3
    # What a prepared statement itself can cause: unknown name, name taken, a parameter
    # whose type the query does not tell, a plan whose result no longer fits the table.
    RETRY_STATES = frozenset({"26000", "42P05", "42P18", "0A000"})

    _sessions: "weakref.WeakKeyDictionary[object, _Session]" = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self):
        self.names: set[str] = set()
        self.generation = 0
        self.retries = 0

    @classmethod
    def of(cls, driver) -> "_Session | None":
        """The session of ``driver``; ``None`` once it prepares nothing more."""
        with cls._lock:
            session = cls._sessions.get(driver)
            if session is None:
                session = cls._sessions[driver] = cls()
        return session if session.retries < cls.RETRIES else None

    def message(self, statements: Sequence[tuple[str, Sequence]]) -> tuple[str, list, set[str]]:
        """The message running ``statements`` (each its SQL and its parameters) by name,
        preparing those not prepared yet; its parameters and the names it prepares."""
        parts, params, prepared = [], [], set()
        for sql, values in statements:
            name = _statement_name(sql, self.generation)
            if name not in self.names and name not in prepared:
                if len(self.names) + len(prepared) >= self.LIMIT:
                    parts.append(sql)
                    params += values
                    continue
                parts.append(f"PREPARE {name} AS {_numbered(sql)}")
                prepared.add(name)
            parts.append(
                f"EXECUTE {name}({', '.join(['%s'] * len(values))})"
                if values
                else f"EXECUTE {name}"
            )
            params += values
        return "; ".join(parts), params, prepared

    def failed(self, error: DatabaseError) -> bool:
        """After a failed message, whether the failure came of preparing (the reads then
        run again, plain). What the message prepared is unknown: new names from now on."""
        self.names = set()
        self.generation += 1
        if getattr(error.__cause__, "sqlstate", None) not in self.RETRY_STATES:
            return False
        self.retries += 1
        return True


def prepared_session(connection: BaseDatabaseWrapper) -> _Session | None:
    """The prepared statements of ``connection``'s server session, for a message sent
    outside any transaction (autocommit, no ``atomic()``): if it fails, nothing of the
    caller's is lost and it can run again, plain. ``None`` inside a transaction, or once
    the session prepares nothing more."""
    if not connection.get_autocommit() or connection.in_atomic_block:
        return None
    return _Session.of(connection.connection)


@functools.lru_cache(maxsize=512)
def _statement_name(sql: str, generation: int) -> str:
    return f"mailadmin_{generation}_{hashlib.blake2b(sql.encode(), digest_size=12).hexdigest()}"


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders numbered as ``PREPARE`` wants them (``$1``…);
    ``%%`` stays, for the driver to make it ``%`` as in the rest of the message."""
    numbers = itertools.count(1)
    return re.sub(r"%%|%s", lambda match: "%%" if match[0] == "%%" else f"${next(numbers)}", sql)
