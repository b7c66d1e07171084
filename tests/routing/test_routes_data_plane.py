"""Routes through the real ASGI app: decisions, headers, cache, consensus, native endpoints."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apps.audit.writebehind import audit_events
from apps.providers.models import ModelDeployment
from apps.routing import cache
from apps.routing.engine.router import reset_engine
from apps.routing.models import Feedback, RequestLog
from apps.routing.route_services import route_create
from apps.routing.writebehind import feedback as feedback_rows
from apps.routing.writebehind import request_logs
from atp_site.lib import config_version
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"messages": [{"role": "user", "content": "Extract the date from: meeting on 3 May."}]}


@pytest.fixture
def models(gateway):
    """Three simulator models of different price and quality beside sim-fast."""
    for name, price, quality in [
        ("sim-cheap", "0.10", 0.55),
        ("sim-mid", "1.00", 0.75),
        ("sim-best", "10.00", 0.95),
    ]:
        ModelDeployment.objects.create(
            provider=gateway.provider,
            public_name=name,
            upstream_model=f"{name}-1",
            input_price=Decimal(price),
            output_price=Decimal(price) * 4,
            quality_score=quality,
            context_window=32000,
            capabilities=["chat", "streaming", "tools", "json"],
        )
    config_version.bump()
    reset_engine()
    previous = cache.use(None)
    yield gateway
    cache.use(previous)
    reset_engine()
    feedback_rows._take()


async def _rows() -> list[dict]:
    rows = request_logs._take()
    await sync_to_async(request_logs.writer)(rows)
    return rows


async def test_a_route_chooses_a_model_and_explains_why(models):
    resp = await call(
        "POST", "/v1/chat/completions", key=models.key, json={**CHAT, "model": "auto"}
    )
    assert resp.status == 200, resp.body
    assert resp.headers["x-atp-route"] == "auto"
    chosen = resp.headers["x-atp-model"]
    assert chosen in {"sim-fast", "sim-cheap", "sim-mid", "sim-best"}
    assert resp.json()["model"] == chosen
    assert Decimal(resp.headers["x-atp-cost-usd"]) > 0
    row = (await _rows())[-1]
    assert row["route"] == "auto" and row["model"] == chosen
    decision = row["decision"]
    assert decision["model"] == chosen and decision["strategy"] == "learned"
    assert decision["reasoning"] and all(isinstance(r, str) for r in decision["reasoning"])
    assert row["task_cluster"] is not None
    event = audit_events._take()[-1]
    assert event["data"]["route"] == "auto"
    assert event["data"]["route_decision"]["model"] == chosen
    assert event["data"]["route_decision"]["reasoning"] == decision["reasoning"][:8]


async def test_hints_constrain_the_choice(models):
    # Only sim-cheap fits a budget this small for the estimated tokens.
    body = {**CHAT, "model": "atp/high", "max_tokens": 50, "atp": {"max_cost_usd": 0.0001}}
    resp = await call("POST", "/v1/chat/completions", key=models.key, json=body)
    assert resp.status == 200, resp.body
    assert resp.headers["x-atp-model"] == "sim-cheap"
    # A budget nothing fits is a clear 4xx naming the constraint.
    body["atp"] = {"max_cost_usd": 0.000000001}
    resp = await call("POST", "/v1/chat/completions", key=models.key, json=body)
    assert 400 <= resp.status < 500, resp.body
    assert "cost" in resp.json()["error"]["message"].lower()
    bad = await call(
        "POST",
        "/v1/chat/completions",
        key=models.key,
        json={**CHAT, "model": "auto"},
        headers={"X-ATP-Quality": "ultra"},
    )
    assert bad.status == 400 and bad.json()["error"]["param"]
    request_logs._take()


async def test_admin_route_group_with_fallbacks(models):
    await sync_to_async(route_create)(
        name="team/extract",
        candidates=["sim-cheap"],
        fallbacks=["sim-mid"],
        strategy="ordered",
    )
    resp = await call(
        "POST", "/v1/chat/completions", key=models.key, json={**CHAT, "model": "team/extract"}
    )
    assert resp.status == 200, resp.body
    assert resp.headers["x-atp-model"] == "sim-cheap"
    assert resp.headers["x-atp-route"] == "team/extract"
    listed = await call("GET", "/v1/models", key=models.key)
    ids = {m["id"] for m in listed.json()["data"]}
    assert {"auto", "atp/fast", "atp/balanced", "atp/high", "team/extract", "sim-cheap"} <= ids
    route_obj = next(m for m in listed.json()["data"] if m["id"] == "team/extract")
    assert route_obj["owned_by"] == "atp" and route_obj["atp"]["route"] is True
    request_logs._take()


async def test_exact_cache_hits_cost_nothing_and_replay_as_a_stream(models):
    await sync_to_async(route_create)(
        name="team/cached", candidates=["sim-mid"], strategy="ordered", cache_ttl_seconds=60
    )
    body = {**CHAT, "model": "team/cached", "temperature": 0}
    first = await call("POST", "/v1/chat/completions", key=models.key, json=body)
    assert first.status == 200 and first.headers["x-atp-cache"] == "miss"
    await cache.default().drain()
    second = await call("POST", "/v1/chat/completions", key=models.key, json=body)
    assert second.headers["x-atp-cache"] == "hit"
    assert Decimal(second.headers["x-atp-cost-usd"]) == 0
    answer = first.json()["choices"][0]["message"]["content"]
    assert second.json()["choices"][0]["message"]["content"] == answer
    streamed = await call(
        "POST",
        "/v1/chat/completions",
        key=models.key,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert streamed.headers["x-atp-cache"] == "hit"
    import orjson

    frames = [orjson.loads(f) for f in streamed.sse() if f != b"[DONE]"]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in frames if c["choices"])
    assert text == answer
    assert frames[-1]["usage"]["completion_tokens"] > 0
    bypass = await call(
        "POST",
        "/v1/chat/completions",
        key=models.key,
        json=body,
        headers={"Cache-Control": "no-cache"},
    )
    assert bypass.headers["x-atp-cache"] == "bypass"
    rows = await _rows()
    assert [r["cache"] for r in rows] == ["miss", "hit", "hit", "bypass"]
    assert rows[1]["cost_usd"] == 0 and rows[0]["cost_usd"] > 0


async def test_consensus_returns_votes(models):
    body = {**CHAT, "model": "atp/high", "atp": {"consensus": {"n": 3, "strategy": "majority"}}}
    resp = await call("POST", "/v1/chat/completions", key=models.key, json=body)
    assert resp.status == 200, resp.body
    votes = resp.json()["atp"]["consensus"]["votes"]
    assert len(votes) == 3 and sum(v["chosen"] for v in votes) == 1
    chosen = next(v for v in votes if v["chosen"])
    assert resp.headers["x-atp-model"] == chosen["model"]
    one_model = await call(
        "POST",
        "/v1/chat/completions",
        key=models.key,
        json={**CHAT, "model": "sim-mid", "atp": {"consensus": {"n": 2}}},
    )
    assert one_model.status == 400 and one_model.json()["error"]["param"] == "atp.consensus"
    request_logs._take()


async def test_route_endpoint_ranks_without_calling_a_provider(models):
    resp = await call("POST", "/v1/route", key=models.key, json={**CHAT, "model": "atp/fast"})
    assert resp.status == 200, resp.body
    out = resp.json()
    assert out["object"] == "route.decision" and out["route"] == "atp/fast"
    ranked = [r["model"] for r in out["recommendations"]]
    assert set(ranked) == {"sim-fast", "sim-cheap", "sim-mid", "sim-best"}
    [chosen] = [r for r in out["recommendations"] if r["chosen"]]
    assert out["decision"]["model"] == chosen["model"] == resp.headers["x-atp-model"]
    assert all("estimated_cost_usd" in r or "cost_usd" in r for r in out["recommendations"])
    # Nothing was called, so nothing was logged.
    assert request_logs._take() == []
    prompt = await call(
        "POST", "/v1/route", key=models.key, json={"prompt": "hello", "quality": "high"}
    )
    assert prompt.status == 200 and prompt.json()["decision"]["tier"] == "high"
    missing = await call("POST", "/v1/route", key=models.key, json={**CHAT, "model": "nope"})
    assert missing.status == 404


def _check_recommendations(out: dict) -> list[dict]:
    recs = out["recommendations"]
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in recs] == list(range(1, len(recs) + 1))
    for r in recs:
        assert 0 <= r["confidence"] <= 1
        assert r["reasoning"] and all(isinstance(line, str) for line in r["reasoning"])
    assert sum(r["chosen"] for r in recs) == 1
    return recs


@pytest.mark.parametrize("strategy", ["score", "learned"])
async def test_route_recommendations_are_sorted_by_score_each_with_confidence_and_reasons(
    models, strategy
):
    await sync_to_async(route_create)(
        name="team/ranked", strategy=strategy, exploration=False, tier="balanced"
    )
    resp = await call("POST", "/v1/route", key=models.key, json={**CHAT, "model": "team/ranked"})
    assert resp.status == 200, resp.body
    recs = _check_recommendations(resp.json())
    # Without exploration the choice is the best by the strategy's own score.
    assert recs[0]["chosen"] and not recs[0]["explored"]
    assert resp.json()["decision"]["confidence"] == recs[0]["confidence"]
    others = [r["confidence"] for r in recs[1:]]
    assert all(c <= recs[0]["confidence"] for c in others)
    if strategy == "learned":
        assert all("weighted_score" in r for r in recs)


async def test_an_explored_pick_is_flagged_in_its_place_not_first(models):
    await sync_to_async(route_create)(
        name="team/explore", strategy="learned", exploration=True, exploration_rate=1.0
    )
    for _ in range(200):
        resp = await call(
            "POST", "/v1/route", key=models.key, json={**CHAT, "model": "team/explore"}
        )
        out = resp.json()
        if out["decision"]["explored"]:
            break
    else:
        pytest.fail("the route never explored")
    recs = _check_recommendations(out)
    [picked] = [r for r in recs if r["chosen"]]
    assert picked["explored"] is True and picked["rank"] > 1
    assert not any(r["explored"] for r in recs if not r["chosen"])
    assert picked["model"] == out["decision"]["model"] == resp.headers["x-atp-model"]
    assert any("explore" in line for line in picked["reasoning"])


async def test_ask_answers_with_text_cost_and_decision(models):
    resp = await call(
        "POST",
        "/v1/ask",
        key=models.key,
        json={"prompt": "Say hello.", "quality": "fast", "max_cost_usd": 0.5},
    )
    assert resp.status == 200, resp.body
    out = resp.json()
    assert out["object"] == "ask.response" and out["text"]
    assert out["usage"]["total_tokens"] > 0 and Decimal(out["cost_usd"]) > 0
    assert out["decision"]["route"] == "auto" and out["decision"]["tier"] == "fast"
    bad = await call("POST", "/v1/ask", key=models.key, json={"prompt": ""})
    assert bad.status == 400 and bad.json()["error"]["param"] == "prompt"
    unknown = await call("POST", "/v1/ask", key=models.key, json={"prompt": "x", "colour": 1})
    assert unknown.status == 400 and unknown.json()["error"]["param"] == "colour"
    request_logs._take()


async def test_feedback_teaches_the_route_and_is_stored(models):
    resp = await call(
        "POST",
        "/v1/chat/completions",
        key=models.key,
        json={**CHAT, "model": "atp/balanced"},
        headers={"X-Request-Id": "req-rate-me"},
    )
    assert resp.status == 200
    # Let the outcome reach the bandit (it is recorded off the response path).
    import asyncio

    await asyncio.sleep(0.05)
    rated = await call(
        "POST",
        "/v1/feedback",
        key=models.key,
        json={"request_id": "req-rate-me", "score": 0.9, "comment": "good"},
    )
    assert rated.status == 200, rated.body
    out = rated.json()
    assert out["learned"] is True and out["route"] == "atp/balanced"
    assert out["model"] == resp.headers["x-atp-model"]
    # Another tenant cannot rate it.
    from apps.tenants.models import Tenant

    other_tenant = await sync_to_async(Tenant.objects.create)(slug="other", name="Other")
    from apps.tenants.keys import generate_api_key, hash_key, visible_prefix
    from apps.tenants.models import ApiKey

    raw = generate_api_key()
    await sync_to_async(ApiKey.objects.create)(
        tenant=other_tenant, name="k", prefix=visible_prefix(raw), key_hash=hash_key(raw)
    )
    await sync_to_async(config_version.bump)()
    foreign = await call(
        "POST", "/v1/feedback", key=raw, json={"request_id": "req-rate-me", "score": 0.1}
    )
    assert foreign.status == 404
    for bad in [{"request_id": "x", "score": 2}, {"score": 0.5}, {"request_id": "x", "score": "a"}]:
        resp = await call("POST", "/v1/feedback", key=models.key, json=bad)
        assert resp.status == 400, bad
    await _rows()
    await sync_to_async(feedback_rows.writer)(feedback_rows._take())
    stored = await sync_to_async(lambda: list(Feedback.objects.values("request_id", "score")))()
    assert stored == [{"request_id": "req-rate-me", "score": 0.9}]
    assert await sync_to_async(RequestLog.objects.filter(route="atp/balanced").count)() == 1


async def test_routing_overview_page_shows_usage_challengers_and_learning(models):
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient

    from apps.routing.models import BanditArm

    await sync_to_async(route_create)(
        name="team/shadowed",
        candidates=["sim-cheap"],
        strategy="ordered",
        challenger="sim-best",
        challenger_share=1.0,
    )
    resp = await call(
        "POST", "/v1/chat/completions", key=models.key, json={**CHAT, "model": "team/shadowed"}
    )
    assert resp.status == 200
    from apps.routing.pipeline.ensemble import drain_mirrors

    await drain_mirrors()
    await _rows()
    await sync_to_async(BanditArm.objects.create)(
        route="atp/balanced", cluster=3, model="sim-cheap", pulls=10, reward_sum=8
    )
    admin = await sync_to_async(get_user_model().objects.create_superuser)(
        "boss", "boss@example.com", "pw-long-enough-1"
    )
    client = AsyncClient()
    await sync_to_async(client.force_login)(admin)
    page = await client.get("/admin/routing/route/overview/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "team/shadowed" in html and "sim-best" in html  # usage and challenger pair
    assert "atp/balanced" in html and "sim-cheap" in html  # learned arms
    listing = await client.get("/admin/routing/route/")
    assert "/admin/routing/route/overview/" in listing.content.decode()


async def test_messages_endpoint_shares_the_route_cache(models):
    await sync_to_async(route_create)(
        name="team/cached-msgs", candidates=["sim-mid"], strategy="ordered", cache_ttl_seconds=60
    )
    headers = {"anthropic-version": "2023-06-01"}
    body = {
        "model": "team/cached-msgs",
        "max_tokens": 100,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Name three colours."}],
    }
    first = await call("POST", "/v1/messages", key=models.key, json=body, headers=headers)
    assert first.status == 200, first.body
    assert first.headers["x-atp-cache"] == "miss"
    assert first.headers["x-atp-route"] == "team/cached-msgs"
    await cache.default().drain()
    again = await call("POST", "/v1/messages", key=models.key, json=body, headers=headers)
    assert again.headers["x-atp-cache"] == "hit"
    assert again.json()["content"][0]["text"] == first.json()["content"][0]["text"]
    assert again.json()["type"] == "message"
    streamed = await call(
        "POST", "/v1/messages", key=models.key, json={**body, "stream": True}, headers=headers
    )
    assert streamed.headers["x-atp-cache"] == "hit"
    import orjson

    events = [orjson.loads(f) for f in streamed.sse()]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == first.json()["content"][0]["text"]
    rows = await _rows()
    assert [r["cache"] for r in rows] == ["miss", "hit", "hit"]
    assert rows[1]["cost_usd"] == 0
