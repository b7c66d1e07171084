"""While the database is unreachable, queued rows go to an encrypted, fsynced spill file and
are replayed once it answers; the spill is bounded, covered by retention and erasure.

The end-to-end proof with a real PostgreSQL stopped under traffic is in
tests/e2e/test_records_outage.py; here the database is made unreachable by a writer that
raises what Django raises when it cannot connect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.db import OperationalError
from django.test import Client

from apps.audit.models import AuditEvent, StoredExchange
from apps.audit.privacy import subject_erase
from apps.audit.retention import retention_run
from apps.routing.models import RequestLog
from apps.routing.writebehind import WriteBehindQueue, request_logs_writer
from atp_site.lib import spill
from atp_site.lib.journal import by_request
from atp_site.lib.spill import SpillStore
from tests.routing import conftest as routing
from tests.routing.conftest import call

gateway = routing.gateway
CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello there"}]}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _close_worker_connections():
    yield
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def data_dir(tmp_path, settings):
    """A data directory of this test's own: its spill store is the default one."""
    settings.DATA_DIR = tmp_path
    yield tmp_path
    store = spill.default_store()
    store.close()
    spill._stores.pop(str(tmp_path), None)
    spill.state.__init__()  # admission flags back to "accepting"


class Outage:
    """The real inserter behind a switch: while `down`, it fails as Django does when the
    database does not answer."""

    def __init__(self, writer=request_logs_writer) -> None:
        self.writer = writer
        self.down = False

    def __call__(self, rows: list[dict]) -> None:
        if self.down:
            raise OperationalError('connection to server at "127.0.0.1" failed: refused')
        self.writer(rows)


def _row(request_id: str, **extra) -> dict:
    now = datetime.now(UTC)
    return {
        "request_id": request_id,
        "created_at": now,
        "completed_at": now,
        "endpoint": "chat.completions",
        "status": "success",
        "http_status": 200,
        "cost_usd": Decimal("0.00012345"),
        **extra,
    }


def _queue(store: SpillStore, writer, name: str | None = None) -> WriteBehindQueue:
    queue = WriteBehindQueue(
        writer,
        name or f"spill{uuid.uuid4().hex[:6]}",
        dedupe=by_request("routing.RequestLog", "created_at"),
    )
    queue.spill = store
    return queue


@sync_to_async
def _logged(prefix: str) -> list[str]:
    return sorted(
        RequestLog.objects.filter(request_id__startswith=prefix).values_list(
            "request_id", flat=True
        )
    )


# --- the file ----------------------------------------------------------------------------------


def test_spilled_rows_are_encrypted_fsynced_and_read_back_as_queued(tmp_path, monkeypatch):
    store = SpillStore(tmp_path)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    secret = f"prompt-{uuid.uuid4().hex}"
    rows = [_row("r-enc-1", end_user=secret, decision={"why": [secret]}), _row("r-enc-2")]
    store.append("request-log", rows)

    [path] = list(store.spill_dir.iterdir())
    raw = path.read_bytes()
    assert secret.encode() not in raw and b"r-enc-1" not in raw
    assert str(path) in synced  # the data reached the disk before append returned
    assert [row for _, row in store.read_all()] == rows  # datetimes and decimals kept
    monkeypatch.undo()
    store.close()


# --- spill and replay ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_rows_spill_while_the_database_is_away_and_are_replayed_once(tmp_path):
    store = SpillStore(tmp_path)
    writer = Outage()
    queue = _queue(store, writer)
    prefix = f"{queue.name}-"
    writer.down = True
    for i in range(20):
        queue.put(_row(f"{prefix}{i}"))
    assert not await queue.flush()
    assert len(queue) == 0 and store.has_spill(queue.name)
    # While the database is away, later rows go straight to the spill.
    queue.put(_row(f"{prefix}late"))
    assert not await queue.flush()
    assert len(store.read_all()) == 21
    assert await _logged(prefix) == []

    writer.down = False
    # A crash between an insert and the removal of its spill file: replay skips the row.
    await sync_to_async(request_logs_writer)([store.read_all()[0][1]])
    assert await queue.replay() == 20
    assert await _logged(prefix) == sorted([f"{prefix}{i}" for i in range(20)] + [f"{prefix}late"])
    assert not store.has_spill(queue.name)
    assert await queue.replay() == 0
    await queue.drain()
    store.close()


@pytest.mark.django_db(transaction=True)
async def test_the_flush_loop_replays_by_itself(tmp_path, settings):
    settings.ATP_WRITE_BEHIND_INTERVAL = 0.05
    store = SpillStore(tmp_path)
    writer = Outage()
    queue = _queue(store, writer)
    writer.down = True
    queue.put(_row(f"{queue.name}-1"))
    await queue.flush()
    assert store.has_spill(queue.name)
    writer.down = False
    queue._retry_at = 0  # the next attempt is due now
    queue.put(_row(f"{queue.name}-2"))  # starts the loop, as any request does
    for _ in range(200):
        if len(await _logged(f"{queue.name}-")) == 2 and not store.has_spill(queue.name):
            break
        await asyncio.sleep(0.05)
    assert await _logged(f"{queue.name}-") == [f"{queue.name}-1", f"{queue.name}-2"]
    await queue.drain()
    store.close()


CRASHED = textwrap.dedent(
    """
    import os, sys, time
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    django.setup()
    from datetime import UTC, datetime
    from atp_site.lib.spill import SpillStore

    store = SpillStore(sys.argv[1])
    now = datetime.now(UTC)
    store.append("request-log", [{
        "request_id": sys.argv[2], "created_at": now, "completed_at": now,
        "endpoint": "chat.completions", "status": "success", "http_status": 200,
    }])
    print("spilled", flush=True)
    if sys.argv[3] == "stay":
        time.sleep(60)
    os._exit(0)
    """
)


@pytest.mark.django_db(transaction=True)
async def test_another_process_spill_is_replayed_only_once_it_is_gone(tmp_path, settings):
    store = SpillStore(tmp_path)
    queue = _queue(store, request_logs_writer, name="request-log")
    gone_id, alive_id = f"gone-{uuid.uuid4().hex[:8]}", f"alive-{uuid.uuid4().hex[:8]}"
    # The other processes encrypt their spill with this process's keys, as the instances
    # of one deployment share them; their own data directory would generate other keys.
    env = {
        **os.environ,
        "ATP_DATA_DIR": str(tmp_path),
        "ATP_ENCRYPTION_KEYS": ",".join(settings.ATP_ENCRYPTION_KEYS),
    }
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASHED, str(tmp_path), gone_id, "exit"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )
    alive = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-c", CRASHED, str(tmp_path), alive_id, "stay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert (await asyncio.to_thread(alive.stdout.readline)).strip() == b"spilled"
        assert await queue.replay() == 1  # the running process's file is left alone
        assert await _logged("gone-") == [gone_id]
        assert await _logged("alive-") == []
    finally:
        alive.kill()
        alive.wait(10)
    assert await queue.replay() == 1
    assert await _logged("alive-") == [alive_id]
    assert not store.has_spill()
    await queue.drain()
    store.close()


# --- bounds and shutdown ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_rows_beyond_the_memory_bound_are_spilled(tmp_path, settings):
    settings.ATP_WRITE_BEHIND_MAX_ROWS = 10
    settings.ATP_WRITE_BEHIND_INTERVAL = 60  # no flush: only the bound moves rows
    store = SpillStore(tmp_path)
    queue = _queue(store, Outage())
    for i in range(35):
        queue.put(_row(f"{queue.name}-{i}"))
        await asyncio.sleep(0)
        assert len(queue) <= 35
    for _ in range(100):
        if len(queue) <= 10:
            break
        await asyncio.sleep(0.02)
    assert len(queue) <= 10
    spilled = len(store.read_all())
    assert spilled >= 25 and spilled + len(queue) == 35
    await queue.drain()
    store.close()


@pytest.mark.django_db(transaction=True)
async def test_shutdown_spills_what_the_database_cannot_take(tmp_path, caplog):
    store = SpillStore(tmp_path)
    writer = Outage()
    queue = _queue(store, writer)
    writer.down = True
    for i in range(5):
        queue.put(_row(f"{queue.name}-drain-{i}"))
    with caplog.at_level(logging.ERROR):
        await queue.drain()
    assert len(queue) == 0
    assert len(store.read_all()) == 5
    assert "could be neither written nor spilled" not in caplog.text
    # The exit hook (servers without lifespan support) does the same.
    queue.put(_row(f"{queue.name}-exit"))
    await asyncio.to_thread(queue.flush_sync)
    assert len(store.read_all()) == 6
    await queue.drain()
    store.close()


# --- full spill: admission -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_full_spill_refuses_new_requests_with_a_retryable_503(gateway, data_dir, settings):
    settings.ATP_SPILL_MAX_BYTES = 1
    store = spill.default_store()
    await sync_to_async(store.append)("request-log", [_row("waiting")])
    await sync_to_async(store.refresh)()
    assert spill.state.refusing

    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)
    assert resp.status == 503
    assert resp.headers["retry-after"] == "5"
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["retryable"]) == (
        "service_unavailable",
        "records_unavailable",
        True,
    )
    anthropic = await call(
        "POST",
        "/v1/messages",
        json={"model": "sim-fast", "max_tokens": 5, "messages": CHAT["messages"]},
        key=gateway.key,
    )
    assert anthropic.status == 503 and anthropic.json()["error"]["type"] == "overloaded_error"
    assert "retry-after" in anthropic.headers

    # Once the spill is replayed (here: emptied), requests are served again.
    await sync_to_async(store.rewrite)(lambda queue, row: None)
    assert not spill.state.refusing
    assert (await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)).status == 200


@pytest.mark.django_db(transaction=True)
async def test_proceed_mode_serves_and_counts_the_rows_it_cannot_keep(gateway, data_dir, settings):
    settings.ATP_SPILL_MAX_BYTES = 1
    settings.ATP_SPILL_FULL = "proceed"
    settings.ATP_METRICS_TOKEN = ""
    store = spill.default_store()
    await sync_to_async(store.append)("request-log", [_row("waiting")])
    await sync_to_async(store.refresh)()
    assert spill.state.full and not spill.state.refusing
    assert (await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)).status == 200

    writer = Outage()
    writer.down = True
    queue = _queue(store, writer)
    before = len(store.read_all())
    for i in range(4):
        queue.put(_row(f"{queue.name}-{i}"))
    await queue.flush()
    assert len(queue) == 0 and len(store.read_all()) == before  # not spilled: dropped
    assert spill.stats.dropped[queue.name] == 4
    page = await sync_to_async(Client().get)("/metrics")
    assert f'atp_writebehind_dropped_rows_total{{queue="{queue.name}"}} 4.0' in (
        page.content.decode()
    )
    await queue.drain()


# --- retention and erasure ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_retention_purges_spilled_rows_past_their_retention(data_dir, tenant_factory):
    tenant = tenant_factory()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=500), now - timedelta(days=1)
    store = spill.default_store()
    store.append(
        "request-log",
        [
            _row("log-old", tenant_id=tenant.pk, created_at=old),
            _row("log-new", tenant_id=tenant.pk, created_at=recent),
        ],
    )
    store.append(
        "exchanges",
        [{"request_id": "body-old", "tenant_id": tenant.pk, "created_at": now - timedelta(40)}],
    )
    store.append(
        "audit",
        [{"request_id": "event-recent", "occurred_at": now - timedelta(days=10), "data": {}}],
    )
    store.dead_letter("request-log", [(_row("dead-old", created_at=old), "DataError: x")])

    retention_run(now=now)
    waiting = {row["request_id"] for _, row in store.read_all()}
    assert waiting == {"log-new", "event-recent"}
    assert store.read_all(dead=True) == []
    event = AuditEvent.objects.get(event_type="retention.spilled_rows_purged")
    assert event.data == {"purged": 3}


@pytest.mark.django_db(transaction=True)
def test_erasure_reaches_rows_waiting_in_the_spill(data_dir, tenant_factory):
    tenant, other = tenant_factory(), tenant_factory()
    store = spill.default_store()
    store.append(
        "request-log",
        [
            _row("mine", tenant_id=tenant.pk, end_user="user-42", error_message="about user-42"),
            _row("theirs", tenant_id=tenant.pk, end_user="someone-else"),
            # The same subject id at another tenant is another person.
            _row("other-tenant", tenant_id=other.pk, end_user="user-42"),
        ],
    )
    store.append(
        "exchanges",
        [
            {
                "request_id": "mine",
                "tenant_id": tenant.pk,
                "end_user": "user-42",
                "request_encrypted": "x",
            },
            {
                "request_id": "other-tenant",
                "tenant_id": other.pk,
                "end_user": "user-42",
                "request_encrypted": "y",
            },
        ],
    )
    store.dead_letter(
        "request-log", [(_row("dead", tenant_id=tenant.pk, end_user="user-42"), "DataError: x")]
    )

    result = subject_erase(tenant=tenant, subject="user-42")
    waiting = {(queue, row["request_id"]): row for queue, row in store.read_all()}
    # This tenant's stored body went; the other tenant's stayed.
    assert set(waiting) == {
        ("request-log", "mine"),
        ("request-log", "theirs"),
        ("request-log", "other-tenant"),
        ("exchanges", "other-tenant"),
    }
    mine = waiting[("request-log", "mine")]
    assert mine["end_user"] == result["tombstone"] and mine["error_message"] == ""
    assert mine["cost_usd"] == Decimal("0.00012345")  # accounting kept
    assert waiting[("request-log", "theirs")]["end_user"] == "someone-else"
    assert waiting[("request-log", "other-tenant")]["end_user"] == "user-42"
    [(_, dead)] = store.read_all(dead=True)
    assert dead["row"]["end_user"] == result["tombstone"]
    assert not StoredExchange.objects.exists()


# --- the operator's command -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_command_shows_and_replays_what_waits(data_dir):
    from io import StringIO

    from django.core.management import call_command

    store = spill.default_store()
    rid = f"cmd-{uuid.uuid4().hex[:6]}"
    store.append("request-log", [_row(rid)])
    store.dead_letter("request-log", [(_row(f"{rid}-dead"), "DataError: refused")])
    # Rows spilled by this process count as its own until it stops: hand them to a
    # process that is gone, as after a crash.
    [path] = list(store.spill_dir.iterdir())
    path.rename(path.with_name(f"request-log.{uuid.uuid4().hex}.log"))

    out = StringIO()
    call_command("atp_writebehind", "status", stdout=out)
    assert "request-log: 1 rows waiting, 1 dead-lettered" in out.getvalue()
    out = StringIO()
    call_command("atp_writebehind", "dead-letters", stdout=out)
    entry = orjson.loads(out.getvalue().splitlines()[0])
    assert entry["row"]["request_id"] == f"{rid}-dead" and entry["error"] == "DataError: refused"
    out = StringIO()
    call_command("atp_writebehind", "replay", "--queue", "request-log", stdout=out)
    assert "request-log: 1 rows written" in out.getvalue()
    assert RequestLog.objects.filter(request_id=rid).exists()
    assert not store.has_spill()
