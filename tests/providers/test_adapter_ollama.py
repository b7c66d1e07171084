"""The Ollama adapter against a fake Ollama server (native API) over loopback HTTP."""

from __future__ import annotations

import base64
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Target, Usage
from apps.providers.adapters.ollama import OllamaAdapter
from apps.providers.exceptions import UnsupportedFeature, UpstreamError, UpstreamTimeout
from apps.providers.http import close_sessions
from tests.fakes.ollama_server import FakeOllama, Script

pytestmark = pytest.mark.timeout(20)

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image-bytes").decode()

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


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server
    await close_sessions()


def make_target(base_url: str, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "provider_id": "prov-ollama",
        "provider_name": "ollama-local",
        "kind": "ollama",
        "base_url": base_url,
        "upstream_model": "llama3.2:latest",
        "connect_timeout": 2.0,
        "first_byte_timeout": 5.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return Target(**values)


def chat_body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "local", "messages": [{"role": "user", "content": text}]} | extra


async def collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


def test_registry_serves_the_ollama_kind():
    assert isinstance(get_adapter("ollama"), OllamaAdapter)


async def test_plain_chat_translates_request_and_response(fake):
    body = chat_body(
        temperature=0.3,
        top_p=0.8,
        max_tokens=64,
        stop="END",
        seed=11,
        response_format={"type": "json_object"},
        messages=[
            {"role": "developer", "content": "Answer in JSON."},
            {"role": "user", "content": "Hello there"},
        ],
    )

    result = await OllamaAdapter().chat(make_target(fake.base_url), body)

    path, _headers, sent = fake.requests[-1]
    assert path == "/api/chat"
    assert sent == {
        "model": "llama3.2:latest",
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Hello there"},
        ],
        "stream": False,
        "format": "json",
        "options": {
            "temperature": 0.3,
            "top_p": 0.8,
            "seed": 11,
            "num_predict": 64,
            "stop": ["END"],
        },
    }
    response = result.response
    assert response["object"] == "chat.completion"
    assert response["id"].startswith("chatcmpl-")
    assert response["model"] == "llama3.2:latest"
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert orjson.loads(choice["message"]["content"]) == {"answer": "You said: Hello there"}
    assert result.usage == Usage(input_tokens=5, output_tokens=4)
    assert response["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


async def test_json_schema_becomes_the_format_and_target_options_apply(fake):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = chat_body(
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        max_completion_tokens=20,
    )
    target = make_target(fake.base_url, options={"options": {"num_ctx": 8192}, "keep_alive": "10m"})

    await OllamaAdapter().chat(target, body)

    sent = fake.bodies("/api/chat")[-1]
    assert sent["format"] == schema
    assert sent["options"] == {"num_ctx": 8192, "num_predict": 20}
    assert sent["keep_alive"] == "10m"


async def test_token_limit_reports_length(fake):
    result = await OllamaAdapter().chat(
        make_target(fake.base_url), chat_body("one two three four", max_tokens=2)
    )

    choice = result.response["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "You said:"


async def test_tool_call_round_trip(fake):
    adapter = OllamaAdapter()
    target = make_target(fake.base_url)
    fake.enqueue(Script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    body = chat_body("Weather in Oslo?", tools=[WEATHER_TOOL], tool_choice="auto")

    first = await adapter.chat(target, body)

    assert fake.bodies()[-1]["tools"] == [WEATHER_TOOL]
    choice = first.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Oslo"}

    fake.enqueue(Script(text="It is 4 degrees in Oslo."))
    follow_up = dict(body)
    follow_up["messages"] = [
        *body["messages"],
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": '{"celsius": 4}'},
    ]
    second = await adapter.chat(target, follow_up)

    assert second.response["choices"][0]["message"]["content"] == "It is 4 degrees in Oslo."
    sent = fake.bodies()[-1]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }
    assert sent[2] == {"role": "tool", "content": '{"celsius": 4}', "tool_name": "get_weather"}


async def test_image_parts_become_base64_images(fake):
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    ]

    await OllamaAdapter().chat(
        make_target(fake.base_url), {"messages": [{"role": "user", "content": parts}]}
    )

    assert fake.bodies()[-1]["messages"] == [
        {"role": "user", "content": "What is this?", "images": [PNG_B64]}
    ]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                        ],
                    }
                ]
            },
            "messages[0].content",
        ),
        ({"n": 2}, "n"),
        ({"tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice"),
        ({"logprobs": True}, "logprobs"),
    ],
)
async def test_requests_ollama_cannot_express_are_refused_before_sending(fake, extra, param):
    with pytest.raises(UnsupportedFeature) as caught:
        await OllamaAdapter().chat(make_target(fake.base_url), chat_body() | extra)

    assert caught.value.status == 400
    assert caught.value.param == param
    assert fake.requests == []


async def test_remote_image_error_says_what_to_do(fake):
    part = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    with pytest.raises(UnsupportedFeature, match="base64 data: URL"):
        await OllamaAdapter().chat(
            make_target(fake.base_url), {"messages": [{"role": "user", "content": [part]}]}
        )


async def test_usage_comes_from_eval_counts(fake):
    fake.enqueue(Script(text="ok", prompt_tokens=321, completion_tokens=45))

    result = await OllamaAdapter().chat(make_target(fake.base_url), chat_body())

    assert result.usage == Usage(input_tokens=321, output_tokens=45)
    assert result.response["usage"]["total_tokens"] == 366


async def test_stream_yields_role_content_finish_and_usage(fake):
    fake.enqueue(Script(text="one two three four five six", chunks=3, prompt_tokens=9))

    chunks = await collect(
        OllamaAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
    )

    assert fake.bodies()[-1]["stream"] is True
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:] if c["choices"])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "one two three four five six"
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "finish_reason": "stop",
        "logprobs": None,
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}


async def test_stream_of_tool_calls(fake):
    fake.enqueue(Script(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"}}]))

    chunks = await collect(
        OllamaAdapter().chat_stream(
            make_target(fake.base_url), chat_body("Weather?", stream=True, tools=[WEATHER_TOOL])
        )
    )

    calls = [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert len(calls) == 1
    assert calls[0]["index"] == 0
    assert calls[0]["id"].startswith("call_")
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Lima"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_without_counts_has_no_usage_chunk(fake):
    fake.enqueue(Script(text="fine", include_usage=False))

    chunks = await collect(
        OllamaAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
    )

    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"] for c in chunks)


async def test_connection_dropped_mid_stream_raises(fake):
    fake.enqueue(Script(text="a b c d e f", break_after=2, break_mode="close"))
    seen: list[dict[str, Any]] = []

    with pytest.raises(UpstreamError) as caught:
        async for chunk in OllamaAdapter().chat_stream(
            make_target(fake.base_url), chat_body(stream=True)
        ):
            seen.append(chunk)

    assert len(seen) == 2
    assert caught.value.status == 502


async def test_stream_ending_before_done_raises(fake):
    fake.enqueue(Script(text="a b c d", break_after=2, break_mode="eof"))

    with pytest.raises(UpstreamError, match="ended the stream early"):
        await collect(
            OllamaAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )


async def test_error_line_in_the_stream_raises(fake):
    fake.enqueue(Script(text="a b c", break_after=1, stream_error="out of memory"))

    with pytest.raises(UpstreamError, match="out of memory"):
        await collect(
            OllamaAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )


async def test_rejected_key_is_502_and_never_echoed():
    secret = "ollama-secret-must-not-leak"
    async with FakeOllama(api_key="the-right-key") as server:
        with pytest.raises(UpstreamError) as caught:
            await OllamaAdapter().chat(make_target(server.base_url, api_key=secret), chat_body())
        assert server.requests[-1][1]["authorization"] == f"Bearer {secret}"
    await close_sessions()

    err = caught.value
    assert (err.status, err.code, err.upstream_status) == (502, "upstream_auth_error", 401)
    assert not err.retryable
    assert secret not in err.message


async def test_bad_request_is_400_with_ollamas_reason(fake):
    with pytest.raises(UpstreamError) as caught:
        await OllamaAdapter().chat(make_target(fake.base_url), chat_body(temperature="hot"))

    err = caught.value
    assert (err.status, err.code, err.upstream_status) == (400, "upstream_bad_request", 400)
    assert "temperature" in err.message


async def test_unpulled_model_is_upstream_not_found():
    async with FakeOllama(models=["qwen2.5:7b"]) as server:
        with pytest.raises(UpstreamError) as caught:
            await OllamaAdapter().chat(make_target(server.base_url), chat_body())
    await close_sessions()

    assert (caught.value.status, caught.value.code) == (502, "upstream_not_found")
    assert "llama3.2:latest" in caught.value.message


async def test_rate_limit_is_429_retryable_with_retry_after(fake):
    fake.enqueue(Script(status=429, retry_after=3))

    with pytest.raises(UpstreamError) as caught:
        await OllamaAdapter().chat(make_target(fake.base_url), chat_body())

    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)
    assert caught.value.retryable


@pytest.mark.parametrize(("upstream", "expected"), [(500, 502), (503, 503)])
async def test_server_errors_are_retryable(fake, upstream, expected):
    fake.enqueue(Script(status=upstream))

    with pytest.raises(UpstreamError) as caught:
        await OllamaAdapter().chat(make_target(fake.base_url), chat_body())

    assert caught.value.status == expected
    assert caught.value.retryable


async def test_server_error_message_is_kept(fake):
    fake.enqueue(Script(status=500))

    with pytest.raises(UpstreamError, match="llama runner process has terminated"):
        await collect(
            OllamaAdapter().chat_stream(make_target(fake.base_url), chat_body(stream=True))
        )


async def test_slow_first_byte_times_out(fake):
    fake.enqueue(Script(delay=2.0))
    started = time.monotonic()

    with pytest.raises(UpstreamTimeout) as caught:
        await OllamaAdapter().chat(make_target(fake.base_url, first_byte_timeout=0.1), chat_body())

    assert time.monotonic() - started < 1.0
    assert caught.value.status == 504


async def test_unreachable_upstream_is_502():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(UpstreamError) as caught:
        await OllamaAdapter().chat(make_target(f"http://127.0.0.1:{port}"), chat_body())
    await close_sessions()

    assert (caught.value.status, caught.value.code) == (502, "upstream_unreachable")
    assert caught.value.retryable


async def test_embeddings_come_back_in_openai_shape(fake):
    target = make_target(fake.base_url, upstream_model="nomic-embed-text")
    body = {"model": "embed", "input": ["first text", "the second text"], "dimensions": 4}

    result = await OllamaAdapter().embeddings(target, body)

    path, _headers, sent = fake.requests[-1]
    assert path == "/api/embed"
    assert sent == {"model": "nomic-embed-text", "input": body["input"], "dimensions": 4}
    response = result.response
    assert response["object"] == "list"
    assert response["model"] == "nomic-embed-text"
    assert [(d["object"], d["index"], len(d["embedding"])) for d in response["data"]] == [
        ("embedding", 0, 4),
        ("embedding", 1, 4),
    ]
    assert response["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert result.usage == Usage(input_tokens=5)


async def test_base64_embeddings_decode_to_the_same_floats(fake):
    target = make_target(fake.base_url, upstream_model="nomic-embed-text")
    plain = await OllamaAdapter().embeddings(target, {"input": "hello"})
    packed = await OllamaAdapter().embeddings(
        target, {"input": "hello", "encoding_format": "base64"}
    )

    vector = plain.response["data"][0]["embedding"]
    raw = base64.b64decode(packed.response["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(vector)}f", raw)
    assert decoded == pytest.approx(vector, rel=1e-6)


async def test_token_array_embeddings_are_unsupported(fake):
    with pytest.raises(UnsupportedFeature):
        await OllamaAdapter().embeddings(make_target(fake.base_url), {"input": [[1, 2, 3]]})
    assert fake.requests == []


async def test_fake_served_from_a_thread():
    server = FakeOllama().start_in_thread()
    try:
        server.enqueue(Script(text="from the thread"))
        result = await OllamaAdapter().chat(make_target(server.base_url), chat_body())
        assert result.response["choices"][0]["message"]["content"] == "from the thread"
    finally:
        server.stop()
        await close_sessions()
