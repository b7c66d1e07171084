"""Batched inserts of plain row dicts, for write-behind queues on the hot path's behalf."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

Row = dict[str, Any]

# Field types whose Python values every backend takes as they are.
PLAIN_TYPES = frozenset(
    {
        "CharField",
        "TextField",
        "BooleanField",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
        "SmallIntegerField",
        "BigIntegerField",
    }
)


def _prep(field, connection, value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


def _json(value: Any) -> str | None:
    # Both SQLite (text) and PostgreSQL (jsonb from COPY's text format) take JSON text.
    return None if value is None else orjson.dumps(value).decode()


def _adapter(field, connection) -> Callable | None:
    kind = field.get_internal_type()
    if kind in PLAIN_TYPES:
        return None
    if kind == "JSONField":
        return _json
    return partial(_prep, field, connection)


class RowInserter:
    """Batched INSERT of plain row dicts (keyed by field attname) into one model's table.

    `bulk_create` builds a model instance per row and resolves every field on each call;
    at thousands of rows a second that is most of the write cost, so the statement and
    the per-column value adapters are prepared once per connection, and rows go in with
    executemany (COPY on PostgreSQL).
    """

    def __init__(self, model_label: str) -> None:
        self.model_label = model_label
        self._prepared: dict[str, tuple] = {}

    def _prepare(self, connection) -> tuple[str, str, list[tuple[str, Callable | None]]]:
        from django.apps import apps

        model = apps.get_model(self.model_label)
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        table = quote(model._meta.db_table)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        # A key a row leaves out takes the field's static default ("" for text, etc.).
        adapters = [
            (
                f.attname,
                _adapter(f, connection),
                None if f.has_default() and callable(f.default) else f.get_default(),
            )
            for f in fields
        ]
        return sql, copy_sql, adapters

    def insert(self, rows: list[Row]) -> None:
        """Insert within the caller's transaction (or autocommit)."""
        from django.db import DEFAULT_DB_ALIAS, connections

        # The wrapper itself, not the `connection` proxy: adapters are called per value.
        connection = connections[DEFAULT_DB_ALIAS]
        prepared = self._prepared.get(connection.vendor)
        if prepared is None or prepared[3] is not connection:
            prepared = self._prepared[connection.vendor] = (*self._prepare(connection), connection)
        sql, copy_sql, adapters, _ = prepared
        params = [
            [
                row.get(key, default) if adapt is None else adapt(row.get(key, default))
                for key, adapt, default in adapters
            ]
            for row in rows
        ]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY is several times cheaper than INSERTs for batches.
                with cursor.cursor.copy(copy_sql) as copy:
                    for values in params:
                        copy.write_row(values)
            else:
                cursor.executemany(sql, params)

    def __call__(self, rows: list[Row]) -> None:
        """Insert a batch in its own transaction (a write-behind queue's writer)."""
        from django.db import close_old_connections, transaction

        close_old_connections()
        with transaction.atomic():
            self.insert(rows)
