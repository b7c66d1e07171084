"""Write-behind queue for request logs: batched inserts off the response's critical path.

Rows are appended in memory and flushed by one background task every
ATP_WRITE_BEHIND_INTERVAL seconds or as soon as ATP_WRITE_BEHIND_BATCH rows wait. A
failed flush keeps its rows and retries with backoff; shutdown drains the queue (the
ASGI lifespan calls `drain`, and an atexit hook flushes synchronously for servers
without lifespan support).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)

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
        "SmallIntegerField",
        "BigIntegerField",
    }
)


def _prep(field, connection, value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


class RowInserter:
    """Batched INSERT of plain row dicts into one model's table.

    `bulk_create` builds a model instance per row and resolves every field on each call;
    at thousands of rows a second that is most of the write cost, so the statement and
    the per-column value adapters are prepared once and rows go in with executemany.
    """

    def __init__(self, model_label: str) -> None:
        self.model_label = model_label
        self._prepared: dict[str, tuple] = {}

    def _prepare(
        self, connection
    ) -> tuple[str, str, list[tuple[str, Callable[[Any], Any] | None]]]:
        from django.apps import apps

        model = apps.get_model(self.model_label)
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        table = quote(model._meta.db_table)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        adapters = []
        for f in fields:
            if f.get_internal_type() in PLAIN_TYPES:
                adapters.append((f.attname, None))
            else:
                adapters.append((f.attname, partial(_prep, f, connection)))
        return sql, copy_sql, adapters

    def __call__(self, rows: list[Row]) -> None:
        from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction

        close_old_connections()
        # The wrapper itself, not the `connection` proxy: adapters are called per value.
        connection = connections[DEFAULT_DB_ALIAS]
        prepared = self._prepared.get(connection.vendor)
        if prepared is None or prepared[2] is not connection:
            prepared = self._prepared[connection.vendor] = (*self._prepare(connection), connection)
        sql, copy_sql, adapters, _ = prepared
        params = [
            [row.get(key) if adapt is None else adapt(row.get(key)) for key, adapt in adapters]
            for row in rows
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY is several times cheaper than INSERTs for batches.
                with cursor.cursor.copy(copy_sql) as copy:
                    for values in params:
                        copy.write_row(values)
            else:
                cursor.executemany(sql, params)


insert_request_logs = RowInserter("routing.RequestLog")


class WriteBehindQueue:
    def __init__(self, writer: Callable[[list[Row]], None], name: str) -> None:
        self.writer = writer
        self.name = name
        self._rows: list[Row] = []
        self._lock = threading.Lock()  # appends may come from several loops' threads
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush_sync)

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, row: Row) -> None:
        with self._lock:
            self._rows.append(row)
            size = len(self._rows)
        self._ensure_task()
        if size >= settings.ATP_WRITE_BEHIND_BATCH and self._wakeup is not None:
            self._wakeup.set()

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"write-behind:{self.name}")

    def _take(self) -> list[Row]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def _give_back(self, rows: list[Row]) -> None:
        with self._lock:
            self._rows[:0] = rows

    async def _run(self) -> None:
        delay = settings.ATP_WRITE_BEHIND_INTERVAL
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            self._wakeup.clear()
            ok = await self.flush()
            delay = (
                settings.ATP_WRITE_BEHIND_INTERVAL
                if ok
                else min(30.0, max(delay * 2, settings.ATP_WRITE_BEHIND_INTERVAL))
            )

    async def flush(self) -> bool:
        """Write everything queued now; on failure keep the rows for the next try."""
        rows = self._take()
        if not rows:
            return True
        try:
            await sync_to_async(self.writer, thread_sensitive=True)(rows)
        except Exception:
            logger.exception(
                "write-behind %s: insert of %d rows failed; will retry", self.name, len(rows)
            )
            self._give_back(rows)
            return False
        return True

    async def drain(self, attempts: int = 5) -> None:
        """Flush until empty (graceful shutdown) and stop the background task."""
        for _ in range(attempts):
            if await self.flush() and not self._rows:
                break
            await asyncio.sleep(0.2)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._rows:
            logger.error(
                "write-behind %s: %d rows could not be written", self.name, len(self._rows)
            )

    def flush_sync(self) -> None:
        """Last-chance flush at interpreter exit, outside any event loop."""
        rows = self._take()
        if not rows:
            return
        try:
            self.writer(rows)
        except Exception:
            logger.exception("write-behind %s: %d rows lost at exit", self.name, len(rows))


request_logs = WriteBehindQueue(insert_request_logs, "request-log")
