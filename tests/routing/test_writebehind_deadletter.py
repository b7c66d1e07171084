"""A row the database refuses is set aside, counted and audited; every other row is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.test import Client

from apps.audit.models import AuditEvent
from apps.routing.models import RequestLog
from apps.routing.writebehind import WriteBehindQueue, request_logs_writer
from atp_site.lib import spill
from atp_site.lib.journal import by_request
from atp_site.lib.spill import SpillStore

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_worker_connections():
    """The queue writes from asgiref's worker thread; close its connection afterwards so
    the test database can be dropped."""
    yield
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


def _row(request_id: str, **extra) -> dict:
    now = datetime.now(UTC)
    return {
        "request_id": request_id,
        "created_at": now,
        "completed_at": now,
        "endpoint": "chat.completions",
        "status": "success",
        "http_status": 200,
        "cost_usd": Decimal("0.001"),
        "end_user": "someone",
        **extra,
    }


def _queue(tmp_path, name: str) -> WriteBehindQueue:
    queue = WriteBehindQueue(
        request_logs_writer, name, dedupe=by_request("routing.RequestLog", "created_at")
    )
    queue.spill = SpillStore(tmp_path)
    return queue


async def test_one_poisoned_row_is_dead_lettered_and_the_rest_written(tmp_path, settings):
    settings.ATP_METRICS_TOKEN = ""
    name = f"dl-{uuid.uuid4().hex[:6]}"
    queue = _queue(tmp_path, name)
    marker = f"poison-{uuid.uuid4().hex}"
    for i in range(50):
        # A tenant id that is no UUID: no cleaning can make it storable.
        extra = {"tenant_id": "not-a-uuid", "end_user": marker} if i == 17 else {}
        queue.put(_row(f"{name}-{i}", **extra))
    assert await queue.flush()
    assert len(queue) == 0  # nothing is given back to be retried forever

    written = await sync_to_async(
        lambda: set(
            RequestLog.objects.filter(request_id__startswith=f"{name}-").values_list(
                "request_id", flat=True
            )
        )
    )()
    assert written == {f"{name}-{i}" for i in range(50) if i != 17}

    [(queue_name, entry)] = queue.spill.read_all(dead=True)
    assert queue_name == name
    assert entry["row"]["request_id"] == f"{name}-17"
    assert "ValidationError" in entry["error"]
    raw = b"".join(p.read_bytes() for p in queue.spill.dead_dir.iterdir())
    assert marker.encode() not in raw and f"{name}-17".encode() not in raw  # encrypted

    assert spill.stats.dead_lettered[name] == 1
    page = await sync_to_async(Client().get)("/metrics")
    assert f'atp_writebehind_dead_lettered_rows_total{{queue="{name}"}} 1.0' in (
        page.content.decode()
    )
    event = await sync_to_async(AuditEvent.objects.get, thread_sensitive=True)(
        event_type="writebehind.dead_lettered", resource_id=name
    )
    assert event.data["count"] == 1 and event.data["queue"] == name
    assert event.data["errors"] == {"ValidationError": 1}
    assert marker not in str(event.data)
    await queue.drain()
    queue.spill.close()


async def test_the_rows_behind_a_refused_batch_keep_flowing(tmp_path):
    """Refused rows leave the queue at once: the next batches are written as usual."""
    name = f"dl-{uuid.uuid4().hex[:6]}"
    queue = _queue(tmp_path, name)
    queue.put(_row(f"{name}-bad", tenant_id="not-a-uuid"))
    assert await queue.flush()
    for i in range(3):
        queue.put(_row(f"{name}-after-{i}"))
    assert await queue.flush()
    count = await sync_to_async(
        RequestLog.objects.filter(request_id__startswith=f"{name}-after-").count
    )()
    assert count == 3
    assert len(queue.spill.read_all(dead=True)) == 1
    await queue.drain()
    queue.spill.close()
