"""A Redis journal behind a write-behind queue: queued rows survive a crashed process.

With Redis configured, every row a queue accepts is also appended to a Redis list owned by
this process (`<prefix>:wb:<queue>:<process>`), batched: all rows queued during one turn
of the event loop go out in one RPUSH, right after the turn. When a batch reaches the
database the same number of rows is trimmed from the list's head. A process announces it
is alive with a key that expires (`<prefix>:wb-alive:<process>`); any process finding a
journal whose owner is gone claims it (an atomic RENAME), writes its rows and deletes it,
skipping rows already in the database (a crash between the insert and the trim).

Rows are encoded with orjson; datetimes, decimals and UUIDs keep their types through a
tagged form so the writers get back exactly what was queued. A row orjson cannot encode
(a lone surrogate, deep nesting) is encoded from its storable copy
(atp_site.lib.storable), so journaling never raises into the request path. The same
encoding serves the spill file (atp_site.lib.spill).

A push that fails (Redis unreachable) keeps its rows in memory and is tried again on its
own, after half a second and then at doubling intervals up to 30 s, so the rows reach the
journal when Redis returns even if no request follows.

The journal is a crash-recovery aid only: Redis may run without persistence, so the
durable copy of a queued row is the database or the spill file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from atp_site.lib.storable import clean_json

logger = logging.getLogger(__name__)

PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
RECOVER_EVERY_SECONDS = 15
# After a failed push the rows are pushed again on their own (no request may follow to
# carry them): first after this many seconds, doubling up to the maximum while Redis fails.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__dec__": str(value)}
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot journal {type(value).__name__}")


_KEEP = (datetime, Decimal, uuid.UUID)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return orjson.dumps(
            clean_json(value, keep=_KEEP),
            default=_default,
            option=orjson.OPT_PASSTHROUGH_DATETIME,
        )


def encode(row: dict[str, Any]) -> bytes:
    return _dumps(row)


def encode_many(rows: list[dict[str, Any]]) -> bytes:
    return _dumps(rows)


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if "__dt__" in value:
                return datetime.fromisoformat(value["__dt__"])
            if "__dec__" in value:
                return Decimal(value["__dec__"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def decode(raw: bytes) -> dict[str, Any]:
    return _restore(orjson.loads(raw))


def decode_many(raw: bytes) -> list[dict[str, Any]]:
    return _restore(orjson.loads(raw))


class Journal:
    """The Redis side of one write-behind queue in this process."""

    def __init__(
        self,
        name: str,
        url: str,
        prefix: str,
        *,
        already_written: Callable[[list[dict[str, Any]]], set[tuple]] | None = None,
        identity: Callable[[dict[str, Any]], tuple] | None = None,
        alive_seconds: float = 30.0,
    ) -> None:
        self.name = name
        self.alive_seconds = alive_seconds
        self.url = url
        self.key = f"{prefix}:wb:{name}:{PROCESS_ID}"
        self._key_bytes = self.key.encode()  # the RPUSH of every loop turn
        self.pattern = f"{prefix}:wb:{name}:*"
        self.alive_prefix = f"{prefix}:wb-alive:"
        self.already_written = already_written
        self.identity = identity
        self._pending: list[bytes] = []
        self._push_task: asyncio.Task | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = RETRY_FIRST_SECONDS
        self._clients: dict[int, Any] = {}
        self._fast: Any = None  # the pipelined client for the per-request RPUSH
        self._last_alive = 0.0
        self._last_recover = 0.0

    # --- clients ---------------------------------------------------------------------------

    def _client(self):
        import redis.asyncio as aredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            client = self._clients[id(loop)] = aredis.Redis.from_url(self.url)
        return client

    def _sync_client(self):
        import redis

        return redis.Redis.from_url(self.url)

    # --- the hot path ----------------------------------------------------------------------

    def append(self, row: dict[str, Any]) -> None:
        """Journal a row: encoded now, sent with the others of this loop turn."""
        self._pending.append(encode(row))
        self._start_push()

    def _start_push(self) -> None:
        """A push task, unless one is under way (it sends what is queued meanwhile)."""
        if self._push_task is None or self._push_task.done():
            self._push_task = asyncio.get_running_loop().create_task(self.push())

    async def push(self) -> None:
        """Send what is pending (one RPUSH), then what was queued while it was under way
        (`append` starts no second push meanwhile). A failed push keeps the rows pending."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                if self._fast is None:
                    from atp_site.lib.resp import shared_client

                    self._fast = shared_client(self.url)
                await self._fast.command(b"RPUSH", self._key_bytes, *batch)
            except Exception:
                self._pending[:0] = batch
                logger.warning(
                    "write-behind %s: journal unreachable; rows kept in memory", self.name
                )
                self._push_again_later()
                return
            self._retry_delay = RETRY_FIRST_SECONDS

    def _push_again_later(self) -> None:
        """Push the kept rows again after a pause, doubled after each failure: they must
        reach the journal even when no request follows to carry them."""
        if self._retry is not None:
            return

        def again() -> None:
            self._retry = None
            if self._pending:
                self._start_push()

        self._retry = asyncio.get_running_loop().call_later(self._retry_delay, again)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)

    async def written(self, count: int) -> None:
        """`count` rows from the head of the journal reached the database."""
        await self._settle_push()
        try:
            await self._client().ltrim(self.key, count, -1)
        except Exception:
            logger.warning("write-behind %s: journal trim failed (recovery dedupes)", self.name)

    async def _settle_push(self) -> None:
        task = self._push_task
        if task is not None and not task.done():
            await asyncio.shield(task)
        await self.push()

    def written_sync(self, count: int) -> None:
        try:
            client = self._sync_client()
            if self._pending:
                client.rpush(self.key, *self._pending)
                self._pending = []
            client.ltrim(self.key, count, -1)
        except Exception:
            logger.warning("write-behind %s: journal trim failed at exit", self.name)

    # --- liveness and recovery -------------------------------------------------------------

    async def heartbeat(self, now: float) -> None:
        if now - self._last_alive < self.alive_seconds / 3:
            return
        self._last_alive = now
        try:
            await self._client().set(
                f"{self.alive_prefix}{PROCESS_ID}", b"1", px=int(self.alive_seconds * 1000)
            )
        except Exception:
            logger.warning("write-behind %s: heartbeat failed", self.name)

    async def recover(
        self, now: float, write: Callable[[list[dict[str, Any]]], Any], *, force: bool = False
    ) -> int:
        """Write the rows of journals whose process is gone; returns how many were written."""
        if not force and now - self._last_recover < RECOVER_EVERY_SECONDS:
            return 0
        self._last_recover = now
        client = self._client()
        recovered = 0
        try:
            keys = [k async for k in client.scan_iter(match=self.pattern, count=100)]
        except Exception:
            logger.warning("write-behind %s: journal scan failed", self.name)
            return 0
        for raw_key in keys:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            owner = key.rsplit(":", 1)[1]
            if owner == PROCESS_ID or await client.exists(f"{self.alive_prefix}{owner}"):
                continue
            claim = f"{self.key}.claim-{uuid.uuid4().hex[:8]}"
            try:
                await client.rename(key, claim)
            except Exception:  # another process claimed it first
                continue
            rows = [decode(item) for item in await client.lrange(claim, 0, -1)]
            rows = await self._unwritten(rows)
            if rows:
                await write(rows)
            await client.delete(claim)
            recovered += len(rows)
            logger.warning(
                "write-behind %s: recovered %d rows journaled by a stopped process",
                self.name,
                len(rows),
            )
        return recovered

    async def _unwritten(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows or self.already_written is None or self.identity is None:
            return rows
        from asgiref.sync import sync_to_async

        done = await sync_to_async(self.already_written, thread_sensitive=True)(rows)
        return [row for row in rows if self.identity(row) not in done]

    async def aclose(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        client = self._clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.delete(f"{self.alive_prefix}{PROCESS_ID}")
            await client.aclose()


def by_request(
    model_label: str, time_field: str, *, row_time: str | None = None, **filters: Any
) -> tuple[Callable[[list[dict]], set[tuple]], Callable[[dict], tuple]]:
    """Dedupe helpers for rows identified by request id and a timestamp."""
    row_time = row_time or time_field

    def identity(row: dict[str, Any]) -> tuple:
        return (row.get("request_id"), row.get(row_time))

    def already_written(rows: Iterable[dict[str, Any]]) -> set[tuple]:
        from django.apps import apps

        model = apps.get_model(model_label)
        ids = {row.get("request_id") for row in rows}
        found = model.objects.filter(request_id__in=ids, **filters).values_list(
            "request_id", time_field
        )
        return set(found)

    return already_written, identity
