"""The charge path's SQL (issue 26; docs/performance.md, "One call per phase").

Authorize, complete and expire are each one call of a PL/pgSQL function that makes the whole locked
decision inside PostgreSQL. The functions live in readable, commented files beside the data they own
(billing/sql/wallet.sql, budgets/sql/limits.sql, usage/sql/runs.sql) and are installed by migrations
(`sql_file_install`). This module keeps only what that needs from Python:

- `sql_row`: one statement through Django's own connection (its transaction and atomic blocks, its
  query log, its error wrapping), for the function calls and the completion's one read. Its cursor
  binds the parameters on the server and prepares each statement once per connection (unless
  settings.DATABASE_PREPARE is off): Django's own cursors bind on the client, quoting every value
  into the statement's text in Python, and PostgreSQL then parses and plans each text anew;
- `columns` and `instance_from_row`: that read's run as a model instance, converted as the ORM
  converts it, without compiling a queryset.

What it held before for speed is gone, because the calls made it unnecessary: the batching cursor
(`writes_together`, which sent a phase's five writes as one WITH statement) and the numbered
placeholders (a raw cursor with $1, $2 ..., because psycopg re-parsed the batch's 81 placeholders on
every execution). A phase now sends one short statement of a dozen parameters."""

import hashlib
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, migrations
from django.db.backends.postgresql.base import CursorMixin

ROOT = Path(__file__).resolve().parent.parent


def sql_file_install(path: str, *, sha256: str) -> migrations.RunPython:
    """A migration operation that runs the SQL file at `path` (relative to the repository; its
    functions are CREATE OR REPLACE, so running it again is how a change is installed). `sha256` is the
    file's hash when the migration was written: tests/usage/test_run_functions.py checks that the
    newest migration installing each file names its current hash, so a changed file cannot ship
    without the migration that installs it in every existing database."""

    def install(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute((ROOT / path).read_text())  # no parameters: its % signs are its own

    operation = migrations.RunPython(install, migrations.RunPython.noop)
    operation.sql_file = (path, sha256)
    return operation


def sql_file_sha256(path: str) -> str:
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def sql_row(sql: str, params=()) -> tuple | None:
    """The first row of one statement (None when it returns none)."""
    with _cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _cursor(db):
    """A cursor of the Django connection (its transaction, query log and error wrapping) that binds
    on the server and prepares what it runs; Django's own cursor with DATABASE_PREPARE off (behind a
    pooler that cannot keep prepared statements). psycopg forgets a connection's prepared statements
    after a rollback; the next call prepares again."""
    if not settings.DATABASE_PREPARE:
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = _PreparingCursor(db.connection)
    return db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor)


class _PreparingCursor(CursorMixin, psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        super().execute(query, params, prepare=True, binary=binary)
        if self._query is None:
            # A prepared execution leaves no text where Django's query log reads it.
            self._query = SimpleNamespace(query=query.encode())
        return self


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
    db = connections[DEFAULT_DB_ALIAS]
    attnames, converters = _reader(model)
    values = list(row[:len(attnames)])
    for position, expression, functions in converters:
        for function in functions:
            values[position] = function(values[position], expression, db)
    return model.from_db(db.alias, attnames, values)
