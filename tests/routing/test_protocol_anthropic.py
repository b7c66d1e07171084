"""Tests for the Anthropic Messages protocol translation, including the official SDK."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web

from apps.providers.adapters.base import Usage
from apps.routing.protocols import anthropic as ap
from atp_site.lib.errors import ATPError, InvalidRequest, RateLimited, anthropic_error_body


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-public",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    body.update(overrides)
    return body


def _invalid(body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        ap.request_to_openai(body)
    assert info.value.status == 400
    assert info.value.message.endswith(".")
    return info.value


def _events(frames: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """Parse SSE frames strictly: each is exactly one event line and one data line."""
    parsed = []
    for frame in frames:
        assert frame.endswith(b"\n\n")
        event_line, data_line = frame[:-2].split(b"\n")
        assert event_line.startswith(b"event: ")
        assert data_line.startswith(b"data: ")
        name = event_line[len(b"event: ") :].decode()
        data = orjson.loads(data_line[len(b"data: ") :])
        assert data["type"] == name
        parsed.append((name, data))
    return parsed


def _chunk(
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "upstream-model",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _tool_delta(index: int, *, id: str | None = None, name: str | None = None, args: str = ""):
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
        call["function"]["name"] = name
    return {"tool_calls": [call]}


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_body(model=""), "model"),
        ({k: v for k, v in _body().items() if k != "max_tokens"}, "max_tokens"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_tokens=True), "max_tokens"),
        (_body(max_tokens="10"), "max_tokens"),
        (_body(messages=[]), "messages"),
        (
            _body(
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "system", "content": "be nice"},
                ]
            ),
            "messages.1.role",
        ),
        (_body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (_body(messages=[{"role": "user", "content": []}]), "messages.0.content"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
            "messages.0.content.0.text",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "see"},
                            {"type": "image", "source": {"type": "file", "file_id": "f1"}},
                        ],
                    }
                ]
            ),
            "messages.0.content.1.source.type",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/tiff",
                                    "data": "AAAA",
                                },
                            }
                        ],
                    }
                ]
            ),
            "messages.0.content.0.source.media_type",
        ),
        (_body(system=5), "system"),
        (_body(system=[{"type": "image", "source": {}}]), "system.0.type"),
        (_body(stop_sequences="END"), "stop_sequences"),
        (_body(stop_sequences=["END", 3]), "stop_sequences.1"),
        (_body(temperature=1.5), "temperature"),
        (_body(top_p=-0.1), "top_p"),
        (_body(top_k=2.5), "top_k"),
        (_body(stream="yes"), "stream"),
        (_body(tools={"name": "x"}), "tools"),
        (_body(tools=[{"name": "lookup", "input_schema": "object"}]), "tools.0.input_schema"),
        (_body(tools=[{"input_schema": {"type": "object"}}]), "tools.0.name"),
        (
            _body(tools=[{"name": "a", "description": 3, "input_schema": {}}]),
            "tools.0.description",
        ),
        (
            _body(
                tools=[
                    {"name": "a", "input_schema": {"type": "object"}},
                    {"name": "a", "input_schema": {"type": "object"}},
                ]
            ),
            "tools.1.name",
        ),
        (_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
        (
            _body(
                tools=[{"name": "a", "input_schema": {"type": "object"}}],
                tool_choice={"type": "sometimes"},
            ),
            "tool_choice.type",
        ),
        (
            _body(
                tools=[{"name": "a", "input_schema": {"type": "object"}}],
                tool_choice={"type": "tool"},
            ),
            "tool_choice.name",
        ),
        (
            _body(
                tools=[{"name": "a", "input_schema": {"type": "object"}}],
                tool_choice={"type": "tool", "name": "b"},
            ),
            "tool_choice.name",
        ),
        (_body(tool_choice={"type": "any"}), "tool_choice"),
        (_body(metadata={"user_id": 42}), "metadata.user_id"),
        (_body(thinking=True), "thinking"),
    ],
)
def test_invalid_field_is_named_in_param(body: dict[str, Any], param: str) -> None:
    assert _invalid(body).param == param


def test_body_that_is_not_an_object_is_refused() -> None:
    assert _invalid(["not", "an", "object"]).param is None


def test_document_block_is_refused_by_name() -> None:
    body = _body(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "summarise"},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                    },
                ],
            }
        ]
    )
    err = _invalid(body)
    assert err.param == "messages.0.content.1"
    assert "'document'" in err.message


def test_tool_use_in_user_message_and_tool_result_in_assistant_are_refused() -> None:
    tool_use = {"type": "tool_use", "id": "t1", "name": "a", "input": {}}
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}
    assert (
        _invalid(_body(messages=[{"role": "user", "content": [tool_use]}])).param
        == "messages.0.content.0"
    )
    err = _invalid(
        _body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [tool_result]},
            ]
        )
    )
    assert err.param == "messages.1.content.0"


def test_assistant_tool_use_input_must_be_an_object() -> None:
    body = _body(
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": "[]"}],
            },
        ]
    )
    assert _invalid(body).param == "messages.1.content.0.input"


def test_first_bad_field_wins() -> None:
    body = _body(max_tokens=-1, messages="nope")
    assert _invalid(body).param == "max_tokens"


# -- request translation ---------------------------------------------------------------


def test_minimal_request_translates_and_keeps_stream_out_of_the_body() -> None:
    out, meta = ap.request_to_openai(_body(stream=True))
    assert out == {
        "model": "claude-public",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 256,
    }
    assert meta == ap.RequestMeta(model="claude-public", stream=True, notes=[])


def test_system_string_becomes_first_system_message() -> None:
    out, _ = ap.request_to_openai(_body(system="You are terse."))
    assert out["messages"][0] == {"role": "system", "content": "You are terse."}
    assert out["messages"][1] == {"role": "user", "content": "Hello"}


def test_system_blocks_are_joined_and_cache_control_dropped_with_a_note() -> None:
    out, meta = ap.request_to_openai(
        _body(
            system=[
                {"type": "text", "text": "Part one."},
                {"type": "text", "text": "Part two.", "cache_control": {"type": "ephemeral"}},
            ]
        )
    )
    assert out["messages"][0] == {"role": "system", "content": "Part one.\n\nPart two."}
    assert "cache_control" not in orjson.dumps(out).decode()
    assert any("cache_control" in note for note in meta.notes)


def test_sampling_stop_user_and_dropped_fields() -> None:
    out, meta = ap.request_to_openai(
        _body(
            temperature=0.2,
            top_p=1,
            top_k=40,
            stop_sequences=["\n\nHuman:"],
            metadata={"user_id": "user-7"},
            thinking={"type": "enabled", "budget_tokens": 2048},
            service_tier="auto",
            atp={"route": "cheapest"},
        )
    )
    assert out["temperature"] == 0.2
    assert out["top_p"] == 1
    assert out["stop"] == ["\n\nHuman:"]
    assert out["user"] == "user-7"
    assert out["atp"] == {"route": "cheapest"}
    for dropped in ("top_k", "thinking", "service_tier", "metadata", "stop_sequences"):
        assert dropped not in out
    notes = " ".join(meta.notes)
    assert "top_k" in notes
    assert "thinking" in notes
    assert "service_tier" in notes


def test_single_text_block_becomes_plain_string_and_many_become_parts() -> None:
    out, _ = ap.request_to_openai(
        _body(messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    )
    assert out["messages"] == [{"role": "user", "content": "Hi"}]
    out, _ = ap.request_to_openai(
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
                }
            ]
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}
    ]


def test_images_become_image_url_parts() -> None:
    out, _ = ap.request_to_openai(
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "iVBORw0KGgo=",
                            },
                        },
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                        },
                        {"type": "text", "text": "Which is cuter?"},
                    ],
                }
            ]
        )
    )
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "Which is cuter?"},
            ],
        }
    ]


def test_tool_conversation_translates_to_tool_calls_and_tool_messages() -> None:
    body = _body(
        tools=[
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "cache_control": {"type": "ephemeral"},
            },
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Also, be brief."},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "18C"},
                            {"type": "text", "text": "cloudy"},
                        ],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "clock offline",
                        "is_error": True,
                    },
                ],
            },
        ],
    )
    out, meta = ap.request_to_openai(body)
    assert out["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C\ncloudy"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: clock offline"},
        {"role": "user", "content": "Also, be brief."},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert any("Thinking" in note for note in meta.notes)


def test_assistant_with_only_tool_use_has_null_content() -> None:
    out, _ = ap.request_to_openai(
        _body(
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ],
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
        )
    )
    assert out["messages"][1]["content"] is None
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "t", "content": ""}
    assert len(out["messages"]) == 3


def test_tool_result_images_move_to_the_following_user_message() -> None:
    out, meta = ap.request_to_openai(
        _body(
            messages=[
                {"role": "user", "content": "screenshot please"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {"type": "text", "text": "captured"},
                                {
                                    "type": "image",
                                    "source": {"type": "url", "url": "https://x.test/s.png"},
                                },
                            ],
                        }
                    ],
                },
            ]
        )
    )
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t", "content": "captured"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/s.png"}}],
        },
    ]
    assert any("tool results" in note for note in meta.notes)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice_maps_to_openai(choice: dict[str, Any], expected: Any) -> None:
    out, _ = ap.request_to_openai(
        _body(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=choice)
    )
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_final_assistant_prefill_is_kept_and_noted() -> None:
    out, meta = ap.request_to_openai(
        _body(
            messages=[
                {"role": "user", "content": "JSON please"},
                {"role": "assistant", "content": "{"},
            ]
        )
    )
    assert out["messages"][-1] == {"role": "assistant", "content": "{"}
    assert any("prefill" in note for note in meta.notes)


def test_translation_does_not_modify_the_input() -> None:
    body = _body(
        system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
    )
    before = copy.deepcopy(body)
    ap.request_to_openai(body)
    assert body == before


# -- response translation --------------------------------------------------------------


def _completion(message: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def test_text_response_converts_with_usage_from_the_body() -> None:
    resp = _completion({"role": "assistant", "content": "Hi there"}, "stop")
    out = ap.response_from_openai(resp, model="claude-public", usage=None, message_id="msg_1")
    assert out == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-public",
        "content": [{"type": "text", "text": "Hi there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 3,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_tool_use_response_and_cache_usage() -> None:
    resp = _completion(
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": '},
                },
            ],
        },
        "tool_calls",
    )
    usage = Usage(
        input_tokens=1000, output_tokens=40, cached_input_tokens=600, cache_write_tokens=300
    )
    out = ap.response_from_openai(resp, model="m", usage=usage, message_id="msg_2")
    assert out["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 100,
        "output_tokens": 40,
        "cache_read_input_tokens": 600,
        "cache_creation_input_tokens": 300,
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reason_maps_to_stop_reason(finish_reason: str | None, stop_reason: str) -> None:
    resp = _completion({"role": "assistant", "content": "x"}, finish_reason)
    out = ap.response_from_openai(resp, model="m", usage=Usage(), message_id="msg")
    assert out["stop_reason"] == stop_reason


def test_only_first_choice_is_used_and_empty_text_gives_no_block() -> None:
    resp = _completion({"role": "assistant", "content": ""}, "length")
    resp["choices"].append(
        {"index": 1, "message": {"role": "assistant", "content": "other"}, "finish_reason": "stop"}
    )
    out = ap.response_from_openai(resp, model="m", usage=Usage(), message_id="msg")
    assert out["content"] == []
    assert out["stop_reason"] == "max_tokens"


# -- stream translation ----------------------------------------------------------------


def test_stream_of_plain_text() -> None:
    tr = ap.StreamTranslator(model="claude-public", message_id="msg_s1", input_tokens=12)
    frames = tr.start()
    frames += tr.feed(_chunk({"role": "assistant", "content": ""}))
    for piece in ("Hel", "lo", " world"):
        frames += tr.feed(_chunk({"content": piece}))
    frames += tr.feed(_chunk({}, "stop"))
    frames += tr.finish(Usage(input_tokens=12, output_tokens=3))
    events = _events(frames)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start == {
        "id": "msg_s1",
        "type": "message",
        "role": "assistant",
        "model": "claude-public",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert "".join(e["delta"]["text"] for n, e in events if n == "content_block_delta") == (
        "Hello world"
    )
    assert events[6][1] == {"type": "content_block_stop", "index": 0}
    assert events[7][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "output_tokens": 3,
            "input_tokens": 12,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }
    assert tr.finish() == []


def test_stream_of_text_then_two_tool_calls() -> None:
    tr = ap.StreamTranslator(model="m", message_id="msg_s2")
    chunks = [
        _chunk({"role": "assistant", "content": "Let me"}),
        _chunk({"content": " look."}),
        _chunk(_tool_delta(0, id="call_a", name="get_weather")),
        _chunk(_tool_delta(0, args='{"ci')),
        _chunk(_tool_delta(0, args='ty": "Oslo"}')),
        _chunk(_tool_delta(1, id="call_b", name="get_time", args='{"tz"')),
        _chunk(_tool_delta(1, args=': "CET"}')),
        _chunk({}, "tool_calls"),
    ]
    frames = tr.start()
    for chunk in chunks:
        frames += tr.feed(chunk)
    frames += tr.finish()
    events = _events(frames)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [e for n, e in events if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert starts[2]["content_block"]["id"] == "call_b"
    stops = [e["index"] for n, e in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]

    def assembled(index: int, key: str) -> str:
        return "".join(
            e["delta"][key] for n, e in events if n == "content_block_delta" and e["index"] == index
        )

    assert assembled(0, "text") == "Let me look."
    assert orjson.loads(assembled(1, "partial_json")) == {"city": "Oslo"}
    assert orjson.loads(assembled(2, "partial_json")) == {"tz": "CET"}
    assert all(
        e["delta"]["type"] == "input_json_delta"
        for n, e in events
        if n == "content_block_delta" and e["index"] > 0
    )
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"] == {"output_tokens": 0}


def test_stream_usage_chunk_last_feeds_message_delta() -> None:
    tr = ap.StreamTranslator(model="m", message_id="msg_s3", input_tokens=5)
    frames = tr.start()
    frames += tr.feed(_chunk({"content": "ok"}))
    frames += tr.feed(_chunk({}, "length"))
    usage_frames = tr.feed(
        _chunk(
            usage={
                "prompt_tokens": 50,
                "completion_tokens": 7,
                "total_tokens": 57,
                "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 15},
            }
        )
    )
    assert usage_frames == []
    frames += usage_frames + tr.finish()
    events = _events(frames)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {
            "output_tokens": 7,
            "input_tokens": 5,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 15,
        },
    }


def test_stream_without_content_opens_no_block_and_start_is_implicit() -> None:
    tr = ap.StreamTranslator(model="m", message_id="msg_s4")
    frames = tr.feed(_chunk({"role": "assistant", "content": ""}))
    frames += tr.feed(_chunk({"content": None}, "stop"))
    frames += tr.finish()
    assert [name for name, _ in _events(frames)] == [
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    ]
    assert tr.start() == []
    assert tr.feed(_chunk({"content": "late"})) == []


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    tr = ap.StreamTranslator(model="m", message_id="msg_s5")
    frames = tr.start()
    frames += tr.feed(_chunk(_tool_delta(0, id="c1", name="f", args="{}")))
    frames += tr.feed(_chunk({"content": "done"}))
    frames += tr.finish()
    events = _events(frames)
    starts = [e["content_block"]["type"] for n, e in events if n == "content_block_start"]
    assert starts == ["tool_use", "text"]
    assert [e["index"] for n, e in events if n == "content_block_stop"] == [0, 1]


@pytest.mark.parametrize(
    ("err", "error_type"),
    [
        (ATPError("Upstream broke.", status=502), "api_error"),
        (RateLimited("Slow down."), "rate_limit_error"),
        (ATPError("Busy.", status=503), "overloaded_error"),
    ],
)
def test_error_frame_shape(err: ATPError, error_type: str) -> None:
    tr = ap.StreamTranslator(model="m", message_id="msg_e")
    tr.start()
    frame = tr.error(err)
    assert frame == (
        b"event: error\ndata: "
        + orjson.dumps({"type": "error", "error": {"type": error_type, "message": err.message}})
        + b"\n\n"
    )
    assert tr.finish() == []


# -- the official SDK against translated bytes -----------------------------------------

SDK_COMPLETION = {
    "id": "chatcmpl-sdk",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Paris is sunny.",
                "tool_calls": [
                    {
                        "id": "call_sdk",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
}

SDK_STREAM = [
    _chunk({"role": "assistant", "content": "Checking "}),
    _chunk({"content": "the weather."}),
    _chunk(_tool_delta(0, id="call_stream", name="get_weather", args="")),
    _chunk(_tool_delta(0, args='{"city": ')),
    _chunk(_tool_delta(0, args='"Paris", "unit": "C"}')),
    _chunk({}, "tool_calls"),
    _chunk(
        usage={
            "prompt_tokens": 120,
            "completion_tokens": 21,
            "total_tokens": 141,
            "prompt_tokens_details": {"cached_tokens": 100},
        }
    ),
]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def fake_gateway() -> AsyncIterator[tuple[str, list[tuple[dict[str, Any], Any]]]]:
    """A loopback server that translates like ATP's /v1/messages with canned upstream data."""
    received: list[tuple[dict[str, Any], Any]] = []

    async def messages(request: web.Request) -> web.StreamResponse:
        try:
            openai_body, meta = ap.request_to_openai(await request.json())
        except InvalidRequest as err:
            return web.json_response(anthropic_error_body(err, "req_1"), status=err.status)
        received.append((openai_body, meta))
        if not meta.stream:
            out = ap.response_from_openai(
                SDK_COMPLETION,
                model=meta.model,
                usage=Usage(input_tokens=90, output_tokens=12, cached_input_tokens=50),
                message_id="msg_sdk",
            )
            return web.Response(body=orjson.dumps(out), content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        tr = ap.StreamTranslator(model=meta.model, message_id="msg_stream", input_tokens=118)
        frames = tr.start()
        for chunk in SDK_STREAM:
            frames += tr.feed(chunk)
        frames += tr.finish()
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def _client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key="x", timeout=5.0, max_retries=0)


async def test_sdk_parses_a_translated_response(fake_gateway) -> None:
    base_url, received = fake_gateway
    async with _client(base_url) as client:
        message = await client.messages.create(
            model="claude-public",
            max_tokens=100,
            system="Be brief.",
            tools=[WEATHER_TOOL],
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        )
    assert message.id == "msg_sdk"
    assert message.model == "claude-public"
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Paris is sunny."
    assert message.content[1].type == "tool_use"
    assert message.content[1].id == "call_sdk"
    assert message.content[1].input == {"city": "Paris"}
    assert message.usage.input_tokens == 40
    assert message.usage.cache_read_input_tokens == 50
    assert message.usage.output_tokens == 12
    openai_body, meta = received[0]
    assert meta.stream is False
    assert openai_body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert openai_body["tools"][0]["function"]["name"] == "get_weather"


async def test_sdk_streams_text_and_tool_use(fake_gateway) -> None:
    base_url, received = fake_gateway
    async with (
        _client(base_url) as client,
        client.messages.stream(
            model="claude-public",
            max_tokens=100,
            tools=[WEATHER_TOOL],
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        ) as stream,
    ):
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "Checking the weather."
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Checking the weather."
    assert final.content[1].id == "call_stream"
    assert final.content[1].name == "get_weather"
    assert final.content[1].input == {"city": "Paris", "unit": "C"}
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 20
    assert final.usage.cache_read_input_tokens == 100
    assert final.usage.output_tokens == 21
    assert received[0][1].stream is True


async def test_sdk_sees_a_validation_error_with_its_param(fake_gateway) -> None:
    base_url, _ = fake_gateway
    async with _client(base_url) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(
                model="claude-public",
                max_tokens=100,
                messages=[{"role": "user", "content": "hi"}],
                temperature=1.7,
            )
    assert info.value.status_code == 400
    assert info.value.body["error"]["param"] == "temperature"
    assert info.value.body["error"]["type"] == "invalid_request_error"


def test_tool_calls_reported_with_stop_still_say_tool_use() -> None:
    resp = _completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}],
        },
        "stop",
    )
    out = ap.response_from_openai(resp, model="m", usage=Usage(), message_id="msg")
    assert out["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]
    assert out["stop_reason"] == "tool_use"

    tr = ap.StreamTranslator(model="m", message_id="msg")
    tr.feed(_chunk(_tool_delta(0, id="c", name="f", args="{}")))
    tr.feed(_chunk({}, "stop"))
    message_delta = _events(tr.finish())[-2][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
