"""The Anthropic adapter against a fake Messages API over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apps.providers.adapters import get_adapter
from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.adapters.base import Target
from apps.providers.exceptions import UnsupportedFeature, UpstreamError, UpstreamTimeout
from apps.providers.http import close_sessions
from tests.fakes.anthropic_server import API_KEY, AnthropicReply, FakeAnthropic

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
# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    + "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server
    await close_sessions()


def make_target(fake: FakeAnthropic, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "provider_id": "p1",
        "provider_name": "anthropic-test",
        "kind": "anthropic",
        "base_url": fake.base_url,
        "upstream_model": "claude-sonnet-4-5",
        "api_key": API_KEY,
        "connect_timeout": 2.0,
        "first_byte_timeout": 5.0,
        "total_timeout": 10.0,
    }
    values.update(overrides)
    return Target(**values)


async def collect(adapter: AnthropicAdapter, target: Target, body: dict) -> list[dict]:
    return [chunk async for chunk in adapter.chat_stream(target, body)]


def streamed_text(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_registry_returns_the_anthropic_adapter() -> None:
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)


async def test_plain_chat_returns_a_chat_completion(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(text="Hello there", input_tokens=12, output_tokens=3))
    result = await AnthropicAdapter().chat(
        make_target(fake), {"model": "x", "messages": [{"role": "user", "content": "Hi"}]}
    )
    response = result.response
    assert response["object"] == "chat.completion"
    assert response["model"] == "claude-sonnet-4-5"
    choice = response["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert response["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert result.usage is not None and result.usage.output_tokens == 3

    sent = fake.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["max_tokens"] == 4096
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


async def test_base_url_with_v1_suffix_and_beta_header_option(fake: FakeAnthropic) -> None:
    target = make_target(
        fake,
        base_url=fake.base_url + "/v1/",
        options={"anthropic_beta": ["a-2025", "b-2025"]},
        max_output_tokens=1000,
    )
    await AnthropicAdapter().chat(target, {"messages": [{"role": "user", "content": "Hi"}]})
    sent = fake.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-beta"] == "a-2025,b-2025"
    assert sent.body["max_tokens"] == 1000


async def test_system_prompts_go_top_level_and_parameters_translate(fake: FakeAnthropic) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "One"},
            {"role": "user", "content": [{"type": "text", "text": "Two"}]},
        ],
        "max_completion_tokens": 77,
        "stop": "END",
        "temperature": 1.5,
        "top_p": 0.9,
        "user": "user-42",
        "seed": 7,
    }
    await AnthropicAdapter().chat(make_target(fake), body)
    sent = fake.requests[0].body
    assert sent["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Be kind."},
    ]
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}],
        }
    ]
    assert sent["max_tokens"] == 77
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 1.0
    assert sent["top_p"] == 0.9
    assert sent["metadata"] == {"user_id": "user-42"}
    assert "seed" not in sent


async def test_json_response_format_becomes_a_system_instruction(fake: FakeAnthropic) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "messages": [{"role": "user", "content": "Give me a"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }
    await AnthropicAdapter().chat(make_target(fake), body)
    system = fake.requests[0].body["system"]
    assert len(system) == 1
    assert "JSON" in system[0]["text"]
    assert '"properties":{"a":{"type":"integer"}}' in system[0]["text"]


async def test_n_greater_than_one_is_refused_before_any_call(fake: FakeAnthropic) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        await AnthropicAdapter().chat(
            make_target(fake), {"messages": [{"role": "user", "content": "Hi"}], "n": 2}
        )
    assert info.value.param == "n"
    assert fake.requests == []


async def test_image_parts_become_image_blocks(fake: FakeAnthropic) -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    }
    await AnthropicAdapter().chat(make_target(fake), body)
    blocks = fake.requests[0].body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


async def test_tool_call_round_trip(fake: FakeAnthropic) -> None:
    adapter = AnthropicAdapter()
    target = make_target(fake)
    fake.enqueue(
        AnthropicReply(
            text="Let me check.",
            thinking="The user wants weather.",
            tool_uses=[{"id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
        )
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await adapter.chat(
        target, {"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    sent = fake.requests[0].body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}
    choice = first.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_01"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}

    messages += [
        choice["message"],
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C and sunny"},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]
    fake.enqueue(AnthropicReply(text="Sunny tomorrow too."))
    second = await adapter.chat(
        target,
        {
            "messages": messages,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    )
    assert second.response["choices"][0]["message"]["content"] == "Sunny tomorrow too."
    sent = fake.requests[1].body
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C and sunny"},
            {"type": "text", "text": "Thanks, and tomorrow?"},
        ],
    }


async def test_tool_choice_none_and_auto_translate(fake: FakeAnthropic) -> None:
    adapter = AnthropicAdapter()
    base = {"messages": [{"role": "user", "content": "Hi"}], "tools": [WEATHER_TOOL]}
    await adapter.chat(make_target(fake), {**base, "tool_choice": "none"})
    await adapter.chat(make_target(fake), {**base, "tool_choice": "auto"})
    await adapter.chat(make_target(fake), {**base, "parallel_tool_calls": False})
    assert fake.requests[0].body["tool_choice"] == {"type": "none"}
    assert fake.requests[1].body["tool_choice"] == {"type": "auto"}
    assert fake.requests[2].body["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


async def test_usage_counts_cache_reads_and_writes_as_input(fake: FakeAnthropic) -> None:
    fake.enqueue(
        AnthropicReply(
            text="ok",
            input_tokens=10,
            output_tokens=5,
            cache_read_input_tokens=100,
            cache_creation_input_tokens=20,
            stop_reason="max_tokens",
        )
    )
    result = await AnthropicAdapter().chat(
        make_target(fake), {"messages": [{"role": "user", "content": "Hi"}]}
    )
    assert result.usage is not None
    assert result.usage.input_tokens == 130
    assert result.usage.cached_input_tokens == 100
    assert result.usage.cache_write_tokens == 20
    assert result.response["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 5,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
    }
    assert result.response["choices"][0]["finish_reason"] == "length"


async def test_refusal_maps_to_content_filter(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(text="", stop_reason="refusal"))
    result = await AnthropicAdapter().chat(
        make_target(fake), {"messages": [{"role": "user", "content": "Hi"}]}
    )
    assert result.response["choices"][0]["finish_reason"] == "content_filter"
    assert result.response["choices"][0]["message"]["content"] == ""


async def test_streaming_text(fake: FakeAnthropic) -> None:
    fake.enqueue(
        AnthropicReply(
            text="Streaming is fun to watch.",
            thinking="hmm",
            input_tokens=9,
            output_tokens=6,
            cache_read_input_tokens=4,
        )
    )
    chunks = await collect(
        AnthropicAdapter(), make_target(fake), {"messages": [{"role": "user", "content": "Go"}]}
    )
    assert fake.requests[0].body["stream"] is True
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert streamed_text(chunks) == "Streaming is fun to watch."
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "stop" and finish.count("stop") == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 13,
        "completion_tokens": 6,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    assert len({c["id"] for c in chunks}) == 1


async def test_streaming_tool_use_assembles_arguments(fake: FakeAnthropic) -> None:
    arguments = {"city": "San Francisco, CA", "unit": "celsius"}
    fake.enqueue(
        AnthropicReply(
            text="Checking.",
            tool_uses=[
                {"id": "toolu_a", "name": "get_weather", "input": arguments},
                {"id": "toolu_b", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        )
    )
    chunks = await collect(
        AnthropicAdapter(),
        make_target(fake),
        {"messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER_TOOL]},
    )
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                entry = calls.setdefault(delta["index"], {"arguments": ""})
                if "id" in delta:
                    entry.update(id=delta["id"], type=delta["type"])
                    entry["name"] = delta["function"]["name"]
                entry["arguments"] += delta["function"].get("arguments") or ""
    assert calls[0]["id"] == "toolu_a" and calls[0]["type"] == "function"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == arguments
    assert calls[1]["id"] == "toolu_b"
    assert json.loads(calls[1]["arguments"]) == {"city": "Oslo"}
    assert streamed_text(chunks) == "Checking."
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"


async def test_mid_stream_error_event_raises_retryable_503(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(text="a long answer " * 5, error_event_after=5))
    seen: list[dict] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in AnthropicAdapter().chat_stream(
            make_target(fake), {"messages": [{"role": "user", "content": "Go"}]}
        ):
            seen.append(chunk)
    assert seen, "chunks before the error event are delivered"
    assert info.value.status == 503
    assert info.value.retryable is True
    assert "overloaded_error" in info.value.message


async def test_stream_ending_before_message_stop_raises(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(text="an answer that stops early", end_after_events=4))
    with pytest.raises(UpstreamError) as info:
        await collect(
            AnthropicAdapter(), make_target(fake), {"messages": [{"role": "user", "content": "x"}]}
        )
    assert "before it was complete" in info.value.message


async def test_mid_stream_invalid_request_error_is_not_retryable(fake: FakeAnthropic) -> None:
    fake.enqueue(
        AnthropicReply(error_event_after=2, error_type="invalid_request_error", error_message="bad")
    )
    with pytest.raises(UpstreamError) as info:
        await collect(
            AnthropicAdapter(), make_target(fake), {"messages": [{"role": "user", "content": "x"}]}
        )
    assert info.value.status == 400
    assert info.value.retryable is False


async def test_broken_stream_raises_upstream_error(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(text="this will be cut short", break_after_events=4))
    with pytest.raises(UpstreamError) as info:
        await collect(
            AnthropicAdapter(), make_target(fake), {"messages": [{"role": "user", "content": "x"}]}
        )
    assert info.value.retryable is True


async def test_unauthorized_maps_to_502_without_the_key(fake: FakeAnthropic) -> None:
    target = make_target(fake, api_key="sk-ant-wrong-secret-123")
    with pytest.raises(UpstreamError) as info:
        await AnthropicAdapter().chat(target, {"messages": [{"role": "user", "content": "Hi"}]})
    assert fake.requests[0].headers["x-api-key"] == "sk-ant-wrong-secret-123"
    assert info.value.status == 502
    assert info.value.code == "upstream_auth_error"
    assert info.value.upstream_status == 401
    assert "sk-ant-wrong-secret-123" not in info.value.message
    assert info.value.retryable is False


async def test_bad_request_maps_to_400_with_the_upstream_message(fake: FakeAnthropic) -> None:
    # A conversation starting with the assistant is rejected by the API itself.
    body = {"messages": [{"role": "assistant", "content": "Hello"}]}
    with pytest.raises(UpstreamError) as info:
        await AnthropicAdapter().chat(make_target(fake), body)
    assert info.value.status == 400
    assert info.value.retryable is False
    assert "first message" in info.value.message


async def test_rate_limit_maps_to_429_with_retry_after(fake: FakeAnthropic) -> None:
    fake.enqueue_error(429, "Number of request tokens has exceeded your rate limit", retry_after=7)
    with pytest.raises(UpstreamError) as info:
        await AnthropicAdapter().chat(
            make_target(fake), {"messages": [{"role": "user", "content": "Hi"}]}
        )
    assert info.value.status == 429
    assert info.value.retry_after == 7
    assert info.value.retryable is True
    assert "rate limit" in info.value.message


@pytest.mark.parametrize(("status", "expected"), [(529, 503), (500, 502)])
async def test_server_errors_are_retryable(fake: FakeAnthropic, status: int, expected: int) -> None:
    fake.enqueue_error(status, "Overloaded")
    with pytest.raises(UpstreamError) as info:
        await AnthropicAdapter().chat(
            make_target(fake), {"messages": [{"role": "user", "content": "Hi"}]}
        )
    assert info.value.status == expected
    assert info.value.retryable is True


async def test_slow_first_byte_times_out_as_504(fake: FakeAnthropic) -> None:
    fake.enqueue(AnthropicReply(first_byte_delay=1.0))
    with pytest.raises(UpstreamTimeout) as info:
        await AnthropicAdapter().chat(
            make_target(fake, first_byte_timeout=0.05),
            {"messages": [{"role": "user", "content": "Hi"}]},
        )
    assert info.value.status == 504


def test_fake_serves_from_a_thread_for_other_processes() -> None:
    import urllib.request

    fake = FakeAnthropic()
    base_url = fake.start_in_thread()
    try:
        fake.enqueue(AnthropicReply(text="from a thread"))
        request = urllib.request.Request(
            base_url + "/v1/messages",
            data=json.dumps(
                {
                    "model": "m",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "Hi"}],
                }
            ).encode(),
            headers={
                "x-api-key": API_KEY,
                "anthropic-version": "2023-06-01",
                "content-type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["content"] == [{"type": "text", "text": "from a thread"}]
        assert len(fake.requests) == 1
    finally:
        fake.stop()
