"""Response cache: cached answers replayed as streams, streams rebuilt as answers."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from apps.routing.cache import StreamCollector, replay_chunks
from apps.routing.cache.replay import split_text
from apps.routing.pipeline.results import SSE_DONE, sse

TEXT = (
    "Paris is the capital of France. It sits on the Seine and has been the country's "
    "capital for most of its history.\n\nAnything else?"
)

ANSWER = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-x",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": TEXT, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
}

TOOL_ANSWER = {
    "id": "chatcmpl-tools",
    "object": "chat.completion",
    "created": 1_700_000_001,
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Paris", "unit": "celsius", "days": 3}',
                        },
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
}


def test_split_text_keeps_every_character_in_word_sized_pieces():
    pieces = split_text(TEXT)
    assert "".join(pieces) == TEXT
    assert len(pieces) > 3
    assert all(len(p) < 60 for p in pieces)
    assert split_text("") == []


def test_replayed_chunks_have_the_openai_chunk_shape():
    chunks = replay_chunks(ANSWER)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["id"] == "chatcmpl-abc"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1_700_000_000
        assert chunk["system_fingerprint"] == "fp_1"
        assert "usage" not in chunk
    first, last = chunks[0]["choices"][0], chunks[-1]["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": ""}
    assert last["delta"] == {} and last["finish_reason"] == "stop"
    middle = [c["choices"][0] for c in chunks[1:-1]]
    assert all(c["finish_reason"] is None for c in middle)
    assert "".join(c["delta"]["content"] for c in middle) == TEXT


def test_usage_chunk_comes_last_when_asked_for():
    chunks = replay_chunks(ANSWER, include_usage=True)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == ANSWER["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert len(chunks) == len(replay_chunks(ANSWER)) + 1


def test_tool_calls_replay_as_heads_then_argument_pieces():
    chunks = replay_chunks(TOOL_ANSWER)
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    heads = [c for c in calls if "id" in c]
    assert [(h["index"], h["id"], h["function"]["name"]) for h in heads] == [
        (0, "call_1", "get_weather"),
        (1, "call_2", "get_time"),
    ]
    for index, call in enumerate(TOOL_ANSWER["choices"][0]["message"]["tool_calls"]):
        args = "".join(c["function"]["arguments"] for c in calls if c["index"] == index)
        assert args == call["function"]["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_several_choices_each_get_their_own_stream():
    two = {
        **ANSWER,
        "choices": [
            {**ANSWER["choices"][0], "index": 0},
            {
                **ANSWER["choices"][0],
                "index": 1,
                "message": {"role": "assistant", "content": "Paris."},
            },
        ],
    }
    collector = StreamCollector()
    for chunk in replay_chunks(two):
        collector.add(chunk)
    rebuilt = collector.completion(usage=two["usage"])
    assert [c["message"]["content"] for c in rebuilt["choices"]] == [TEXT, "Paris."]


def _sdk_stream(answer, include_usage):
    """Stream `answer` through the official openai SDK, from SSE bytes to its own objects."""
    payload = b"".join(sse(c) for c in replay_chunks(answer, include_usage=include_usage))
    payload += SSE_DONE

    def handler(request: httpx.Request) -> httpx.Response:
        sent = orjson.loads(request.content)
        assert sent["stream"] is True
        return httpx.Response(200, content=payload, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )
    options = {"include_usage": True} if include_usage else None
    kwargs = {"stream_options": options} if options else {}
    return client, kwargs


@pytest.mark.parametrize("answer", [ANSWER, TOOL_ANSWER], ids=["text", "tools"])
def test_openai_sdk_accumulates_the_replay_into_the_cached_answer(answer):
    client, kwargs = _sdk_stream(answer, include_usage=True)
    messages = [{"role": "user", "content": "hi"}]
    with client.beta.chat.completions.stream(model="gpt-x", messages=messages, **kwargs) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    message = answer["choices"][0]["message"]
    assert final.id == answer["id"]
    assert final.choices[0].finish_reason == answer["choices"][0]["finish_reason"]
    assert final.choices[0].message.content == message["content"]
    got_calls = [
        (t.id, t.function.name, t.function.arguments)
        for t in final.choices[0].message.tool_calls or ()
    ]
    want_calls = [
        (t["id"], t["function"]["name"], t["function"]["arguments"])
        for t in message.get("tool_calls") or ()
    ]
    assert got_calls == want_calls
    assert final.usage.model_dump(exclude_none=True) == answer["usage"]


def test_openai_sdk_plain_stream_reads_every_chunk():
    client, _ = _sdk_stream(ANSWER, include_usage=False)
    stream = client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == TEXT


def test_stream_collector_rebuilds_a_live_stream_for_the_cache():
    for answer in (ANSWER, TOOL_ANSWER):
        collector = StreamCollector()
        for chunk in replay_chunks(answer, include_usage=True):
            collector.add(chunk)
        rebuilt = collector.completion()
        assert rebuilt["usage"] == answer["usage"]
        assert rebuilt["choices"][0]["finish_reason"] == answer["choices"][0]["finish_reason"]
        want = answer["choices"][0]["message"]
        got = rebuilt["choices"][0]["message"]
        assert got["content"] == want["content"]
        assert got.get("tool_calls") == want.get("tool_calls")
        assert replay_chunks(rebuilt) == replay_chunks(
            {**answer, "system_fingerprint": answer.get("system_fingerprint")}
        )
