"""Write-behind queues: rows written in batches off the response's critical path, never lost.

Rows are appended in memory and flushed by one background task every
ATP_WRITE_BEHIND_INTERVAL seconds or as soon as ATP_WRITE_BEHIND_BATCH rows wait. Where a
row goes from there (docs/durability.md):

- the database, in one batch (COPY on PostgreSQL). The row inserter makes every value
  storable first (atp_site.lib.storable), so a hostile string cannot fail a batch;
- if a batch fails anyway for its data, it is split in halves until the rows the database
  refuses are alone; those go to the dead-letter file, are counted and audited
  (`writebehind.dead_lettered`), and every other row is written;
- while the database is unreachable, the spill file (atp_site.lib.spill: encrypted,
  fsynced): queued rows are appended to it every interval and replayed, skipping rows
  already written, once the database answers again, by this process or, if it died, by
  the next process to start on the same ATP_DATA_DIR;
- the spill file as well when more than ATP_WRITE_BEHIND_MAX_ROWS rows wait in memory.

Shutdown drains the queue (the ASGI lifespan calls `drain`; an atexit hook flushes
synchronously for servers without lifespan support) and whatever the database cannot
take then is spilled. With Redis, rows are also journaled there (atp_site.lib.journal) so
another process can write a crashed one's queued rows.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from atp_site.lib import spill, tracing
from atp_site.lib.bulk import Row, RowInserter, in_transaction
from atp_site.lib.errors import ATPError
from atp_site.lib.hot_settings import hot
from atp_site.lib.journal import RECOVER_EVERY_SECONDS, Journal, by_request

logger = logging.getLogger(__name__)

# Longest wait between two attempts to reach an unreachable database (seconds).
MAX_RETRY_SECONDS = 5.0
# How long a start-up spends replaying before it starts serving (the flush loop goes on).
STARTUP_REPLAY_SECONDS = 10.0
# What a refused caller is told to wait (seconds): about one replay step.
RETRY_AFTER_SECONDS = 5

request_logs_writer = RowInserter("routing.RequestLog")


@in_transaction
def write_request_logs(rows: list[Row]) -> None:
    """Request-log rows and, in the same transaction, the usage ledger's rows of those
    that carry one (apps.costs.ledger)."""
    from apps.costs.ledger import insert_ledger, ledger_rows

    request_logs_writer.insert(rows)
    entries = ledger_rows(rows)
    if entries:
        insert_ledger(entries)


class Unreachable(Exception):
    """The database did not answer; `rows` were not written."""

    def __init__(self, rows: list[Row]) -> None:
        super().__init__(f"{len(rows)} rows not written")
        self.rows = rows


def is_data_error(exc: BaseException) -> bool:
    """Whether `exc` is about the rows written (split the batch, set refused rows aside)
    rather than about the database (keep the rows, spill them, try again later)."""
    from django.db import DatabaseError, DataError, IntegrityError

    if isinstance(exc, DataError | IntegrityError):
        return True
    try:
        import psycopg  # raised as they are by COPY, which bypasses Django's wrapper
    except ImportError:  # pragma: no cover - SQLite-only installs
        psycopg = None
    if psycopg is not None:
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return True
        if isinstance(exc, psycopg.Error):
            return False
    # Unreachable server, lost connection, missing table, locked SQLite file: not the rows.
    # Anything else was raised while adapting a value (ValueError, UnicodeError, ...).
    return not isinstance(exc, DatabaseError)


class WriteBehindQueue:
    def __init__(
        self,
        writer: Callable[[list[Row]], None],
        name: str,
        *,
        dedupe: tuple[Callable[[list[Row]], set], Callable[[Row], tuple]] | None = None,
        time_field: str = "created_at",
        classification: str | None = None,
    ) -> None:
        """`dedupe` (see atp_site.lib.journal.by_request) lets a recovered journal or a
        replayed spill skip rows that reached the database before. `time_field` and
        `classification` say how retention applies to the rows while they wait in a
        spill file (None: the row's own `classification` field; "" for none)."""
        self.writer = writer
        self.name = name
        self.dedupe = dedupe
        self.time_field = time_field
        self.classification = classification
        self._journal: Journal | None = None
        self._journal_checked = False
        self._rows: list[Row] = []
        self._lock = threading.Lock()  # appends may come from several loops' threads
        self._task: asyncio.Task | None = None
        self._replay_task: asyncio.Task | None = None
        self._relief: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Journal trims in the order rows left memory (see _settle).
        self._tickets: deque[list] = deque()
        # Database reachability as this queue last saw it.
        self._down = False
        self._failures = 0
        self._retry_at = 0.0
        self._spilled = False  # this process has spilled rows not yet replayed
        self._last_scan = 0.0
        self._spill: spill.SpillStore | None = None
        # Called with each batch of rows taken from memory, in the flush task (behind the
        # response): the console's live figures count them there (atp_site.console.live).
        # Rows given back after both the database and the spill file failed count twice.
        self.observers: list[Callable[[list[Row]], None]] = []
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

    @property
    def spill(self) -> spill.SpillStore:
        """The files of settings.DATA_DIR (looked up each time: cheap, and off the hot
        path), unless a store was given."""
        return self._spill if self._spill is not None else spill.default_store()

    @spill.setter
    def spill(self, store: spill.SpillStore) -> None:
        self._spill = store

    # --- the hot path ----------------------------------------------------------------------

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
        if size > hot.ATP_WRITE_BEHIND_MAX_ROWS and (self._relief is None or self._relief.done()):
            self._relief = asyncio.get_running_loop().create_task(self._relieve())

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"write-behind:{self.name}")

    # --- leaving memory --------------------------------------------------------------------

    def _take(self) -> list[Row]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def _take_ticketed(self) -> tuple[list[Row], list | None]:
        with self._lock:
            rows, self._rows = self._rows, []
            ticket = None
            if rows and self._journal is not None:
                ticket = [len(rows), False]
                self._tickets.append(ticket)
        if rows and self.observers:
            self._observe(rows)
        return rows, ticket

    def _observe(self, rows: list[Row]) -> None:
        for observer in self.observers:
            try:
                observer(rows)
            except Exception:  # figures are best effort; the rows must still be written
                logger.exception("write-behind %s: an observer failed", self.name)

    def _give_back(self, rows: list[Row], ticket: list | None) -> None:
        """Rows neither written nor spilled (the spill file failed): back to the head."""
        with self._lock:
            self._rows[:0] = rows
        if ticket is not None:
            ticket[0] = 0  # still journaled: nothing to trim for them yet

    async def _settle(self, ticket: list | None) -> None:
        """Trim the journal for rows that left memory, in the order they were taken (a
        trim removes a count of rows from the journal's head)."""
        if ticket is None:
            return
        ticket[1] = True
        count = 0
        while self._tickets and self._tickets[0][1]:
            count += self._tickets.popleft()[0]
        if count and self._journal is not None:
            await self._journal.written(count)

    # --- the background task ---------------------------------------------------------------

    async def _run(self) -> None:
        delay = settings.ATP_WRITE_BEHIND_INTERVAL
        assert self._wakeup is not None
        journal = self.journal
        first = True
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            self._wakeup.clear()
            try:
                await self.flush()
                self._start_replay(force=first)
            except Exception:  # never let the loop die: rows would wait forever
                logger.exception("write-behind %s: flush failed", self.name)
            if journal is not None:
                now = time.monotonic()
                await journal.heartbeat(now)
                try:
                    await journal.recover(now, self._write_recovered, force=first)
                except Exception:
                    logger.exception("write-behind %s: journal recovery failed", self.name)
            first = False
            delay = settings.ATP_WRITE_BEHIND_INTERVAL

    def start(self) -> asyncio.Task | None:
        """Run the background task now (start-up), not only from the first queued row, and
        replay what waits in spill files; returns the replay task, if one started."""
        self._ensure_task()
        self._start_replay(force=True)
        task = self._replay_task
        return task if task is not None and not task.done() else None

    async def recover(self) -> int:
        """Announce this process and write rows journaled by stopped ones (start-up)."""
        journal = self.journal
        if journal is None:
            return 0
        now = time.monotonic()
        await journal.heartbeat(now)
        return await journal.recover(now, self._write_recovered, force=True)

    async def _write_recovered(self, rows: list[Row]) -> None:
        try:
            await sync_to_async(self._store, thread_sensitive=True)(rows)
        except Unreachable as exc:
            self._mark_down()
            await self._spill_rows(exc.rows, None)

    # --- writing ---------------------------------------------------------------------------

    def _store(self, rows: list[Row]) -> int:
        """Write `rows`; returns how many were refused and dead-lettered.

        A batch the database refuses for its data is split in halves until each refused
        row is alone; those are set aside and the rest written. Raises Unreachable (with
        the rows not written) when the database itself fails.
        """
        stack = [rows]
        refused: list[tuple[Row, str]] = []
        split = False
        while stack:
            batch = stack.pop()
            try:
                if tracing.enabled:
                    with tracing.span(
                        "atp.writebehind.write", {"atp.queue": self.name, "atp.rows": len(batch)}
                    ):
                        self.writer(batch)
                else:
                    self.writer(batch)
            except Exception as exc:
                if not is_data_error(exc):
                    self._close_connection()
                    left = [row for pending in reversed(stack) for row in pending]
                    if not self._down:
                        logger.warning(
                            "write-behind %s: the database is unreachable (%s); rows go to "
                            "the spill file until it answers",
                            self.name,
                            type(exc).__name__,
                        )
                    # Rows refused so far are retried with the rest (and refused again).
                    raise Unreachable([row for row, _ in refused] + batch + left) from exc
                if len(batch) == 1:
                    refused.append((batch[0], f"{type(exc).__name__}: {exc}"[:2000]))
                    continue
                if not split:
                    split = True
                    logger.warning(
                        "write-behind %s: a batch of %d rows was refused (%s); splitting it",
                        self.name,
                        len(batch),
                        type(exc).__name__,
                    )
                middle = len(batch) // 2
                stack.append(batch[middle:])
                stack.append(batch[:middle])
        if refused:
            self._dead_letter(refused)
        return len(refused)

    @staticmethod
    def _close_connection() -> None:
        from django.db import connection

        with contextlib.suppress(Exception):
            connection.close()

    def _dead_letter(self, refused: list[tuple[Row, str]]) -> None:
        try:
            path = self.spill.dead_letter(self.name, refused)
        except Exception:
            logger.exception(
                "write-behind %s: %d refused rows could not be set aside; they are lost",
                self.name,
                len(refused),
            )
            return
        where = spill.describe(path)
        logger.error(
            "write-behind %s: %d rows refused by the database set aside in %s",
            self.name,
            len(refused),
            where,
        )
        errors: dict[str, int] = {}
        for _, error in refused:
            kind = error.split(":", 1)[0]
            errors[kind] = errors.get(kind, 0) + 1
        try:
            from apps.audit.services import audit_record

            audit_record(
                event_type="writebehind.dead_lettered",
                action="dead_letter",
                outcome="failure",
                resource_type="write_behind_queue",
                resource_id=self.name,
                data={"queue": self.name, "count": len(refused), "file": where, "errors": errors},
            )
        except Exception:
            logger.exception("write-behind %s: the dead-letter audit event failed", self.name)

    def _mark_down(self) -> None:
        self._down = True
        self._failures += 1
        backoff = settings.ATP_WRITE_BEHIND_INTERVAL * 2 ** min(self._failures, 10)
        self._retry_at = time.monotonic() + min(MAX_RETRY_SECONDS, backoff)

    def _mark_up(self) -> None:
        if self._down:
            logger.warning("write-behind %s: the database answers again", self.name)
        self._down = False
        self._failures = 0

    def _may_try(self) -> bool:
        return not self._down or time.monotonic() >= self._retry_at

    async def flush(self) -> bool:
        """Write everything queued now; True when it reached the database (or nothing was
        queued). Rows the database cannot take now are spilled."""
        rows, ticket = self._take_ticketed()
        if not rows:
            return True
        try:
            if not self._may_try():
                await self._spill_rows(rows, ticket)
                return False
            try:
                await sync_to_async(self._store, thread_sensitive=True)(rows)
            except Unreachable as exc:
                self._mark_down()
                await self._spill_rows(exc.rows, ticket)
                return False
            self._mark_up()
            return True
        finally:
            await self._settle(ticket)

    # --- spilling --------------------------------------------------------------------------

    async def _spill_rows(self, rows: list[Row], ticket: list | None) -> None:
        """Spill off the event loop and off the database thread (which may be stuck)."""
        if not await asyncio.to_thread(self._spill_sync, rows):
            self._give_back(rows, ticket)

    def _spill_sync(self, rows: list[Row]) -> bool:
        """Append `rows` to the spill file; False when that failed (rows still ours)."""
        store = self.spill
        if store.state.full and settings.ATP_SPILL_FULL == "proceed":
            spill.stats.dropped[self.name] += len(rows)
            logger.error(
                "write-behind %s: the spill file is full (ATP_SPILL_MAX_BYTES) and "
                "ATP_SPILL_FULL=proceed: %d rows dropped",
                self.name,
                len(rows),
            )
            return True
        try:
            store.append(self.name, rows)
        except Exception:
            logger.exception(
                "write-behind %s: %d rows could not be spilled; kept in memory",
                self.name,
                len(rows),
            )
            store.refresh(broken=True)
            return False
        self._spilled = True
        store.refresh(broken=False)
        return True

    async def _relieve(self) -> None:
        """More rows wait than ATP_WRITE_BEHIND_MAX_ROWS: spill them rather than grow."""
        while len(self._rows) > hot.ATP_WRITE_BEHIND_MAX_ROWS:
            rows, ticket = self._take_ticketed()
            logger.warning(
                "write-behind %s: %d rows waiting (ATP_WRITE_BEHIND_MAX_ROWS); spilled",
                self.name,
                len(rows),
            )
            try:
                await self._spill_rows(rows, ticket)
            finally:
                await self._settle(ticket)
            if self._rows and self._rows[0] is rows[0]:
                return  # the spill failed and gave them back: the flush loop retries

    # --- replay ----------------------------------------------------------------------------

    def _start_replay(self, *, force: bool = False) -> None:
        """Replay in its own task when something waits in a spill file and the database
        may answer; the flush loop goes on meanwhile."""
        if self.spill.state.refusing:
            self.spill.refresh()  # another process may have replayed what filled it
        if self._replay_task is not None and not self._replay_task.done():
            return
        if not self._may_try():
            return
        now = time.monotonic()
        if not (self._spilled or force or now - self._last_scan >= RECOVER_EVERY_SECONDS):
            return
        self._last_scan = now
        if not self.spill.has_spill(self.name):
            self._spilled = False
            return
        self._replay_task = asyncio.get_running_loop().create_task(
            self.replay(), name=f"write-behind-replay:{self.name}"
        )

    async def replay(self) -> int:
        """Write the rows spilled by this process and by processes that are gone, skipping
        rows already in the database; stops (keeping the rest) if the database fails
        again. Returns how many rows were written or set aside."""
        store = self.spill
        done = 0
        paths = await asyncio.to_thread(store.claim, self.name)
        for path in paths:
            reader = await asyncio.to_thread(store.reader, path)
            try:
                while True:
                    rows = await asyncio.to_thread(reader.next_rows)
                    if rows is None:
                        break
                    try:
                        done += await sync_to_async(self._store_replayed, thread_sensitive=True)(
                            rows
                        )
                    except Unreachable:
                        self._mark_down()
                        self._spilled = True  # try again as soon as the database may answer
                        return done
            finally:
                reader.close()
            await asyncio.to_thread(store.finish, path)
            logger.warning(
                "write-behind %s: replayed %s from the spill", self.name, spill.describe(path)
            )
        if paths:
            self._mark_up()
            await asyncio.to_thread(store.refresh)
        return done

    def _store_replayed(self, rows: list[Row]) -> int:
        from django.db import DatabaseError

        if self.dedupe is not None:
            already_written, identity = self.dedupe
            try:
                written = already_written(rows)
            except DatabaseError:
                self._close_connection()
                raise Unreachable(rows) from None
            rows = [row for row in rows if identity(row) not in written]
        if rows:
            self._store(rows)
            spill.stats.replayed[self.name] += len(rows)
        return len(rows)

    # --- shutdown ----------------------------------------------------------------------------

    async def drain(self, attempts: int = 5) -> None:
        """Flush until empty (graceful shutdown) and stop the background tasks; what the
        database cannot take goes to the spill file for the next start to replay."""
        for task in (self._replay_task, self._relief):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for _ in range(attempts):
            await self.flush()
            if not self._rows:
                break
            await asyncio.sleep(0.2)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._rows:
            rows, ticket = self._take_ticketed()
            if await asyncio.to_thread(self._spill_sync, rows):
                await self._settle(ticket)
            else:
                self._give_back(rows, ticket)
        if self._journal is not None and not self._rows:
            await self._journal.aclose()
        if self._rows:
            logger.error(
                "write-behind %s: %d rows could be neither written nor spilled",
                self.name,
                len(self._rows),
            )

    def flush_sync(self) -> None:
        """Last-chance flush at interpreter exit, outside any event loop: to the database,
        else to the spill file."""
        rows = self._take()
        if not rows:
            return
        try:
            self._store(rows)
        except Unreachable as exc:
            if not self._spill_sync(exc.rows):
                logger.error(
                    "write-behind %s: %d rows lost at exit (database and spill file both failed)%s",
                    self.name,
                    len(exc.rows),
                    "; they stay in the Redis journal" if self._journal is not None else "",
                )
                return
        if self._journal is not None:
            self._journal.written_sync(len(rows))


# --- retention and erasure of rows waiting in spill files ------------------------------------

QUEUES: dict[str, WriteBehindQueue] = {}


def register(queue: WriteBehindQueue) -> WriteBehindQueue:
    QUEUES[queue.name] = queue
    return queue


def _row_time(row: Row, field: str) -> datetime | None:
    value = row.get(field)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    return value if isinstance(value, datetime) else None


def spill_purge_expired(
    *, now: datetime, days_for: Callable[[str, Any], int | None], store: Any = None
) -> int:
    """Drop rows waiting in spill and dead-letter files that are past their retention.

    `days_for(classification, tenant_id)` is the retention in days for the queue's
    classification (request logs "requests", stored bodies "bodies", audit events their
    own); None keeps the row. Returns how many rows were dropped.
    """
    store = store or spill.default_store()

    def change(queue_name: str, row: Row) -> Row | None:
        queue = QUEUES.get(queue_name)
        if queue is None or queue.classification == "":
            return row
        classification = queue.classification or row.get("classification") or "internal"
        days = days_for(classification, row.get("tenant_id"))
        at = _row_time(row, queue.time_field)
        if days is None or at is None or at + timedelta(days=days) > now:
            return row
        return None

    return store.rewrite(change)


def spill_erase_subject(*, tenant_id: Any, end_user: str, tombstone: str, store: Any = None) -> int:
    """Erase a data subject from rows waiting in spill and dead-letter files, as the
    erasure does in the database: request logs keep their counts with the subject
    replaced by `tombstone` and no free text; stored bodies go. `tenant_id` None matches
    every tenant. Returns how many rows changed."""
    store = store or spill.default_store()
    tenant = str(tenant_id) if tenant_id is not None else None

    def change(queue_name: str, row: Row) -> Row | None:
        if row.get("end_user") != end_user:
            return row
        if tenant is not None and str(row.get("tenant_id")) != tenant:
            return row
        if queue_name == "exchanges":
            return None
        return {**row, "end_user": tombstone, "error_message": ""}

    return store.rewrite(change)


# --- admission ---------------------------------------------------------------------------------


class RecordsUnavailable(ATPError):
    status = 503
    type = "service_unavailable"
    code = "records_unavailable"
    retryable = True


def admit() -> None:
    """Refuse new /v1 work while its records could not be kept (ATP_SPILL_FULL=reject and
    the spill file full or unwritable): one attribute read on the hot path."""
    if spill.state.refusing:
        spill.stats.refused_requests += 1
        raise RecordsUnavailable(
            "The gateway cannot record requests right now (its database is unreachable "
            "and its spill space is full); retry shortly.",
            retry_after=RETRY_AFTER_SECONDS,
        )


request_logs = register(
    WriteBehindQueue(
        write_request_logs,
        "request-log",
        dedupe=by_request("routing.RequestLog", "created_at"),
        classification="requests",
    )
)

# Scores sent to POST /v1/feedback (kept like the database keeps them: no retention).
feedback = register(
    WriteBehindQueue(
        RowInserter("routing.Feedback"),
        "feedback",
        dedupe=by_request("routing.Feedback", "created_at"),
        classification="",
    )
)
