"""Counts settled requests into time buckets and publishes them once a second.

The request log's write-behind queue hands each batch it takes from memory to `observe`
(in its flush task, behind the response: the /v1 hot path does nothing more than before).
A background task of this process then, once a second:

- writes the buckets that changed to the store (atp_site.console.live.store), each under
  this process's id, so the overview of any process merges every process's figures;
- appends the new errors to the store's short list of recent errors;
- sends the requests it saw to the channel layer's `console.requests` group, which every
  console socket of every process (channels-redis) receives and filters by its viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from atp_site.console.live import samples
from atp_site.console.live.store import MINUTE, SECOND, Store, get_store

logger = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
REQUESTS_GROUP = "console.requests"
INTERVAL_SECONDS = 1.0
# A row older than this when it reaches the flush counts in the current second.
LATE_SECONDS = 60
# Seconds kept in memory: a late row's minute is re-published whole from them.
KEPT_SECONDS = LATE_SECONDS + 2 * 60
# Requests sent to the stream per process and second; more are counted, not listed.
STREAM_MAX = 50
# Errors listed per process and second (the store keeps the newest few anyway).
ERRORS_MAX = 20


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the request stream shows of one request (never its prompt, user or key)."""
    tenant = row.get("tenant_id")
    return {
        "request_id": str(row.get("request_id") or ""),
        "at": _iso(row.get("completed_at") or row.get("created_at")),
        "tenant_id": str(tenant) if tenant is not None else None,
        "endpoint": row.get("endpoint") or "",
        "route": row.get("route") or "",
        "model": row.get("model") or "",
        "status": row.get("status") or "",
        "http_status": row.get("http_status"),
        "latency_ms": row.get("latency_ms"),
        "ttft_ms": row.get("ttft_ms"),
        "tokens": (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0),
        "cost_usd": str(row.get("cost_usd") or 0),
        "error_type": row.get("error_type") or "",
    }


class Publisher:
    """This process's open buckets and what waits to be published."""

    def __init__(
        self,
        *,
        store: Callable[[], Store] = get_store,
        clock: Callable[[], float] = time.time,
        process: str = PROCESS_ID,
    ) -> None:
        self.store = store
        self.clock = clock
        self.process = process
        self._seconds: dict[int, samples.Sample] = {}
        self._dirty: set[int] = set()
        self._stream: list[dict[str, Any]] = []
        self._errors: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- fed by the write-behind flush --------------------------------------------------------

    def observe(self, rows: list[Mapping[str, Any]]) -> None:
        """Count rows into their second (minute buckets are made from seconds at
        publication, so each row is counted once)."""
        now = self.clock()
        with self._lock:
            seconds = self._seconds
            for row in rows:
                done = row.get("completed_at")
                at = done.timestamp() if isinstance(done, datetime) else now
                if at < now - LATE_SECONDS or at > now + 5:
                    at = now
                second = int(at)
                sample = seconds.get(second)
                if sample is None:
                    sample = seconds[second] = {}
                samples.add_row(sample, row)
                self._dirty.add(second)
                if len(self._stream) < STREAM_MAX:
                    self._stream.append(_summary(row))
                if row["status"] == "error" and len(self._errors) < ERRORS_MAX:
                    self._errors.append(_summary(row))
        self._ensure_task()

    def _ensure_task(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous flush (tests, exit): the next loop publishes
            return
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = loop.create_task(self._run(), name="console-live-publisher")

    # --- once a second ------------------------------------------------------------------------

    def take(self) -> tuple[dict, list, list]:
        """Changed buckets (this process's cumulative sample of each: the seconds that
        changed and the minutes they fall in), the stream and the new errors."""
        now = self.clock()
        with self._lock:
            seconds = self._seconds
            buckets: dict[tuple[int, int], samples.Sample] = {
                (SECOND, s): dict(seconds[s]) for s in self._dirty
            }
            for minute in {s - s % MINUTE for s in self._dirty}:
                buckets[(MINUTE, minute)] = samples.merge(
                    seconds[s] for s in range(minute, minute + MINUTE) if s in seconds
                )
            self._dirty.clear()
            # Kept for as long as a late row may still land in their minute.
            for second in [s for s in seconds if s < now - KEPT_SECONDS]:
                del seconds[second]
            stream, self._stream = self._stream, []
            errors, self._errors = self._errors, []
        return buckets, stream, errors

    async def publish(self) -> None:
        buckets, stream, errors = self.take()
        store = self.store()
        if buckets:
            await asyncio.to_thread(store.publish, self.process, buckets)
        if errors:
            await asyncio.to_thread(store.push_errors, errors)
        if stream:
            from channels.layers import get_channel_layer

            layer = get_channel_layer()
            if layer is not None:
                await layer.group_send(REQUESTS_GROUP, {"type": "requests.batch", "rows": stream})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            try:
                await self.publish()
            except Exception:  # an unreachable Redis costs figures, never requests
                logger.warning("console figures not published", exc_info=True)

    async def stop(self) -> None:
        """Publish what is left and stop the task (tests, shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        await self.publish()


publisher = Publisher()


def install() -> None:
    """Count the request log's rows as its write-behind queue takes them (once per process)."""
    from apps.routing.writebehind import request_logs

    if publisher.observe not in request_logs.observers:
        request_logs.observers.append(publisher.observe)
