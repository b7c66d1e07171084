"""Rate limits, budgets and the ledger on the data plane, in process (memory counters when
embedded, the shared Redis counters when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.db.models import Sum

from apps.audit.models import AuditEvent
from apps.costs import admission, alerts
from apps.costs import services as costs
from apps.costs.models import BudgetAlert, Scope, UsageRecord
from apps.providers import tokens
from apps.providers.models import ModelDeployment
from apps.routing.models import RequestLog
from apps.tenants import services as tenants
from apps.tenants.models import ApiKey, Project
from tests.routing.conftest import call, flush_logs

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 20}


@pytest.fixture(autouse=True)
def _fresh_counters():
    admission.set_counters(None)
    yield
    admission.set_counters(None)


async def settled() -> None:
    """Settlements, alerts and queued rows are behind the response: wait for them."""
    await admission.drain()
    await sync_to_async(alerts.wait_for_pending)()
    await flush_logs()  # the ledger's rows are written with the request log's


def limit(**fields):
    return sync_to_async(costs.rate_limit_create)(**fields)


async def chat(key: str, body=None, path="/v1/chat/completions", **kw):
    return await call("POST", path, json=body or CHAT, key=key, **kw)


async def test_requests_per_minute_refuses_with_openai_error_headers_and_retry_after(gateway):
    await limit(scope=Scope.KEY, api_key=gateway.api_key, requests_per_minute=2)
    first = await chat(gateway.key)
    assert first.status == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert (await chat(gateway.key)).headers["x-ratelimit-remaining-requests"] == "0"
    refused = await chat(gateway.key)
    assert refused.status == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "requests per minute of the API key 'default'" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    await settled()
    log = await RequestLog.objects.aget(request_id=refused.headers["x-request-id"])
    assert log.http_status == 429 and log.error_type == "rate_limit_exceeded"


async def test_the_tightest_level_wins(gateway):
    project = await sync_to_async(tenants.project_create)(tenant=gateway.tenant, slug="web")
    await ApiKey.objects.filter(pk=gateway.api_key.pk).aupdate(project=project)
    await limit(scope=Scope.TENANT, tenant=gateway.tenant, requests_per_minute=50)
    await limit(scope=Scope.PROJECT, project=project, requests_per_minute=3)
    await limit(scope=Scope.KEY, api_key=gateway.api_key, requests_per_minute=10)
    statuses = [(await chat(gateway.key)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    second_key = await sync_to_async(gateway.add_key)(project=project)
    # The project's counter is shared by its keys.
    refused = await chat(second_key)
    assert refused.status == 429 and "project 'web'" in refused.json()["error"]["message"]


async def test_plan_defaults_and_a_plan_override(gateway):
    await sync_to_async(tenants.tenant_update)(tenant=gateway.tenant, plan="free")
    resp = await chat(gateway.key)
    assert resp.headers["x-ratelimit-limit-requests"] == "100"
    # The plan's own row replaces its default: one request a minute, already used.
    await limit(scope=Scope.PLAN, plan="free", requests_per_minute=1)
    refused = await chat(gateway.key)
    assert refused.status == 429 and "plan 'free'" in refused.json()["error"]["message"]
    # A key's own plan replaces the tenant's.
    enterprise = await sync_to_async(gateway.add_key)(plan="enterprise")
    assert (await chat(enterprise)).headers["x-ratelimit-limit-requests"] == "100000"


async def test_no_limits_no_headers_and_no_counting(gateway):
    resp = await chat(gateway.key)
    assert resp.status == 200
    assert not any(h.startswith("x-ratelimit") for h in resp.headers)


async def test_a_refusal_never_comes_from_the_quick_estimate(gateway):
    # English prose: the quick estimate is about twice the exact count.
    prose = {**CHAT, "max_tokens": 10, "messages": [{"role": "user", "content": "Hello " * 60}]}
    exact = tokens.estimate_prompt_tokens(prose)
    assert tokens.quick_prompt_estimate(prose) > exact + 20
    await limit(scope=Scope.KEY, api_key=gateway.api_key, tokens_per_minute=exact + 20)
    resp = await chat(gateway.key, prose)
    assert resp.status == 200, resp.text
    # Admitted at the exact count once the estimate was refused.
    assert int(resp.headers["x-ratelimit-remaining-tokens"]) == 20 - 10
    await settled()
    refused = await chat(gateway.key, {**prose, "max_tokens": 30})
    assert refused.status == 429


async def test_tokens_count_the_estimate_and_max_output_then_correct_to_actual(gateway):
    await limit(scope=Scope.KEY, api_key=gateway.api_key, tokens_per_minute=1000)
    first = await chat(gateway.key, {**CHAT, "max_tokens": 500})
    assert first.status == 200
    usage = first.json()["usage"]
    reserved = 1000 - int(first.headers["x-ratelimit-remaining-tokens"])
    # The prompt's quick estimate (never under the exact count) plus the max output.
    estimate = tokens.quick_prompt_estimate({**CHAT, "max_tokens": 500})
    assert reserved == 500 + estimate and estimate >= usage["prompt_tokens"]
    await settled()
    second = await chat(gateway.key, {**CHAT, "max_tokens": 1})
    used_before_second = 1000 - int(second.headers["x-ratelimit-remaining-tokens"]) - (1 + estimate)
    # Corrected to what the first request used, not what it reserved.
    assert abs(used_before_second - usage["total_tokens"]) <= 2
    too_big = await chat(gateway.key, {**CHAT, "max_tokens": 5000})
    assert too_big.status == 429
    error = too_big.json()["error"]
    assert "Lower max_tokens" in error["message"] and error["retryable"] is False


async def test_concurrency_slots_are_released_after_each_request(gateway):
    await limit(scope=Scope.KEY, api_key=gateway.api_key, max_concurrent=1)
    for _ in range(3):
        assert (await chat(gateway.key)).status == 200
        await settled()
    body = {**CHAT, "stream": True}
    for _ in range(2):
        resp = await chat(gateway.key, body)
        assert resp.status == 200 and resp.sse()[-1] == b"[DONE]"
        await settled()


async def test_anthropic_endpoint_refuses_in_anthropic_shape(gateway):
    await limit(scope=Scope.TENANT, tenant=gateway.tenant, requests_per_minute=1)
    body = {"model": "sim-fast", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}
    assert (await chat(gateway.key, body, path="/v1/messages")).status == 200
    refused = await chat(gateway.key, body, path="/v1/messages")
    assert refused.status == 429
    out = refused.json()
    assert out["type"] == "error" and out["error"]["type"] == "rate_limit_error"
    assert "tenant 'acme'" in out["error"]["message"]
    assert "retry-after" in refused.headers


async def test_embeddings_count_against_the_limits(gateway):
    await limit(scope=Scope.KEY, api_key=gateway.api_key, requests_per_minute=1)
    body = {"model": "sim-embed", "input": "hello"}
    assert (await call("POST", "/v1/embeddings", json=body, key=gateway.key)).status == 200
    assert (await call("POST", "/v1/embeddings", json=body, key=gateway.key)).status == 429


def budget(**fields):
    return sync_to_async(costs.budget_create)(**fields)


async def test_a_spent_budget_blocks_with_budget_exceeded_and_no_retry(gateway):
    # Each request may cost up to (prompt + 20 output tokens) at $1/$2 per million.
    await budget(
        scope=Scope.TENANT,
        tenant=gateway.tenant,
        name="daily",
        period="daily",
        limit_usd=Decimal("0.0002"),
    )
    statuses = []
    for _ in range(8):
        resp = await chat(gateway.key)
        statuses.append(resp.status)
        await settled()
        if resp.status == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    error = resp.json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert resp.headers["x-should-retry"] == "false"
    assert 0 < int(resp.headers["retry-after"]) <= 86_400
    spent = (await UsageRecord.objects.aaggregate(s=Sum("cost_usd")))["s"]
    assert spent <= Decimal("0.0002")


async def test_a_downgrading_budget_moves_requests_to_the_cheaper_model(gateway):
    await ModelDeployment.objects.acreate(
        provider=gateway.provider,
        public_name="sim-cheap",
        upstream_model="sim-cheap-1",
        input_price=Decimal("0"),
        output_price=Decimal("0"),
        capabilities=["chat", "streaming"],
    )
    await budget(
        scope=Scope.KEY,
        api_key=gateway.api_key,
        name="tiny",
        limit_usd=Decimal("0"),
        action="downgrade",
        downgrade_to="sim-cheap",
    )
    resp = await chat(gateway.key)
    assert resp.status == 200
    assert resp.json()["model"] == "sim-cheap"
    assert resp.headers["x-atp-budget-downgrade"] == "tiny"


async def test_alerts_are_recorded_audited_and_sent_once_per_threshold(
    gateway, settings, eager_jobs
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    await sync_to_async(costs.notifier_create)(
        name="finance", kind="email", tenant=gateway.tenant, target="finance@example.com"
    )
    await budget(
        scope=Scope.TENANT,
        tenant=gateway.tenant,
        name="alerting",
        action="alert",
        limit_usd=Decimal("0.0001"),
        thresholds=[50, 100],
    )
    for _ in range(6):
        assert (await chat(gateway.key)).status == 200  # alert-only never blocks
        await settled()
    marks = sorted([a.threshold async for a in BudgetAlert.objects.all()])
    assert marks == [50.0, 100.0]
    events = [e async for e in AuditEvent.objects.filter(event_type="budget.threshold_crossed")]
    assert len(events) == 2
    assert len(mail.outbox) == 2
    assert "alerting" in mail.outbox[0].subject


async def test_the_ledger_reconciles_with_the_request_log_and_touches_last_used(gateway):
    for _ in range(3):
        await chat(gateway.key)
    await chat(gateway.key, {**CHAT, "model": "nope"})  # an error costs nothing
    await settled()
    logged = (await RequestLog.objects.aaggregate(s=Sum("cost_usd")))["s"]
    booked = (await UsageRecord.objects.aaggregate(s=Sum("cost_usd")))["s"]
    assert booked == logged and booked > 0
    assert await UsageRecord.objects.acount() == 3
    key = await ApiKey.objects.aget(pk=gateway.api_key.pk)
    assert key.last_used_at is not None


async def test_rotation_grace_keeps_the_old_key_working_until_it_ends(gateway):
    api_key = await ApiKey.objects.select_related("tenant").aget(pk=gateway.api_key.pk)
    _, new_raw = await sync_to_async(tenants.api_key_rotate)(api_key=api_key, grace_seconds=2)
    assert (await chat(gateway.key)).status == 200
    assert (await chat(new_raw)).status == 200
    event = await AuditEvent.objects.aget(event_type="api_key.rotated")
    assert event.data["grace_until"]
    await asyncio.sleep(2.1)
    gone = await chat(gateway.key)
    assert gone.status == 401 and "grace period has ended" in gone.json()["error"]["message"]
    assert (await chat(new_raw)).status == 200


async def test_revoking_a_key_in_its_grace_period_ends_it(gateway):
    api_key = await ApiKey.objects.select_related("tenant").aget(pk=gateway.api_key.pk)
    await sync_to_async(tenants.api_key_rotate)(api_key=api_key, grace_seconds=600)
    assert (await chat(gateway.key)).status == 200
    await sync_to_async(tenants.api_key_revoke)(api_key=await ApiKey.objects.aget(pk=api_key.pk))
    assert (await chat(gateway.key)).status == 401


async def test_overload_control_sheds_lower_priorities_first(gateway, settings):
    from apps.costs.overload import gate

    settings.ATP_OVERLOAD_MAX_IN_FLIGHT = 10
    free = await sync_to_async(gateway.add_key)(plan="free")
    enterprise = await sync_to_async(gateway.add_key)(plan="enterprise")
    gate.in_flight = 8  # 8 requests already in flight in this process
    try:
        # Bronze's share (70% of the window) is in use: 429, the window itself is not full.
        shed = await chat(free)
        assert shed.status == 429 and shed.json()["error"]["code"] == "tier_share_exhausted"
        assert shed.headers["retry-after"] == "1"
        assert (await chat(enterprise)).status == 200
        assert gate.in_flight == 8  # the slot was given back
        gate.in_flight = 10  # the whole window: 503 for every tier
        full = await chat(enterprise)
        assert full.status == 503 and full.json()["error"]["code"] == "overloaded"
        assert full.headers["retry-after"] == "1"
    finally:
        gate.in_flight = 0


def test_the_window_shrinks_on_a_late_loop_and_grows_while_used(settings):
    from apps.costs.overload import Gate, Overloaded

    settings.ATP_OVERLOAD_MAX_IN_FLIGHT = 1000
    settings.ATP_OVERLOAD_MIN_IN_FLIGHT = 50
    settings.ATP_OVERLOAD_TARGET_LAG_MS = 50
    settings.ATP_OVERLOAD_INCREASE = 8
    g = Gate()
    assert g.capacity() == 1000  # no controller yet: the maximum
    g.adjust(0.200)  # 200 ms late: a quarter off
    assert g.window == 750
    for _ in range(30):
        g.adjust(0.200)
    assert g.window == 50  # never below the minimum
    g.adjust(0.010)  # on time but idle: stays
    assert g.window == 50
    g.in_flight = 45  # on time and the window used: grows additively
    g.adjust(0.010)
    assert g.window == 58
    g.in_flight = 58
    for _ in range(5):
        g.adjust(0.001)
    assert g.window == 74  # it stops growing once less than 80% of it is used
    for _ in range(500):
        g.in_flight = int(g.window)  # demand follows the window
        g.adjust(0.001)
    assert g.window == 1000  # never above the maximum
    g.window, g.in_flight = 60, 60
    with pytest.raises(Overloaded):
        g.enter(0)
    assert g.shed == 1
    settings.ATP_OVERLOAD_MAX_IN_FLIGHT = 0  # no control at all
    g.adjust(5.0)
    assert g.capacity() == 0 and g.window is None
    g.enter(2)
    assert g.in_flight == 61


async def test_project_keys_are_in_the_project_scope_only(gateway):
    project = await Project.objects.acreate(tenant=gateway.tenant, slug="p", name="p")
    other = await sync_to_async(gateway.add_key)(project=project)
    await limit(scope=Scope.PROJECT, project=project, requests_per_minute=1)
    assert (await chat(other)).status == 200
    assert (await chat(other)).status == 429
    assert (await chat(gateway.key)).status == 200  # not in the project


async def test_the_websocket_endpoint_applies_the_same_limits(gateway):
    import orjson
    from channels.testing import WebsocketCommunicator

    from atp_site.asgi import application

    await limit(scope=Scope.KEY, api_key=gateway.api_key, requests_per_minute=1)
    comm = WebsocketCommunicator(
        application, "/v1/realtime", headers=[(b"authorization", f"Bearer {gateway.key}".encode())]
    )
    connected, _ = await comm.connect()
    assert connected
    assert orjson.loads(await comm.receive_from(timeout=10))["type"] == "ready"
    outcomes = {}
    for cid in ("one", "two"):
        request = {"type": "request", "id": cid, "body": CHAT}
        await comm.send_to(text_data=orjson.dumps(request).decode())
        while True:
            message = orjson.loads(await comm.receive_from(timeout=10))
            if message["type"] in ("done", "error"):
                outcomes[cid] = message
                break
    assert outcomes["one"]["type"] == "done"
    refused = outcomes["two"]
    assert refused["type"] == "error" and refused["error"]["code"] == "rate_limit_exceeded"
    await comm.disconnect()


async def test_metrics_count_limit_rejections_by_kind_and_level(gateway, settings):
    from django.test import Client

    settings.ATP_METRICS_TOKEN = ""
    before = admission.stats.refused[("requests", "tenant")]
    await limit(scope=Scope.TENANT, tenant=gateway.tenant, requests_per_minute=1)
    await chat(gateway.key)
    assert (await chat(gateway.key)).status == 429
    assert admission.stats.refused[("requests", "tenant")] == before + 1
    page = await sync_to_async(Client().get)("/metrics")
    text = page.content.decode()
    assert 'atp_limit_rejections_total{level="tenant",limit="requests"}' in text
    assert "atp_in_flight" in text and "atp_overload_shed_total" in text


async def test_failed_requests_release_their_slots_and_reservations(gateway, settings):
    settings.ATP_RETRY_MAX_ATTEMPTS = 1
    settings.ATP_BREAKER_ENABLED = False
    from apps.providers.models import Provider

    broken = await Provider.objects.acreate(
        name="broken", kind="simulator", options={"failure_rate": 1}
    )
    await ModelDeployment.objects.acreate(
        provider=broken,
        public_name="sim-broken",
        upstream_model="sim-broken",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        capabilities=["chat"],
    )
    await limit(scope=Scope.KEY, api_key=gateway.api_key, max_concurrent=1)
    await budget(
        scope=Scope.KEY, api_key=gateway.api_key, name="tight", limit_usd=Decimal("0.0001")
    )
    for _ in range(3):
        failed = await chat(gateway.key, {**CHAT, "model": "sim-broken"})
        assert failed.status >= 500
        await settled()
    # Neither the slot nor the reservation of a failed request is kept.
    assert (await chat(gateway.key)).status == 200
