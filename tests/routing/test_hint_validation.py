"""Every `atp` hint and X-ATP-* header is validated on every request, routed or not."""

from __future__ import annotations

import pytest

from apps.routing.engine.hints import explicit_hints
from apps.routing.writebehind import request_logs
from atp_site.lib.errors import InvalidRequest
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Hello there"}]
CHAT = {"model": "sim-fast", "messages": MESSAGES}


@pytest.fixture(autouse=True)
def _forget_rows():
    yield
    request_logs._take()


@pytest.mark.parametrize(
    ("atp", "param"),
    [
        ({"max_cost_usd": "abc"}, "atp.max_cost_usd"),
        ({"max_cost_usd": -1}, "atp.max_cost_usd"),
        ({"quality": "ultra"}, "atp.quality"),
        ({"latency_slo_ms": [1]}, "atp.latency_slo_ms"),
        ({"region": 5}, "atp.region"),
        ({"region": ["eu", [["nested"]]]}, "atp.region"),
        ({"required_capabilities": ["teleport"]}, "atp.required_capabilities"),
        ({"carbon_aware": "maybe"}, "atp.carbon_aware"),
        ({"cache": "yes"}, "atp.cache"),
        ({"max_cost": 0.5}, "atp.max_cost"),  # a misspelt hint is not silently ignored
        ({"consensus": {"n": 99}}, "atp.consensus.n"),
    ],
)
async def test_a_bad_hint_is_a_400_naming_it_even_for_a_plain_model(gateway, atp, param):
    resp = await call("POST", "/v1/chat/completions", json={**CHAT, "atp": atp}, key=gateway.key)
    assert resp.status == 400, resp.body
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-ATP-Max-Cost-USD", "abc"),
        ("X-ATP-Quality", "ultra"),
        ("X-ATP-Cache", "maybe"),
        ("X-ATP-Quallity", "fast"),  # no such header
    ],
)
async def test_a_bad_or_unknown_hint_header_is_a_400_naming_it(gateway, header, value):
    resp = await call(
        "POST", "/v1/chat/completions", json=CHAT, key=gateway.key, headers={header: value}
    )
    assert resp.status == 400, resp.body
    assert resp.json()["error"]["param"].lower() == header.lower()


async def test_good_hints_on_a_plain_model_are_accepted(gateway):
    from asgiref.sync import sync_to_async

    from apps.providers.models import ModelDeployment
    from apps.routing.snapshot import holder

    # A region hint binds a model name too: the model must be served there.
    await sync_to_async(
        ModelDeployment.objects.filter(public_name="sim-fast").update, thread_sensitive=True
    )(region="us")
    holder.invalidate()
    atp = {"max_cost_usd": "0.5", "quality": "fast", "cache": False, "region": ["us"]}
    resp = await call(
        "POST",
        "/v1/chat/completions",
        json={**CHAT, "atp": atp},
        key=gateway.key,
        headers={"X-ATP-Carbon-Aware": "true", "X-ATP-Cache": "off"},
    )
    assert resp.status == 200, resp.body


async def test_every_endpoint_that_takes_hints_validates_them(gateway):
    embed = await call(
        "POST",
        "/v1/embeddings",
        json={"model": "sim-embed", "input": "hi", "atp": {"max_cost_usd": "abc"}},
        key=gateway.key,
    )
    assert embed.status == 400 and embed.json()["error"]["param"] == "atp.max_cost_usd"
    ask = await call(
        "POST",
        "/v1/ask",
        json={"prompt": "hi", "model": "sim-fast", "max_cost_usd": "abc"},
        key=gateway.key,
    )
    assert ask.status == 400 and ask.json()["error"]["param"] == "atp.max_cost_usd"
    messages = await call(
        "POST",
        "/v1/messages",
        json={"model": "sim-fast", "max_tokens": 5, "messages": MESSAGES, "atp": {"x": 1}},
        key=gateway.key,
    )
    assert messages.status == 400
    assert messages.json()["error"]["param"] == "atp.x"
    assert messages.json()["type"] == "error"


def test_explicit_hints_reads_body_and_headers():
    hints = explicit_hints(
        {"atp": {"quality": "high", "cache": True}},
        {b"x-atp-max-cost-usd": b"0.25", b"x-atp-cache": b"false"},
    )
    assert hints["quality"] == ("high", "body")
    assert hints["max_cost_usd"] == (0.25, "header")
    assert hints["cache"] == (True, "body")  # the body wins
    with pytest.raises(InvalidRequest) as err:
        explicit_hints({"atp": {"cache": 1}}, {})
    assert err.value.param == "atp.cache"
