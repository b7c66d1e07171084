"""Money in /v1 response bodies is a JSON number everywhere; headers keep decimal text."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.providers.models import ModelDeployment
from apps.routing import cache
from apps.routing.engine.router import reset_engine
from apps.routing.pipeline.settle import usd_number
from apps.routing.route_services import route_create
from apps.routing.writebehind import request_logs
from atp_site.lib import config_version
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"messages": [{"role": "user", "content": "Name a colour of the sky."}]}


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.fixture
def priced(gateway):
    for name, price, quality in [("sim-cheap", "0.10", 0.55), ("sim-best", "10.00", 0.95)]:
        ModelDeployment.objects.create(
            provider=gateway.provider,
            public_name=name,
            upstream_model=f"{name}-1",
            input_price=Decimal(price),
            output_price=Decimal(price) * 4,
            quality_score=quality,
            capabilities=["chat", "streaming"],
        )
    config_version.bump()
    reset_engine()
    previous = cache.use(None)
    yield gateway
    cache.use(previous)
    reset_engine()
    request_logs._take()


def test_usd_number_rounds_to_the_ledger_precision():
    assert usd_number(Decimal("0.000012345")) == 0.00001235
    assert usd_number(Decimal("1.5")) == 1.5
    assert str(usd_number(Decimal("-0.000000001"))) == "0.0"


async def test_ask_reports_cost_as_a_number_and_the_header_as_decimal_text(priced):
    resp = await call("POST", "/v1/ask", key=priced.key, json={"prompt": "Say hello."})
    assert resp.status == 200, resp.body
    out = resp.json()
    assert is_number(out["cost_usd"]) and out["cost_usd"] > 0
    header = resp.headers["x-atp-cost-usd"]
    assert Decimal(header) == Decimal(str(out["cost_usd"])).quantize(Decimal(header))
    assert all(is_number(r["estimated_cost_usd"]) for r in out["decision"]["ranking"])


async def test_route_recommendations_carry_numbers(priced):
    resp = await call("POST", "/v1/route", key=priced.key, json={**CHAT, "model": "auto"})
    out = resp.json()
    assert is_number(out["decision"]["estimated_cost_usd"])
    assert all(is_number(r["estimated_cost_usd"]) for r in out["recommendations"])


async def test_streamed_usage_chunk_carries_the_cost_as_a_number(priced):
    resp = await call(
        "POST",
        "/v1/chat/completions",
        key=priced.key,
        json={
            **CHAT,
            "model": "sim-best",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    frames = [orjson.loads(f) for f in resp.sse() if f != b"[DONE]"]
    cost = frames[-1]["atp"]["cost_usd"]
    assert is_number(cost) and cost > 0
    row = request_logs._take()[-1]
    assert usd_number(row["cost_usd"]) == cost


async def test_consensus_costs_are_numbers(priced):
    body = {**CHAT, "model": "auto", "atp": {"consensus": {"n": 2, "strategy": "majority"}}}
    resp = await call("POST", "/v1/chat/completions", key=priced.key, json=body)
    assert resp.status == 200, resp.body
    atp = resp.json()["atp"]
    assert is_number(atp["cost_usd"]) and atp["cost_usd"] > 0
    votes = atp["consensus"]["votes"]
    assert all(is_number(v["cost_usd"]) for v in votes)
    assert sum(v["cost_usd"] for v in votes) == pytest.approx(atp["cost_usd"])
    streamed = await call(
        "POST",
        "/v1/chat/completions",
        key=priced.key,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    frames = [orjson.loads(f) for f in streamed.sse() if f != b"[DONE]"]
    assert all(is_number(f["atp"]["cost_usd"]) for f in frames if "atp" in f)


async def test_a_cached_answer_replays_a_zero_cost_number(priced):
    await sync_to_async(route_create)(
        name="team/cached", candidates=["sim-cheap"], strategy="ordered", cache_ttl_seconds=60
    )
    body = {**CHAT, "model": "team/cached", "temperature": 0}
    await call("POST", "/v1/chat/completions", key=priced.key, json=body)
    await cache.default().drain()
    hit = await call(
        "POST",
        "/v1/chat/completions",
        key=priced.key,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert hit.headers["x-atp-cache"] == "hit" and hit.headers["x-atp-cost-usd"] == "0.00000000"
    frames = [orjson.loads(f) for f in hit.sse() if f != b"[DONE]"]
    assert frames[-1]["atp"]["cost_usd"] == 0 and is_number(frames[-1]["atp"]["cost_usd"])


async def test_realtime_done_frame_carries_the_cost_as_a_number(priced):
    from atp_site.asgi import application

    comm = WebsocketCommunicator(
        application, "/v1/realtime", headers=[(b"authorization", f"Bearer {priced.key}".encode())]
    )
    connected, _ = await comm.connect()
    assert connected
    assert orjson.loads(await comm.receive_from(timeout=10))["type"] == "ready"
    request = {"type": "request", "id": "c1", "body": {**CHAT, "model": "sim-best"}}
    await comm.send_to(text_data=orjson.dumps(request).decode())
    while True:
        message = orjson.loads(await comm.receive_from(timeout=10))
        if message["type"] != "chunk":
            break
    await comm.disconnect()
    assert message["type"] == "done", message
    assert is_number(message["cost_usd"]) and message["cost_usd"] > 0
