"""Fixed SQL text for the statements of the charge path (issue 13; docs/performance.md).

Django compiles a queryset into SQL text again on every execution, and for the statements that
authorize and complete a run that compiling cost several times what the database spends running
them (about 1 ms of CPU for a lookup with joins, against 0.1 ms for the same statement as text).
These helpers run hand-written statements through Django's own connection, so they join the
caller's transaction and atomic blocks like any ORM call, and convert values both ways exactly as
the ORM does.

Each statement is also prepared, once per connection (psycopg's prepared-statement
cache, with server-side parameter binding): PostgreSQL then stops parsing and planning it on every
execution, which cost about as much of its CPU as running the statements did (docs/performance.md).
Django leaves preparing off for its own queries (connection poolers in transaction mode cannot keep
prepared statements), so settings.DATABASE_PREPARE turns it off here too. psycopg forgets a
connection's prepared statements after a rollback; the next use prepares again.

Inside `writes_together()`, the writes of a transaction whose results nothing reads before the
commit go to PostgreSQL as one statement (see there).

Only the hot path uses them; everything else stays on the ORM."""

import itertools
import re
import threading
from contextlib import contextmanager
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import Callable, NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.postgresql.base import CursorMixin
from psycopg import RawCursor

# A statement with more rows than this (a completion's nodes, a grants chunk) has a text of its own
# for each row count: it is sent unprepared, so that it does not crowd the fixed ones out of
# psycopg's cache (100 statements per connection).
PREPARE_MAX_ROWS = 8


def _db():
    """The default database's wrapper, looked up once per statement: every attribute read through
    the `connection` proxy is a thread-local lookup, and a statement's parameters made dozens of
    them (a tenth of a charge request's Python, docs/performance.md)."""
    return connections[DEFAULT_DB_ALIAS]


def _cursor(db, *, prepare: bool = True):
    """A cursor of the Django connection (its transaction, its query log, its error wrapping) that
    prepares what it runs (unless DATABASE_PREPARE is off)."""
    if not (prepare and settings.DATABASE_PREPARE):
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = PreparingCursor(db.connection)
    return db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor)


class PreparingCursor(CursorMixin, RawCursor):
    """Server-side binding of the statement's own $1, $2 ... placeholders (a raw cursor), our
    %s texts numbered once each by `_numbered`."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        super().execute(_numbered(query), params, prepare=True, binary=binary)
        if self._query is None:
            # A prepared execution leaves no text where Django's query log (and so the tests'
            # and the queries bench's statement counts) reads it.
            self._query = SimpleNamespace(query=query.encode())
        return self


@lru_cache(maxsize=512)
def _numbered(query: str) -> str:
    """`query` with its %s placeholders as $1, $2 ... and %% as %. psycopg converts a query on every
    execution and caches the conversion only under 50 parameters and 4 KB; the writes sent together
    are longer, and converting them took a sixth of the web workers' Python (docs/performance.md)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda match: "%" if match.group() == "%%" else f"${next(numbers)}", query)


_PLACEHOLDER = re.compile("%%|%s")


def sql_execute(sql: str, params=(), *, prepare: bool = True) -> int:
    """Run a statement; returns the number of rows it changed."""
    with _cursor(_db(), prepare=prepare) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def sql_write(table: str, sql: str, params=(), *, prepare: bool = True) -> None:
    """A write to `table` whose row count nobody reads: inside `writes_together()` it waits to go to
    the database with the block's other writes."""
    db = _db()
    batch = _batch_of(db)
    if batch is not None:
        batch.add(table, sql, params, prepare)
        return
    with _cursor(db, prepare=prepare) as cursor:
        cursor.execute(sql, params)


def sql_rows(sql: str, params=()) -> list[tuple]:
    with _cursor(_db()) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def sql_row(sql: str, params=()) -> tuple | None:
    with _cursor(_db()) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


@cache
def columns(model, alias: str) -> str:
    """Every column of `model` as `alias.column, ...`, in the order `instance_from_row` reads them."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in model._meta.concrete_fields)


@cache
def _reader(model) -> tuple[list[str], list[tuple]]:
    fields = model._meta.concrete_fields
    converters = []
    for position, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
        if functions:
            converters.append((position, expression, functions))
    return [field.attname for field in fields], converters


def instance_from_row(model, row):
    """A model instance from the values of `columns(model, ...)`, converted as the ORM converts them
    (a JSON value from its text)."""
    db = _db()
    attnames, converters = _reader(model)
    values = list(row[:len(attnames)])
    for position, expression, functions in converters:
        for function in functions:
            values[position] = function(values[position], expression, db)
    return model.from_db(db.alias, attnames, values)


@cache
def _insert(model) -> tuple[str, str, str, list]:
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES "
    return head, "(" + placeholders(len(fields)) + ")", f" RETURNING {quote(meta.pk.column)}", fields


def rows_insert(model, instances: list) -> None:
    """INSERT `instances` (every field but the generated id) in one statement and set each one's id
    from RETURNING, as bulk_create does, without compiling a query."""
    if not instances:
        return
    db = _db()
    head, row, returning, fields = _insert(model)
    sql = head + ", ".join([row] * len(instances)) + returning
    params = [field.get_db_prep_save(getattr(instance, field.attname), db)
              for instance in instances for field in fields]
    prepare = len(instances) <= PREPARE_MAX_ROWS
    batch = _batch_of(db)
    if batch is not None:  # the ids are set when the batch is sent
        batch.add(model._meta.db_table, sql, params, prepare, on_ids=lambda ids: _ids_set(instances, ids, db))
        return
    with _cursor(db, prepare=prepare) as cursor:
        cursor.execute(sql, params)
        _ids_set(instances, cursor.fetchall(), db)


def _ids_set(instances: list, ids: list[tuple], db) -> None:
    for instance, (pk,) in zip(instances, ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = db.alias


# --- Writes sent together -----------------------------------------------------------------------

_local = threading.local()  # the open batch of this thread (Django's connections are per thread too)


@contextmanager
def writes_together():
    """Inside an atomic block, the writes made in this block through `sql_write` and
    `rows_insert` wait, and go to the database as ONE statement (a WITH of data-modifying
    statements) when the block ends. A statement costs the web process and PostgreSQL about 0.1 ms
    of CPU each whatever it does, more than these writes do (docs/performance.md), and a run's
    completion makes five of them whose results nothing reads before the commit.

    Order and visibility are kept: any other statement on the connection in the block (a read, an
    ORM update, a savepoint) and a second write to a table that already has one waiting first send
    what waits, so every statement sees the writes made before it, and no row is written twice in
    one statement. `rows_insert` sets the ids when its write is sent. An error of a waiting write
    (a unique key taken) is raised when it is sent, inside the block and its transaction. If the
    block ends by an exception, what waited is dropped and the transaction is marked for rollback,
    so it can never commit without them.

    Elsewhere (outside an atomic block, or nested in a batch) it changes nothing: each write runs
    when it is made, or with the outer batch."""
    db = _db()
    if not db.in_atomic_block or getattr(_local, "batch", None) is not None:
        yield
        return
    batch = _local.batch = _WriteBatch(db)
    try:
        with db.execute_wrapper(batch.before_statement):
            yield
            batch.send()
    except BaseException:
        batch.writes.clear()
        transaction.set_rollback(True, using=db.alias)
        raise
    finally:
        _local.batch = None


def _batch_of(db):
    batch = getattr(_local, "batch", None)
    return batch if batch is not None and batch.db is db else None


class _Write(NamedTuple):
    table: str
    sql: str
    params: list
    prepare: bool
    on_ids: Callable[[list[tuple]], None] | None  # given the RETURNING rows (rows_insert)


class _WriteBatch:
    def __init__(self, db):
        self.db = db
        self.writes: list[_Write] = []

    def add(self, table: str, sql: str, params: list, prepare: bool, on_ids=None) -> None:
        if any(write.table == table for write in self.writes):
            self.send()
        self.writes.append(_Write(table, sql, params, prepare, on_ids))

    def before_statement(self, execute, sql, params, many, context):
        # Django calls this around every statement of the connection, the batch's own included
        # (sent with an empty queue).
        if self.writes:
            self.send()
        return execute(sql, params, many, context)

    def send(self) -> None:
        writes, self.writes = self.writes, []
        if not writes:
            return
        returning = [i for i, write in enumerate(writes) if write.on_ids is not None]
        if len(writes) == 1:
            sql, params = writes[0].sql, writes[0].params
        else:
            # Each write a named subquery; the primary query returns the RETURNING rows, tagged with
            # their write's position. PostgreSQL runs every data-modifying subquery to completion
            # whether it is read or not.
            sql = ("WITH " + ", ".join(f"w{i} AS ({write.sql})" for i, write in enumerate(writes)) + " "
                   + (" UNION ALL ".join(f"SELECT {i}, * FROM w{i}" for i in returning) if returning else "SELECT 0"))
            params = [value for write in writes for value in write.params]
        with _cursor(self.db, prepare=all(write.prepare for write in writes)) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if returning else []
        for i in returning:
            writes[i].on_ids(rows if len(writes) == 1 else [row[1:] for row in rows if row[0] == i])
