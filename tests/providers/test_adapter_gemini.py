"""The Gemini adapter against a fake Gemini API over loopback HTTP."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Target
from apps.providers.adapters.gemini import GeminiAdapter, gemini_schema
from apps.providers.exceptions import UpstreamError, UpstreamTimeout
from apps.providers.http import close_sessions
from tests.fakes.gemini_server import API_KEY, FakeGemini, GeminiReply, fake_embedding

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    + "hQGAhKmMIQAAAABJRU5ErkJggg=="
)
MODEL = "gemini-2.5-flash"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        yield server
    await close_sessions()


def make_target(fake: FakeGemini, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "provider_id": "p2",
        "provider_name": "gemini-test",
        "kind": "gemini",
        "base_url": fake.base_url,
        "upstream_model": MODEL,
        "api_key": API_KEY,
        "connect_timeout": 2.0,
        "first_byte_timeout": 5.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return Target(**values)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def collect(target: Target, body: dict) -> list[dict]:
    return [chunk async for chunk in GeminiAdapter().chat_stream(target, body)]


def test_registry_returns_the_gemini_adapter() -> None:
    assert isinstance(get_adapter("gemini"), GeminiAdapter)


async def test_plain_chat_returns_a_chat_completion(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(text="Hello there", prompt_tokens=8, candidates_tokens=2))
    result = await GeminiAdapter().chat(make_target(fake), user("Hi"))
    response = result.response
    assert response["object"] == "chat.completion"
    assert response["id"].startswith("chatcmpl-")
    choice = response["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert response["usage"] == {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}

    sent = fake.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "key" not in sent.query
    assert sent.body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def test_system_prompt_and_generation_config(fake: FakeGemini) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "One"},
            {"role": "user", "content": [{"type": "text", "text": "Two"}]},
            {"role": "assistant", "content": "Ok."},
            {"role": "user", "content": "Three"},
        ],
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 50,
        "stop": ["END"],
        "n": 2,
        "seed": 11,
    }
    result = await GeminiAdapter().chat(make_target(fake, base_url=fake.base_url + "/v1beta"), body)
    sent = fake.requests[0].body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "One"}, {"text": "Two"}]},
        {"role": "model", "parts": [{"text": "Ok."}]},
        {"role": "user", "parts": [{"text": "Three"}]},
    ]
    assert sent["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.8,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 11,
    }
    assert [c["index"] for c in result.response["choices"]] == [0, 1]
    assert result.response["choices"][1]["message"]["content"] == "Echo: Three"


async def test_json_schema_is_cleaned_for_gemini(fake: FakeGemini) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "name": {"type": "string", "format": "email"},
            "when": {"type": "string", "format": "date-time"},
            "tag": {"type": ["string", "null"]},
            "item": {"$ref": "#/$defs/Item"},
        },
        "required": ["name"],
        "additionalProperties": False,
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "additionalProperties": False,
            }
        },
    }
    body = {
        **user("Make one"),
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    await GeminiAdapter().chat(make_target(fake), body)
    config = fake.requests[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "tag": {"type": "string", "nullable": True},
            "item": {"type": "object", "properties": {"id": {"type": "integer"}}},
        },
        "required": ["name"],
    }


def test_schema_cleaning_survives_recursive_refs() -> None:
    schema = {
        "type": "object",
        "properties": {"child": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
    }
    cleaned = json.dumps(gemini_schema(schema))
    assert "$ref" not in cleaned and "$defs" not in cleaned


async def test_image_parts_become_inline_and_file_data(fake: FakeGemini) -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png?x=1"}},
                ],
            }
        ]
    }
    await GeminiAdapter().chat(make_target(fake), body)
    parts = fake.requests[0].body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2] == {
        "fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png?x=1"}
    }


async def test_tool_call_round_trip(fake: FakeGemini) -> None:
    adapter = GeminiAdapter()
    target = make_target(fake)
    fake.enqueue(
        GeminiReply(
            text="",
            function_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}},
                {"name": "get_weather", "args": {"city": "Rome"}},
            ],
            thought_signature="c2lnbmF0dXJl",
        )
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    first = await adapter.chat(
        target, {"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    sent = fake.requests[0].body
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    choice = first.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[1]["function"]["arguments"]) == {"city": "Rome"}
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "c2lnbmF0dXJl"}}

    messages += [
        choice["message"],
        {"role": "tool", "tool_call_id": "call_0", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
    ]
    fake.enqueue(GeminiReply(text="Paris 18, Rome 22."))
    second = await adapter.chat(
        target,
        {
            "messages": messages,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    )
    assert second.response["choices"][0]["message"]["content"] == "Paris 18, Rome 22."
    sent = fake.requests[1].body
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        ],
    }
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "22C"}}},
        ],
    }


async def test_usage_counts_thoughts_as_reasoning_and_cached_tokens(fake: FakeGemini) -> None:
    fake.enqueue(
        GeminiReply(
            text="42",
            thought="Let me think about it.",
            prompt_tokens=100,
            candidates_tokens=4,
            thoughts_tokens=30,
            cached_tokens=64,
            finish_reason="MAX_TOKENS",
        )
    )
    result = await GeminiAdapter().chat(make_target(fake), user("Answer?"))
    assert result.response["choices"][0]["message"]["content"] == "42"
    assert result.response["choices"][0]["finish_reason"] == "length"
    assert result.usage is not None
    assert result.usage.output_tokens == 34
    assert result.usage.reasoning_tokens == 30
    assert result.response["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 34,
        "total_tokens": 134,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


async def test_blocked_prompt_raises_content_filter(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(block_reason="SAFETY"))
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(make_target(fake), user("something dangerous"))
    assert info.value.status == 400
    assert info.value.code == "content_filter"
    assert info.value.retryable is False


async def test_candidate_stopped_for_safety_finishes_with_content_filter(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(text="", finish_reason="SAFETY"))
    result = await GeminiAdapter().chat(make_target(fake), user("hmm"))
    choice = result.response["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == ""


async def test_streaming_text_with_usage(fake: FakeGemini) -> None:
    fake.enqueue(
        GeminiReply(
            text="Streaming is fun to watch.",
            prompt_tokens=7,
            candidates_tokens=6,
            thoughts_tokens=3,
        )
    )
    chunks = await collect(make_target(fake), user("Go"))
    sent = fake.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum("role" in c["choices"][0]["delta"] for c in chunks if c["choices"]) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Streaming is fun to watch."
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 9,
        "total_tokens": 16,
        "completion_tokens_details": {"reasoning_tokens": 3},
    }


async def test_streaming_function_calls(fake: FakeGemini) -> None:
    fake.enqueue(
        GeminiReply(
            text="Checking.", function_calls=[{"name": "get_weather", "args": {"city": "Oslo"}}]
        )
    )
    chunks = await collect(make_target(fake), {**user("Weather?"), "tools": [WEATHER_TOOL]})
    calls = [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and calls[0]["id"] == "call_0"
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"


async def test_stream_without_finish_reason_raises(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(text="cut short", finish_reason=None))
    with pytest.raises(UpstreamError):
        await collect(make_target(fake), user("Go"))


async def test_broken_stream_raises(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(text="a fairly long answer to cut", break_after_events=2))
    with pytest.raises(UpstreamError) as info:
        await collect(make_target(fake), user("Go"))
    assert info.value.retryable is True


async def test_blocked_prompt_in_a_stream_raises_content_filter(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(block_reason="PROHIBITED_CONTENT"))
    with pytest.raises(UpstreamError) as info:
        await collect(make_target(fake), user("Go"))
    assert info.value.code == "content_filter"
    assert info.value.status == 400


async def test_unauthenticated_maps_to_502_without_the_key(fake: FakeGemini) -> None:
    fake.enqueue_error(401, "Request had invalid authentication credentials.")
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(make_target(fake), user("Hi"))
    assert info.value.status == 502
    assert info.value.code == "upstream_auth_error"
    assert API_KEY not in info.value.message


async def test_invalid_key_answered_as_400_is_an_auth_error(fake: FakeGemini) -> None:
    target = make_target(fake, api_key="AIza-wrong-secret-999")
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(target, user("Hi"))
    assert fake.requests[0].headers["x-goog-api-key"] == "AIza-wrong-secret-999"
    assert info.value.status == 502
    assert info.value.code == "upstream_auth_error"
    assert info.value.retryable is False
    assert "AIza-wrong-secret-999" not in info.value.message


async def test_bad_request_maps_to_400_with_the_upstream_message(fake: FakeGemini) -> None:
    # A tool result that answers no function call is rejected by the API itself.
    body = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "tool", "tool_call_id": "x", "name": "get_weather", "content": "1"},
        ]
    }
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(make_target(fake), body)
    assert info.value.status == 400
    assert info.value.retryable is False
    assert "function response parts" in info.value.message


async def test_rate_limit_maps_to_429_with_retry_after(fake: FakeGemini) -> None:
    fake.enqueue_error(429, "Resource has been exhausted (e.g. check quota).", retry_after=3)
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(make_target(fake), user("Hi"))
    assert info.value.status == 429
    assert info.value.retry_after == 3
    assert "exhausted" in info.value.message


async def test_unavailable_maps_to_retryable_503(fake: FakeGemini) -> None:
    fake.enqueue_error(503, "The model is overloaded. Please try again later.")
    with pytest.raises(UpstreamError) as info:
        await GeminiAdapter().chat(make_target(fake), user("Hi"))
    assert info.value.status == 503
    assert info.value.retryable is True


async def test_slow_first_byte_times_out_as_504(fake: FakeGemini) -> None:
    fake.enqueue(GeminiReply(first_byte_delay=1.0))
    with pytest.raises(UpstreamTimeout) as info:
        await collect(make_target(fake, first_byte_timeout=0.05), user("Hi"))
    assert info.value.status == 504


async def test_embeddings(fake: FakeGemini) -> None:
    result = await GeminiAdapter().embeddings(
        make_target(fake, upstream_model="text-embedding-004"),
        {"model": "x", "input": ["alpha", "beta"], "dimensions": 4},
    )
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.body["requests"][1] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "beta"}]},
        "outputDimensionality": 4,
    }
    response = result.response
    assert response["object"] == "list"
    assert [d["index"] for d in response["data"]] == [0, 1]
    assert response["data"][0]["object"] == "embedding"
    assert response["data"][0]["embedding"] == pytest.approx(fake_embedding("alpha", 4))
    assert response["data"][1]["embedding"] == pytest.approx(fake_embedding("beta", 4))
    assert result.usage is None


async def test_embeddings_as_base64(fake: FakeGemini) -> None:
    result = await GeminiAdapter().embeddings(
        make_target(fake, upstream_model="models/text-embedding-004"),
        {"model": "x", "input": "alpha", "encoding_format": "base64"},
    )
    packed = base64.b64decode(result.response["data"][0]["embedding"])
    values = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert values == pytest.approx(fake_embedding("alpha", 8), abs=1e-6)


def test_fake_serves_from_a_thread_for_other_processes() -> None:
    import urllib.request

    fake = FakeGemini()
    base_url = fake.start_in_thread()
    try:
        fake.enqueue(GeminiReply(text="from a thread"))
        request = urllib.request.Request(
            f"{base_url}/v1beta/models/{MODEL}:generateContent",
            data=json.dumps({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}).encode(),
            headers={"x-goog-api-key": API_KEY, "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        parts = answer["candidates"][0]["content"]["parts"]
        assert parts == [{"text": "from a thread"}]
        assert len(fake.requests) == 1
    finally:
        fake.stop()
