"""INSERT ... ON CONFLICT DO UPDATE that adds to counters, in one statement.

The ORM's bulk_create(update_conflicts=True) can only overwrite a column with the new value; counters
must be incremented atomically by the database, so that two transactions never lose an update."""

from django.db import DEFAULT_DB_ALIAS, connections

from .sql import PREPARE_MAX_ROWS, sql_write


def upsert_add(model, rows: list[dict], *, unique: list[str], add: list[str]) -> None:
    """For each row: insert it, or add its `add` columns to the existing row with the same `unique` columns."""
    if not rows:
        return
    connection = connections[DEFAULT_DB_ALIAS]  # once, not through the proxy for every value (billing.sql)
    meta = model._meta
    fields = [meta.get_field(name) for name in unique + add]
    columns = [field.column for field in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = []
    for row in rows:
        for field in fields:
            params.append(field.get_db_prep_save(row[field.name], connection))
    updates = ", ".join(f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in columns[len(unique):])
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES "
        + ", ".join([placeholders] * len(rows))
        + f" ON CONFLICT ({', '.join(quote(c) for c in columns[:len(unique)])}) DO UPDATE SET {updates}"
    )
    sql_write(meta.db_table, sql, params, prepare=len(rows) <= PREPARE_MAX_ROWS)
