"""The Redis journal behind the write-behind queues: rows survive a crashed process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apps.routing.models import RequestLog
from apps.routing.writebehind import WriteBehindQueue, request_logs_writer
from atp_site.lib.journal import Journal, by_request, decode, encode

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (REDIS_URL)")


def test_rows_keep_their_types_through_the_journal():
    row = {
        "request_id": "r1",
        "created_at": datetime(2026, 12, 1, 12, 30, 1, 123456, tzinfo=UTC),
        "cost_usd": Decimal("0.00001234"),
        "decision": {"reasoning": ["a"], "at": datetime(2026, 1, 1, tzinfo=UTC)},
        "tokens": 5,
        "flag": None,
    }
    assert decode(encode(row)) == row


@pytest.fixture(autouse=True)
def _close_worker_connections():
    """The queue writes from asgiref's worker thread; close its connection afterwards so
    the test database can be dropped."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


def _row(rid: str) -> dict:
    return {
        "request_id": rid,
        "created_at": datetime.now(UTC),
        "completed_at": datetime.now(UTC),
        "endpoint": "chat.completions",
        "status": "success",
        "http_status": 200,
        "cost_usd": Decimal("0.001"),
        "decision": {"model": "m"},
    }


def _queue(prefix: str, name: str) -> WriteBehindQueue:
    already_written, identity = by_request("routing.RequestLog", "created_at")
    queue = WriteBehindQueue(request_logs_writer, name)
    queue._journal = Journal(
        name,
        REDIS_URL,
        prefix,
        already_written=already_written,
        identity=identity,
        alive_seconds=5,
    )
    queue._journal_checked = True
    return queue


@needs_redis
@pytest.mark.django_db(transaction=True)
async def test_journaled_rows_are_trimmed_once_written():
    import redis.asyncio as aredis

    prefix = f"atp-journal-{uuid.uuid4().hex[:8]}"
    queue = _queue(prefix, "request-log")
    for i in range(3):
        queue.put(_row(f"trim-{i}"))
    journal = queue.journal
    await journal.push()
    client = aredis.Redis.from_url(REDIS_URL)
    assert await client.llen(journal.key) == 3
    assert await queue.flush()
    assert await client.llen(journal.key) == 0
    assert (
        await sync_to_async(RequestLog.objects.filter(request_id__startswith="trim-").count)() == 3
    )
    await queue.drain()
    await client.aclose()


@needs_redis
async def test_rows_queued_while_a_push_is_under_way_follow_it():
    """A row queued while the previous push waits for Redis starts no push of its own: the
    push under way sends it next, so no row waits in memory for a request that may never
    come."""
    import redis.asyncio as aredis

    journal = Journal("request-log", REDIS_URL, f"atp-journal-{uuid.uuid4().hex[:8]}")
    journal.append(_row("during-0"))
    first = journal._push_task
    await asyncio.sleep(0)  # the push has sent its RPUSH and waits for the reply
    journal.append(_row("during-1"))
    journal.append(_row("during-2"))
    assert journal._push_task is first  # no second push was started
    await first
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        rows = [decode(raw) for raw in await client.lrange(journal.key, 0, -1)]
        assert [row["request_id"] for row in rows] == ["during-0", "during-1", "during-2"]
        assert not journal._pending
    finally:
        await client.delete(journal.key)
        await client.aclose()
        await journal.aclose()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_rows_of_a_failed_push_reach_the_journal_without_another_request():
    """Redis unreachable when the rows are queued: they are pushed again on their own, at
    growing intervals, and land once it answers, though nothing else is ever queued."""
    import redis.asyncio as aredis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    journal = Journal("request-log", url, f"atp-journal-{uuid.uuid4().hex[:8]}")
    journal.append(_row("retry-0"))
    journal.append(_row("retry-1"))
    await journal._push_task  # nothing listens on the port: the push fails
    assert len(journal._pending) == 2 and journal._retry is not None
    server = await asyncio.create_subprocess_exec(
        *["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = aredis.Redis.from_url(url)
    try:
        for _ in range(200):
            with contextlib.suppress(Exception):
                if await client.llen(journal.key) == 2:
                    break
            await asyncio.sleep(0.05)
        rows = [decode(raw) for raw in await client.lrange(journal.key, 0, -1)]
        assert [row["request_id"] for row in rows] == ["retry-0", "retry-1"]
        assert not journal._pending and journal._retry is None
    finally:
        await client.aclose()
        await journal.aclose()
        server.kill()
        await server.wait()


CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import UTC, datetime
    from decimal import Decimal
    from atp_site.lib.journal import Journal

    url, prefix, stamp = sys.argv[1], sys.argv[2], sys.argv[3]

    async def main():
        journal = Journal("request-log", url, prefix)
        for i in range(3):
            journal.append({
                "request_id": f"crash-{i}",
                "created_at": datetime.fromisoformat(stamp),
                "completed_at": datetime.fromisoformat(stamp),
                "endpoint": "chat.completions",
                "status": "success",
                "http_status": 200,
                "cost_usd": Decimal("0.5"),
            })
        await journal.push()

    asyncio.run(main())
    os._exit(0)  # no flush, no drain, no exit hooks: a crash as far as the queue knows
    """
)


@needs_redis
@pytest.mark.django_db(transaction=True)
async def test_a_stopped_process_rows_are_written_once_by_another():
    import redis.asyncio as aredis

    prefix = f"atp-journal-{uuid.uuid4().hex[:8]}"
    stamp = datetime.now(UTC).replace(microsecond=500)
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASHING_WRITER, REDIS_URL, prefix, stamp.isoformat()],
        check=True,
        timeout=60,
        cwd=os.getcwd(),
    )
    # One row reached the database before the crash (insert done, trim not).
    await sync_to_async(RequestLog.objects.create)(
        request_id="crash-0",
        created_at=stamp,
        endpoint="chat.completions",
        status="success",
        http_status=200,
    )
    queue = _queue(prefix, "request-log")
    assert await queue.recover() == 2
    rows = await sync_to_async(
        lambda: sorted(
            RequestLog.objects.filter(request_id__startswith="crash-").values_list(
                "request_id", "cost_usd"
            )
        )
    )()
    assert [r[0] for r in rows] == ["crash-0", "crash-1", "crash-2"]
    assert rows[1][1] == Decimal("0.5")
    client = aredis.Redis.from_url(REDIS_URL)
    assert [k async for k in client.scan_iter(match=f"{prefix}:wb:*")] == []
    # A second recovery finds nothing left.
    assert await queue.recover() == 0
    await queue.drain()
    await client.aclose()
