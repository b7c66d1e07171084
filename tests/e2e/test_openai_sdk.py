"""The official OpenAI SDK against a live ATP: sync, async under concurrency, streaming."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import openai
import pytest

from tests.fakes.openai_server import Script

pytestmark = pytest.mark.live

MESSAGES = [{"role": "user", "content": "Write one line about gateways."}]


@pytest.fixture
def client(live) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live.base_url}/v1", api_key=live.key, max_retries=0, timeout=20
    )


@pytest.fixture
def aclient(live) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{live.base_url}/v1", api_key=live.key, max_retries=0, timeout=30
    )


def test_sync_chat_through_simulator(client, live):
    raw = client.chat.completions.with_raw_response.create(model="sim-fast", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 0
    request_id = raw.headers["x-request-id"]
    cost = Decimal(raw.headers["x-atp-cost-usd"])
    row = live.log_rows([request_id])[request_id]
    assert row[1] == "success" and Decimal(str(row[7])) == cost


def test_sync_chat_through_openai_upstream_passes_parameters(client, live):
    live.openai_upstream.enqueue(
        Script(
            text="Forty-two.",
            prompt_tokens=50,
            cached_tokens=20,
            completion_tokens=7,
            reasoning_tokens=3,
        )
    )
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ],
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=100,
        seed=7,
        stop=["\n\n"],
        user="end-user-1",
        n=1,
        response_format={"type": "text"},
        extra_headers={"x-request-id": "sdk-pass-through"},
    )
    assert completion.choices[0].message.content == "Forty-two."
    assert completion.model == "gpt-test"
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    _, _, sent = live.openai_upstream.requests[-1]
    assert sent["model"] == "gpt-4o-mini"
    for name, value in [
        ("temperature", 0.2),
        ("top_p", 0.9),
        ("max_completion_tokens", 100),
        ("seed", 7),
        ("stop", ["\n\n"]),
        ("user", "end-user-1"),
    ]:
        assert sent[name] == value
    assert sent["messages"][1]["content"][1]["image_url"]["url"] == "https://example.com/a.png"
    row = live.log_rows(["sdk-pass-through"])["sdk-pass-through"]
    # 30 uncached at 0.15, 20 cached at 0.075, 7 output at 0.6 (reasoning priced as output).
    expected = (
        Decimal(30) * Decimal("0.15") + Decimal(20) * Decimal("0.075") + Decimal(7) * Decimal("0.6")
    ) / 10**6
    assert Decimal(str(row[7])) == expected.quantize(Decimal("0.00000001"))
    assert row[5] == 20 and row[6] == 3


def test_tool_calling_round_trip(client, live):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    live.openai_upstream.enqueue(
        Script(tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}])
    )
    first = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, tools=tools, tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert first.choices[0].finish_reason == "tool_calls"
    live.openai_upstream.enqueue(Script(text="It is sunny in Oslo."))
    second = client.chat.completions.create(
        model="gpt-test",
        tools=tools,
        messages=[
            *MESSAGES,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
        ],
    )
    assert second.choices[0].message.content == "It is sunny in Oslo."
    _, _, sent = live.openai_upstream.requests[-1]
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"sky": "clear"}',
    }
    assert sent["tools"] == tools


def test_streaming_with_usage(client, live):
    live.openai_upstream.enqueue(
        Script(text="one two three four five six", chunks=6, prompt_tokens=12, completion_tokens=6)
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "one two three four five six"
    assert usage.prompt_tokens == 12 and usage.completion_tokens == 6


def test_streaming_from_simulator(client):
    stream = client.chat.completions.create(model="sim-fast", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces).strip()


def test_upstream_failure_mid_stream_raises_in_the_sdk(client, live):
    live.openai_upstream.enqueue(Script(text="a b c d e f g h", chunks=8, break_after=3))
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-request-id": "sdk-broken-stream"},
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received  # some chunks arrived before the failure
    row = live.log_rows(["sdk-broken-stream"])["sdk-broken-stream"]
    assert row[1] == "error" and row[4] > 0


def test_simulated_mid_stream_failure_raises_in_the_sdk(client):
    stream = client.chat.completions.create(model="sim-breaks", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_errors_map_to_sdk_exceptions(client, live):
    bad = openai.OpenAI(
        base_url=f"{live.base_url}/v1", api_key="atp_wrong-key-xxxxxxxxxxxx", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="sim-fast", messages=MESSAGES)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="sim-fast", messages=MESSAGES, temperature=5)
    assert info.value.param == "temperature"
    # An upstream that rate-limits every try is the gateway's 429 (the SDK's rate-limit
    # error), with the upstream's Retry-After and the attempts listed.
    live.openai_upstream.enqueue(Script(status=429, retry_after=7))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body["retryable"] is True
    assert limited.value.body["atp"]["attempts"][0]["status"] == 429
    live.openai_upstream.enqueue(Script(status=401))
    with pytest.raises(openai.APIStatusError) as auth:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert auth.value.status_code == 502
    assert "sk-fake" not in auth.value.response.text


def test_upstream_slower_than_first_byte_timeout_gets_504(client, live):
    live.openai_upstream.enqueue(Script(delay=6))  # first_byte timeout is 5 s
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert info.value.status_code == 504


def test_models_and_embeddings(client):
    ids = {m.id for m in client.models.list()}
    assert {"sim-fast", "gpt-test", "claude-test", "embed-test"} <= ids
    result = client.embeddings.create(model="embed-test", input=["hello", "world"])
    assert len(result.data) == 2 and result.usage.prompt_tokens > 0
    result = client.embeddings.create(model="sim-embed", input="hello")
    assert len(result.data[0].embedding) > 0


async def test_hundred_concurrent_async_requests(aclient, live):
    ids = [f"conc-{uuid.uuid4().hex[:12]}" for _ in range(100)]

    async def one(i: int, rid: str):
        model = "sim-fast" if i % 2 else "gpt-test"
        return await aclient.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": f"Request {i}"}],
            extra_headers={"x-request-id": rid},
        )

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i, rid) for i, rid in enumerate(ids))), timeout=60
    )
    assert all(r.choices[0].message.content for r in results)
    rows = live.log_rows(ids)
    assert len(rows) == 100
    assert all(row[1] == "success" for row in rows.values())


async def test_async_streaming(aclient):
    stream = await aclient.chat.completions.create(model="sim-fast", messages=MESSAGES, stream=True)
    text = ""
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text


@pytest.mark.parametrize("model", ["claude-test", "gemini-test", "ollama-test"])
def test_every_provider_protocol_behind_the_openai_api(client, model):
    completion = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=50)
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage.completion_tokens > 0


def test_routes_hints_cache_and_feedback_through_the_sdk(client, live):
    """A route chosen per request, hints through extra_body, a cached replay, a rating."""
    import httpx

    listed = {m.id for m in client.models.list().data}
    assert {"auto", "atp/balanced", "team/sim"} <= listed
    ask = [{"role": "user", "content": "Extract the city from: flight to Lisbon on Monday."}]
    raw = client.chat.completions.with_raw_response.create(
        model="team/sim",
        messages=ask,
        temperature=0,
        extra_body={"atp": {"quality": "balanced", "max_cost_usd": 0.5}},
    )
    first = raw.parse()
    assert raw.headers["x-atp-route"] == "team/sim"
    assert raw.headers["x-atp-model"] in {"sim-cheap", "sim-fast"}
    assert raw.headers["x-atp-cache"] == "miss"
    request_id = raw.headers["x-request-id"]
    # The cache stores in the background; the same deterministic request is then a hit,
    # streamed back like a live answer.
    deadline = __import__("time").monotonic() + 5
    while True:
        again = client.chat.completions.with_raw_response.create(
            model="team/sim", messages=ask, temperature=0, stream=True
        )
        if again.headers["x-atp-cache"] == "hit" or __import__("time").monotonic() > deadline:
            break
    assert again.headers["x-atp-cache"] == "hit"
    text = "".join(c.choices[0].delta.content or "" for c in again.parse() if c.choices)
    assert text == first.choices[0].message.content
    rated = httpx.post(
        f"{live.base_url}/v1/feedback",
        headers={"Authorization": f"Bearer {live.key}"},
        json={"request_id": request_id, "score": 1.0},
        timeout=10,
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["route"] == "team/sim"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="team/sim", messages=ask, extra_body={"atp": {"quality": "ultra"}}
        )
    assert err.value.body["param"]
