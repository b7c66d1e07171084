"""The overview: figures merged from every process (never averaged percentiles), the page
rendered server-side and narrowed to what each viewer may see, the JSON fallback."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.routing.writebehind import WriteBehindQueue, request_logs
from atp_site.console.live import figures, samples
from atp_site.console.live.publisher import Publisher, publisher
from atp_site.console.live.store import MemoryStore, RedisStore, set_store
from tests.conftest import TenantFactory, UserFactory, grant_permissions

NOW = 1_800_000_000.0  # a fixed clock: second buckets are deterministic


def _row(latency_ms: int, *, status="success", tenant=None, route="team/a", model="m-1", at=None):
    return {
        "request_id": uuid.uuid4().hex,
        "created_at": datetime.fromtimestamp(at or NOW - 10, UTC),
        "completed_at": datetime.fromtimestamp(at or NOW - 10, UTC),
        "endpoint": "chat.completions",
        "tenant_id": tenant,
        "status": status,
        "http_status": 200 if status == "success" else 502,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": Decimal("0.001"),
        "latency_ms": latency_ms,
        "ttft_ms": latency_ms // 2,
        "route": route,
        "model": model,
        "cache": "miss",
        "error_type": "" if status == "success" else "upstream_error",
    }


async def _publish(store, process: str, rows) -> None:
    pub = Publisher(store=lambda: store, clock=lambda: NOW, process=process)
    pub.observe(rows)
    await pub.stop()


# --- arithmetic -----------------------------------------------------------------------------


def test_percentile_reads_the_bucket_that_holds_the_rank():
    counts = samples.histogram(samples.merge([{"lat:0": 90}, {"lat:10": 10}]))
    assert samples.percentile(counts, 0.5) <= 5
    assert 600 < samples.percentile(counts, 0.95) <= 1000
    assert samples.percentile([0] * len(counts), 0.5) is None


# --- two processes, merged ------------------------------------------------------------------


def _two_processes_fast_and_slow():
    # Process A: 95 fast requests (20 ms). Process B: 5 slow ones (2,000 ms).
    return [_row(20) for _ in range(95)], [_row(2000, status="error") for _ in range(5)]


def _assert_merged(merged):
    traffic = figures.traffic(merged)
    assert merged["processes"] == 2
    assert traffic["requests_minute"] == 100
    assert traffic["errors_minute"] == 5
    assert traffic["error_rate"] == pytest.approx(0.05)
    # p95 of all 100 requests: rank 95 falls in the fast bucket's upper edge...
    assert traffic["latency_p95_ms"] <= 25
    # ...while the average of the two processes' own p95s would read over 1,000 ms.
    rows_a, rows_b = _two_processes_fast_and_slow()
    own = []
    for rows in (rows_a, rows_b):
        sample: dict = {}
        for row in rows:
            samples.add_row(sample, row)
        own.append(samples.percentile(samples.histogram(sample), 0.95))
    assert sum(own) / 2 > 1000
    # p99 reaches into process B's slow requests: only the merged histogram knows them.
    counts = samples.histogram(merged["minute"])
    assert samples.percentile(counts, 0.99) > 1500
    assert traffic["tokens_in_hour"] == 1000
    assert traffic["routes"] == [{"name": "team/a", "requests": 100}]


async def test_two_processes_merge_in_memory():
    store = MemoryStore(clock=lambda: NOW)
    rows_a, rows_b = _two_processes_fast_and_slow()
    await _publish(store, "proc-a", rows_a)
    await _publish(store, "proc-b", rows_b)
    merged = figures.merged_window(now=NOW, store=store)
    _assert_merged(merged)
    assert len(store.errors()) == 5


@pytest.mark.redis
async def test_two_processes_merge_through_redis():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    prefix = f"atp-test-live-{uuid.uuid4().hex[:8]}"
    store_a = RedisStore(settings.REDIS_URL, prefix)
    store_b = RedisStore(settings.REDIS_URL, prefix)  # another process's client
    reader = RedisStore(settings.REDIS_URL, prefix)
    try:
        rows_a, rows_b = _two_processes_fast_and_slow()
        await _publish(store_a, "proc-a", rows_a)
        await _publish(store_b, "proc-b", rows_b)
        merged = figures.merged_window(now=NOW, store=reader)
        _assert_merged(merged)
        assert len(reader.errors()) == 5
        ttl = reader.client.ttl(f"{prefix}:live:1:{int(NOW) - 10}")
        assert 0 < ttl <= 180
    finally:
        keys = list(reader.client.scan_iter(f"{prefix}:*"))
        if keys:
            reader.client.delete(*keys)


async def test_a_bucket_published_again_replaces_the_process_own_sample():
    store = MemoryStore(clock=lambda: NOW)
    pub = Publisher(store=lambda: store, clock=lambda: NOW, process="proc-a")
    pub.observe([_row(20)])
    await pub.publish()
    pub.observe([_row(20)])  # a late row of the same second
    await pub.stop()
    merged = figures.merged_window(now=NOW, store=store)
    assert figures.traffic(merged)["requests_minute"] == 2


async def test_the_write_behind_flush_hands_its_rows_to_observers():
    written = []
    queue = WriteBehindQueue(written.extend, "test-live")
    seen = []
    queue.observers.append(seen.extend)
    queue.put(_row(20))
    queue.put(_row(30))
    assert seen == []  # nothing on the request's path
    await queue.drain()
    assert len(seen) == 2 and len(written) == 2


def test_the_request_log_queue_feeds_the_publisher():
    assert publisher.observe in request_logs.observers


# --- the page -------------------------------------------------------------------------------


@pytest.fixture
def live_store():
    store = MemoryStore()
    set_store(store)
    figures.clear_cache()
    yield store
    set_store(None)
    figures.clear_cache()


def _seed(store, acme, globex):
    import time

    now = time.time()
    rows = [_row(40, tenant=acme.pk, at=now - 5, model="acme-model") for _ in range(3)]
    rows += [_row(40, tenant=globex.pk, at=now - 5, model="globex-model")]
    rows += [_row(900, status="error", tenant=globex.pk, at=now - 5, model="globex-model")]

    async def go():
        pub = Publisher(store=lambda: store, process="proc-x")
        pub.observe(rows)
        await pub.stop()

    asyncio.run(go())


@pytest.mark.django_db
def test_signed_out_overview_redirects_and_figures_answer_401(client: Client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)
    assert client.get("/overview/figures/").status_code == 401


@pytest.mark.django_db
def test_overview_renders_every_process_figures_for_a_global_viewer(client: Client, live_store):
    acme, globex = (
        TenantFactory(slug="acme", name="Acme"),
        TenantFactory(slug="globex", name="Globex"),
    )
    _seed(live_store, acme, globex)
    viewer = grant_permissions(
        UserFactory(), "routing.view_requestlog", "providers.view_provider", "tenants.view_tenant"
    )
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-figure="traffic.requests_hour" data-format="int">5<' in body
    assert "acme-model" in body and "globex-model" in body
    assert "Globex" in body and "Acme" in body
    assert "upstream_error" in body  # recent errors
    assert "overview-chart-rps" in body and "uPlot.iife.min.js" in body
    assert "<script>" not in body  # CSP: no inline script, data as application/json
    data = client.get("/overview/figures/").json()
    assert data["traffic"]["requests_hour"] == 5
    assert data["costs"]["requests_hour"] == 5


@pytest.mark.django_db
def test_a_tenant_member_sees_only_their_tenant(client: Client, live_store):
    acme, globex = (
        TenantFactory(slug="acme", name="Acme"),
        TenantFactory(slug="globex", name="Globex"),
    )
    _seed(live_store, acme, globex)
    member = UserFactory()
    assign_perm("tenants.view_tenant", member, acme)
    client.force_login(member)
    body = client.get("/").content.decode()
    assert "Acme" in body and "Globex" not in body
    assert "globex-model" not in body and "upstream_error" not in body
    assert 'data-figure="traffic.' not in body  # no global traffic figures
    data = client.get("/overview/figures/").json()
    assert "traffic" not in data and "providers" not in data
    assert data["costs"]["requests_hour"] == 3
    assert [t["name"] for t in data["costs"]["tenants"]] == ["Acme"]
    assert data["errors"] == []


@pytest.mark.django_db
def test_a_user_without_permissions_gets_the_empty_state(client: Client, live_store, staff_user):
    client.force_login(staff_user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"No live figures for your account yet" in response.content
    assert client.get("/overview/figures/").json()["scope"] == {
        "traffic": False,
        "tenants": False,
        "providers": False,
    }


def test_the_hot_path_module_has_no_new_work():
    """settle() still calls only what it called before: the figures come from the flush."""
    import inspect

    from apps.routing.pipeline import settle

    source = inspect.getsource(settle.settle)
    assert "console" not in source and "live" not in source
    assert os.path.exists(settings.BASE_DIR / "static/vendor/uplot/uPlot.iife.min.js")


@pytest.mark.django_db
def test_provider_alerts_only_for_viewers_who_may_see_providers(monkeypatch, live_store):
    down = [
        {
            "name": "p",
            "enabled": True,
            "health": "down",
            "circuits": [{"model": "m", "state": "open", "badge": "open"}],
        }
    ]
    monkeypatch.setattr(figures, "providers", lambda: down)
    traffic_only = figures.ViewerScope(all_tenants=True, tenant_ids=frozenset(), providers=False)
    both = figures.ViewerScope(all_tenants=True, tenant_ids=frozenset(), providers=True)
    assert figures.figures_for(traffic_only)["alerts"] == []
    assert "providers" not in figures.figures_for(traffic_only)
    texts = [a["text"] for a in figures.figures_for(both)["alerts"]]
    assert texts == ["Provider p is down.", "Circuit open for m."]


async def test_minute_buckets_hold_every_second_of_the_minute_published_so_far():
    store = MemoryStore(clock=lambda: NOW)
    pub = Publisher(store=lambda: store, clock=lambda: NOW, process="proc-a")
    pub.observe([_row(20, at=NOW - 10)])
    await pub.publish()
    pub.observe([_row(20, at=NOW - 8), _row(20, at=NOW - 8)])
    await pub.stop()
    merged = figures.merged_window(now=NOW, store=store)
    assert figures.traffic(merged)["requests_hour"] == 3
    assert figures.traffic(merged)["requests_minute"] == 3


async def test_closed_minutes_of_every_process_count_in_the_hour():
    store = MemoryStore(clock=lambda: NOW)
    for process, count in (("proc-a", 3), ("proc-b", 2)):
        pub = Publisher(store=lambda: store, clock=lambda: NOW - 600, process=process)
        pub.observe([_row(20, at=NOW - 600) for _ in range(count)])
        await pub.stop()
    figures.clear_cache()
    merged = figures.merged_window(now=NOW, store=store)
    assert figures.traffic(merged)["requests_hour"] == 5
    assert merged["hour_processes"] == 2 and merged["processes"] == 0
    # Read again: the closed minutes come from the process's sum, with the same figures.
    assert figures.traffic(figures.merged_window(now=NOW, store=store))["requests_hour"] == 5
