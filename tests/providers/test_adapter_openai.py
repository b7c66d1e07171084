"""The OpenAI adapter against a fake OpenAI API over loopback HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Target, Usage
from apps.providers.adapters.openai import OpenAIAdapter
from apps.providers.exceptions import UpstreamError, UpstreamTimeout
from apps.providers.http import close_sessions
from tests.fakes.openai_server import FakeOpenAI, Script

pytestmark = pytest.mark.timeout(20)

KEY = "sk-fake-test-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server
    await close_sessions()


def make_target(base_url: str, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "provider_id": "prov-1",
        "provider_name": "openai-main",
        "kind": "openai",
        "base_url": base_url,
        "upstream_model": "gpt-4o-mini",
        "api_key": KEY,
        "connect_timeout": 2.0,
        "first_byte_timeout": 5.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return Target(**values)


def chat_body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "alias-chosen-by-caller", "messages": [{"role": "user", "content": text}]} | (
        extra
    )


async def collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_registry_serves_openai_and_compatible_kinds():
    assert isinstance(get_adapter("openai"), OpenAIAdapter)
    assert isinstance(get_adapter("openai_compatible"), OpenAIAdapter)


async def test_plain_chat_passes_the_body_through_with_the_upstream_model(fake):
    body = chat_body(
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        seed=7,
        user="u-42",
        stop=["\n\n"],
        stream=False,
        atp={"route": "cheapest"},
    )
    original = orjson.dumps(body)
    target = make_target(
        fake.base_url,
        options={"organization": "org-123", "headers": {"x-extra": "yes"}},
    )

    result = await OpenAIAdapter().chat(target, body)

    assert result.response["object"] == "chat.completion"
    assert result.response["choices"][0]["message"]["content"] == "You said: Hello there"
    assert result.usage == Usage(input_tokens=2, output_tokens=4)
    path, headers, sent = fake.requests[-1]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-123"
    assert headers["x-extra"] == "yes"
    expected = {k: v for k, v in body.items() if k not in ("stream", "atp")}
    assert sent == expected | {"model": "gpt-4o-mini"}
    # A fallback may resend the same body elsewhere, so it must come back untouched.
    assert orjson.dumps(body) == original


async def test_no_authorization_header_without_a_key():
    async with FakeOpenAI(api_key=None) as server:
        result = await OpenAIAdapter().chat(make_target(server.base_url, api_key=""), chat_body())
        assert result.response["choices"][0]["finish_reason"] == "stop"
        assert "authorization" not in server.requests[-1][1]
    await close_sessions()


async def test_tool_call_round_trip(fake):
    adapter = OpenAIAdapter()
    target = make_target(fake.base_url)
    fake.enqueue(
        Script(
            tool_calls=[{"id": "call_abc", "name": "get_weather", "arguments": {"city": "Oslo"}}]
        )
    )
    body = chat_body("Weather in Oslo?", tools=[WEATHER_TOOL], tool_choice="auto")

    first = await adapter.chat(target, body)

    choice = first.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert fake.bodies("/chat/completions")[-1]["tools"] == [WEATHER_TOOL]

    fake.enqueue(Script(text="It is 4 degrees in Oslo."))
    follow_up = dict(body)
    follow_up["messages"] = [
        *body["messages"],
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": '{"celsius": 4}'},
    ]
    second = await adapter.chat(target, follow_up)

    assert second.response["choices"][0]["message"]["content"] == "It is 4 degrees in Oslo."
    sent = fake.bodies("/chat/completions")[-1]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_abc"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_abc", "content": '{"celsius": 4}'}


async def test_tool_result_for_an_unknown_call_is_a_400(fake):
    body = chat_body(
        "x",
        messages=[
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_missing", "content": "{}"},
        ],
    )
    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(make_target(fake.base_url), body)
    assert caught.value.status == 400
    assert "must be a response to a preceeding message" in caught.value.message


async def test_multimodal_parts_pass_through_untouched(fake):
    parts = [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    body = {"model": "m", "messages": [{"role": "user", "content": parts}]}

    result = await OpenAIAdapter().chat(make_target(fake.base_url), body)

    assert result.response["choices"][0]["message"]["content"].startswith("You said: What is")
    assert fake.bodies()[-1]["messages"][0]["content"] == parts


async def test_usage_maps_cached_and_reasoning_tokens(fake):
    fake.enqueue(
        Script(
            text="42",
            prompt_tokens=1200,
            completion_tokens=300,
            cached_tokens=1024,
            reasoning_tokens=256,
        )
    )
    result = await OpenAIAdapter().chat(make_target(fake.base_url), chat_body())

    assert result.usage == Usage(
        input_tokens=1200, output_tokens=300, cached_input_tokens=1024, reasoning_tokens=256
    )
    assert result.response["usage"]["prompt_tokens_details"]["cached_tokens"] == 1024


async def test_stream_yields_every_chunk_then_a_usage_chunk(fake):
    fake.enqueue(Script(text="one two three four five six", chunks=3, cached_tokens=1))
    body = chat_body(stream=True, stream_options={"include_obfuscation": False})

    chunks = await collect(OpenAIAdapter().chat_stream(make_target(fake.base_url), body))

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three four five six"
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert Usage.from_openai(chunks[-1]["usage"]) == Usage(
        input_tokens=2, output_tokens=6, cached_input_tokens=1
    )
    sent = fake.bodies()[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert sent["model"] == "gpt-4o-mini"


async def test_stream_of_tool_call_fragments(fake):
    fake.enqueue(
        Script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"}}], chunks=4)
    )
    body = chat_body("Weather?", stream=True, tools=[WEATHER_TOOL])

    chunks = await collect(OpenAIAdapter().chat_stream(make_target(fake.base_url), body))

    fragments = [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert fragments[0]["function"]["name"] == "get_weather"
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert orjson.loads(arguments) == {"city": "Lima"}
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_usage_can_be_turned_off_for_servers_that_refuse_it():
    async with FakeOpenAI(api_key=None) as server:
        target = make_target(
            server.base_url, kind="openai_compatible", options={"stream_usage": False}
        )
        chunks = await collect(OpenAIAdapter().chat_stream(target, chat_body(stream=True)))
        assert "stream_options" not in server.bodies()[-1]
    await close_sessions()

    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


async def test_stream_without_usage_still_ends_cleanly(fake):
    fake.enqueue(Script(text="short answer", include_usage=False))

    chunks = await collect(
        OpenAIAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
    )

    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_connection_dropped_mid_stream_raises(fake):
    fake.enqueue(Script(text="a b c d e f", break_after=3, break_mode="close"))
    seen: list[dict[str, Any]] = []

    with pytest.raises(UpstreamError) as caught:
        async for chunk in OpenAIAdapter().chat_stream(
            make_target(fake.base_url), chat_body(stream=True)
        ):
            seen.append(chunk)

    assert len(seen) == 3
    assert caught.value.status == 502
    assert caught.value.retryable


async def test_stream_ending_without_done_raises(fake):
    fake.enqueue(Script(text="a b c d", break_after=2, break_mode="eof"))

    with pytest.raises(UpstreamError, match="ended the stream early"):
        await collect(
            OpenAIAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )


async def test_error_event_inside_the_stream_raises(fake):
    fake.enqueue(Script(text="a b c", break_after=2, stream_error="model crashed"))

    with pytest.raises(UpstreamError, match="model crashed") as caught:
        await collect(
            OpenAIAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )
    assert caught.value.code == "upstream_stream_error"


async def test_rejected_key_is_502_and_never_echoed(fake):
    secret = "sk-live-this-must-not-leak-123456"
    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(make_target(fake.base_url, api_key=secret), chat_body())

    err = caught.value
    assert (err.status, err.code, err.upstream_status) == (502, "upstream_auth_error", 401)
    assert not err.retryable
    assert secret not in err.message
    assert "sk-live" not in err.message


async def test_bad_request_is_400_with_the_upstream_reason(fake):
    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(make_target(fake.base_url), chat_body(temperature=3.5))

    err = caught.value
    assert (err.status, err.type, err.code) == (
        400,
        "invalid_request_error",
        "upstream_bad_request",
    )
    assert "temperature" in err.message
    assert not err.retryable


async def test_rate_limit_is_429_retryable_with_retry_after(fake):
    fake.enqueue(Script(status=429, retry_after=7))

    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(make_target(fake.base_url), chat_body())

    err = caught.value
    assert (err.status, err.code, err.retry_after) == (429, "upstream_rate_limited", 7.0)
    assert err.retryable


@pytest.mark.parametrize(("upstream", "expected"), [(500, 502), (502, 502), (503, 503)])
async def test_server_errors_are_retryable(fake, upstream, expected):
    fake.enqueue(Script(status=upstream))

    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(make_target(fake.base_url), chat_body())

    assert caught.value.status == expected
    assert caught.value.upstream_status == upstream
    assert caught.value.retryable


async def test_server_error_before_a_stream_raises(fake):
    fake.enqueue(Script(status=500))

    with pytest.raises(UpstreamError) as caught:
        await collect(
            OpenAIAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )
    assert caught.value.status == 502


async def test_slow_first_byte_times_out(fake):
    fake.enqueue(Script(delay=2.0))
    target = make_target(fake.base_url, first_byte_timeout=0.1)
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout) as caught:
        await OpenAIAdapter().chat(target, chat_body())

    assert time.monotonic() - started < 1.0
    assert caught.value.status == 504
    assert caught.value.retryable


async def test_unreachable_upstream_is_502():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = make_target(f"http://127.0.0.1:{port}/v1", connect_timeout=1.0)

    with pytest.raises(UpstreamError) as caught:
        await OpenAIAdapter().chat(target, chat_body())

    assert caught.value.status == 502
    assert caught.value.code == "upstream_unreachable"
    assert caught.value.retryable
    await close_sessions()


async def test_embeddings(fake):
    body = {"model": "alias", "input": ["first text", "the second text"], "dimensions": 4}

    result = await OpenAIAdapter().embeddings(
        make_target(fake.base_url, upstream_model="text-embedding-3-small"), body
    )

    assert [item["index"] for item in result.response["data"]] == [0, 1]
    assert all(len(item["embedding"]) == 4 for item in result.response["data"])
    assert result.usage == Usage(input_tokens=5)
    path, _headers, sent = fake.requests[-1]
    assert path == "/v1/embeddings"
    assert sent == body | {"model": "text-embedding-3-small"}


async def test_fake_served_from_a_thread():
    server = FakeOpenAI(api_key=KEY).start_in_thread()
    try:
        server.enqueue(Script(text="from the thread"))
        result = await OpenAIAdapter().chat(make_target(server.base_url), chat_body())
        assert result.response["choices"][0]["message"]["content"] == "from the thread"
        assert len(server.requests) == 1
    finally:
        server.stop()
        await close_sessions()


def test_fake_satisfies_the_official_sdk():
    """The fake speaks the real protocol: the OpenAI SDK parses its answers and errors."""
    openai = pytest.importorskip("openai")
    server = FakeOpenAI(api_key=KEY).start_in_thread()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=5)
        server.enqueue(Script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL],
        )
        assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"

        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "You said: one two"
        )
        assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 4

        vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert len(vectors.data) == 2

        wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    finally:
        server.stop()
