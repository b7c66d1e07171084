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
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings

from atp_site.lib.bulk import Row, RowInserter
from atp_site.lib.hot_settings import hot
from atp_site.lib.journal import Journal, by_request

logger = logging.getLogger(__name__)


request_logs_writer = RowInserter("routing.RequestLog")


class WriteBehindQueue:
    def __init__(
        self,
        writer: Callable[[list[Row]], None],
        name: str,
        *,
        dedupe: tuple[Callable[[list[Row]], set], Callable[[Row], tuple]] | None = None,
    ) -> None:
        """`dedupe` (see atp_site.lib.journal.by_request) lets a recovered journal skip rows
        that reached the database before their process stopped."""
        self.writer = writer
        self.name = name
        self.dedupe = dedupe
        self._journal: Journal | None = None
        self._journal_checked = False
        self._rows: list[Row] = []
        self._lock = threading.Lock()  # appends may come from several loops' threads
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush_sync)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def journal(self) -> Journal | None:
        """The Redis journal when Redis is configured (ATP_WRITE_BEHIND_JOURNAL)."""
        if not self._journal_checked:
            self._journal_checked = True
            if settings.REDIS_URL and settings.ATP_WRITE_BEHIND_JOURNAL:
                already_written, identity = self.dedupe or (None, None)
                self._journal = Journal(
                    self.name,
                    settings.REDIS_URL,
                    settings.CACHES["default"].get("KEY_PREFIX") or "atp",
                    already_written=already_written,
                    identity=identity,
                    alive_seconds=settings.ATP_WRITE_BEHIND_ALIVE_SECONDS,
                )
        return self._journal

    def put(self, row: Row) -> None:
        with self._lock:
            self._rows.append(row)
            size = len(self._rows)
        self._ensure_task()
        journal = self._journal if self._journal_checked else self.journal
        if journal is not None:
            journal.append(row)
        if size >= hot.ATP_WRITE_BEHIND_BATCH and self._wakeup is not None:
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
        journal = self.journal
        first = True
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            self._wakeup.clear()
            ok = await self.flush()
            if journal is not None:
                now = time.monotonic()
                await journal.heartbeat(now)
                try:
                    await journal.recover(now, self._write_recovered, force=first)
                except Exception:
                    logger.exception("write-behind %s: journal recovery failed", self.name)
                first = False
            delay = (
                settings.ATP_WRITE_BEHIND_INTERVAL
                if ok
                else min(30.0, max(delay * 2, settings.ATP_WRITE_BEHIND_INTERVAL))
            )

    async def recover(self) -> int:
        """Announce this process and write rows journaled by stopped ones (start-up)."""
        journal = self.journal
        if journal is None:
            return 0
        now = time.monotonic()
        await journal.heartbeat(now)
        return await journal.recover(now, self._write_recovered, force=True)

    async def _write_recovered(self, rows: list[Row]) -> None:
        await sync_to_async(self.writer, thread_sensitive=True)(rows)

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
        if self._journal is not None:
            await self._journal.written(len(rows))
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
        if self._journal is not None and not self._rows:
            await self._journal.aclose()
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
            if self._journal is not None:
                logger.exception(
                    "write-behind %s: %d rows not written at exit; they stay in the Redis "
                    "journal for the next process",
                    self.name,
                    len(rows),
                )
            else:
                logger.exception("write-behind %s: %d rows lost at exit", self.name, len(rows))
            return
        if self._journal is not None:
            self._journal.written_sync(len(rows))


request_logs = WriteBehindQueue(
    request_logs_writer, "request-log", dedupe=by_request("routing.RequestLog", "created_at")
)

# Scores sent to POST /v1/feedback.
feedback = WriteBehindQueue(
    RowInserter("routing.Feedback"), "feedback", dedupe=by_request("routing.Feedback", "created_at")
)
