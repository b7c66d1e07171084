"""The simulator adapter: deterministic answers, OpenAI shapes, latency and failures."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
from typing import Any

import jsonschema
import pytest

from apps.providers import tokens
from apps.providers.adapters import get_adapter
from apps.providers.adapters.base import Target
from apps.providers.adapters.simulator import SimulatorAdapter
from apps.providers.exceptions import UpstreamError
from atp_site.lib.errors import InvalidRequest

MODEL = "sim-large"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}, "exact": {"type": "boolean"}},
            "required": ["zone", "exact"],
        },
    },
}

PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "score": {"type": "number", "minimum": 0.5, "maximum": 1.5},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
        "level": {"enum": ["low", "mid", "high"]},
        "address": {"$ref": "#/$defs/address"},
        "nickname": {"type": ["string", "null"]},
    },
    "required": ["name", "age", "score", "active", "tags", "level", "address"],
    "additionalProperties": False,
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "zip": {"type": "integer"}},
            "required": ["street", "zip"],
        }
    },
}


def make_target(**options: Any) -> Target:
    return Target(
        provider_id="p-sim",
        provider_name="Simulator",
        kind="simulator",
        base_url="",
        upstream_model=MODEL,
        options=options,
    )


def chat_body(text: str = "What does a gateway do?", **extra: Any) -> dict[str, Any]:
    return {"model": "any", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def adapter() -> SimulatorAdapter:
    return SimulatorAdapter()


async def answer(adapter: SimulatorAdapter, body: dict[str, Any], **options: Any) -> dict:
    result = await adapter.chat(make_target(**options), body)
    return result.response


async def collect(adapter: SimulatorAdapter, body: dict[str, Any], **options: Any) -> list:
    return [chunk async for chunk in adapter.chat_stream(make_target(**options), body)]


def streamed_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        for choice in chunk["choices"]
        if choice["index"] == index
    )


def test_registry_serves_the_simulator_for_its_kind():
    assert isinstance(get_adapter("simulator"), SimulatorAdapter)


async def test_same_request_gets_the_same_answer(adapter):
    first = await answer(adapter, chat_body(seed=7))
    second = await answer(SimulatorAdapter(), chat_body(seed=7))
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"]


async def test_seed_prompt_and_model_each_change_the_answer(adapter):
    base = (await answer(adapter, chat_body(seed=1)))["choices"][0]["message"]["content"]
    other_seed = await answer(adapter, chat_body(seed=2))
    other_prompt = await answer(adapter, chat_body("Something else", seed=1))
    other_model = await adapter.chat(
        Target("p", "Simulator", "simulator", "", "sim-small"), chat_body(seed=1)
    )
    assert other_seed["choices"][0]["message"]["content"] != base
    assert other_prompt["choices"][0]["message"]["content"] != base
    assert other_model.response["choices"][0]["message"]["content"] != base


async def test_answer_is_a_chat_completion_of_readable_sentences(adapter):
    response = await answer(adapter, chat_body())
    assert response["object"] == "chat.completion"
    assert response["id"].startswith("chatcmpl-sim-")
    assert response["model"] == MODEL
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith(f"Simulated answer from {MODEL}: ")
    assert content.endswith(".")
    completion = tokens.count_text(content)
    assert 30 <= completion <= 120
    assert response["usage"] == {
        "prompt_tokens": tokens.estimate_prompt_tokens(chat_body()),
        "completion_tokens": completion,
        "total_tokens": tokens.estimate_prompt_tokens(chat_body()) + completion,
    }


async def test_default_length_varies_with_the_prompt(adapter):
    lengths = set()
    for number in range(8):
        response = await answer(adapter, chat_body(f"question {number}"))
        lengths.add(response["usage"]["completion_tokens"])
    assert len(lengths) > 1
    assert all(30 <= length <= 120 for length in lengths)


@pytest.mark.parametrize("length", [1, 7, 50, 333])
async def test_output_tokens_option_fixes_the_length(adapter, length):
    result = await adapter.chat(make_target(output_tokens=length), chat_body())
    content = result.response["choices"][0]["message"]["content"]
    assert tokens.count_text(content) == length
    assert result.usage.output_tokens == length
    assert result.response["choices"][0]["finish_reason"] == "stop"


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(adapter):
    full = await answer(adapter, chat_body(), output_tokens=60)
    cut = await answer(adapter, chat_body(max_tokens=12), output_tokens=60)
    content = cut["choices"][0]["message"]["content"]
    assert cut["choices"][0]["finish_reason"] == "length"
    assert tokens.count_text(content) == 12
    assert full["choices"][0]["message"]["content"].startswith(content)
    assert cut["usage"]["completion_tokens"] == 12


async def test_the_smaller_of_max_completion_tokens_and_max_tokens_wins(adapter):
    body = chat_body(max_tokens=20, max_completion_tokens=9)
    response = await answer(adapter, body, output_tokens=60)
    assert response["usage"]["completion_tokens"] == 9


async def test_a_limit_above_the_answer_length_leaves_it_whole(adapter):
    response = await answer(adapter, chat_body(max_tokens=500), output_tokens=40)
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"]["completion_tokens"] == 40


async def test_bad_max_tokens_is_rejected_with_its_param(adapter):
    with pytest.raises(InvalidRequest) as caught:
        await answer(adapter, chat_body(max_tokens=0))
    assert caught.value.param == "max_tokens"


async def test_n_choices_have_distinct_texts(adapter):
    response = await answer(adapter, chat_body(n=3))
    choices = response["choices"]
    assert [choice["index"] for choice in choices] == [0, 1, 2]
    texts = [choice["message"]["content"] for choice in choices]
    assert len(set(texts)) == 3
    assert response["usage"]["completion_tokens"] == sum(map(tokens.count_text, texts))


async def test_stop_sequence_ends_the_answer_before_it(adapter):
    full = (await answer(adapter, chat_body(), output_tokens=80))["choices"][0]
    content = full["message"]["content"]
    words = content.split(" ")
    stop = " " + words[10]
    response = await answer(adapter, chat_body(stop=["@@never@@", stop]), output_tokens=80)
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == content[: content.index(stop)]
    assert stop not in choice["message"]["content"]
    assert response["usage"]["completion_tokens"] == tokens.count_text(choice["message"]["content"])


async def test_json_object_mode_answers_with_a_json_object(adapter):
    body = chat_body("Reply in JSON", response_format={"type": "json_object"})
    content = (await answer(adapter, body))["choices"][0]["message"]["content"]
    value = json.loads(content)
    assert isinstance(value, dict)
    assert value["answer"].startswith("Simulated answer from")


async def test_json_schema_mode_answers_with_a_value_matching_the_schema(adapter):
    for number in range(10):
        body = chat_body(
            f"person {number}",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
            },
        )
        content = (await answer(adapter, body))["choices"][0]["message"]["content"]
        value = json.loads(content)
        jsonschema.validate(value, PERSON_SCHEMA)
        assert set(PERSON_SCHEMA["required"]) <= set(value)


async def test_tools_and_a_user_turn_get_a_call_to_the_first_tool(adapter):
    body = chat_body("Weather in Paris?", tools=[WEATHER_TOOL, TIME_TOOL])
    response = await answer(adapter, body)
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])
    assert response["usage"]["completion_tokens"] == tokens.count_text(
        "get_weather"
    ) + tokens.count_text(call["function"]["arguments"])


async def test_named_tool_choice_picks_that_tool(adapter):
    body = chat_body(
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = (await answer(adapter, body))["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_time"
    jsonschema.validate(
        json.loads(call["function"]["arguments"]), TIME_TOOL["function"]["parameters"]
    )


async def test_unknown_named_tool_is_rejected(adapter):
    body = chat_body(
        tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}
    )
    with pytest.raises(InvalidRequest) as caught:
        await answer(adapter, body)
    assert caught.value.param == "tool_choice"


async def test_tool_choice_none_gets_text(adapter):
    body = chat_body(tools=[WEATHER_TOOL], tool_choice="none")
    choice = (await answer(adapter, body))["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Simulated answer from")
    assert "tool_calls" not in choice["message"]


async def test_tool_result_gets_a_text_answer_mentioning_it(adapter):
    first = await answer(adapter, chat_body("Weather in Paris?", tools=[WEATHER_TOOL]))
    assistant = first["choices"][0]["message"]
    call_id = assistant["tool_calls"][0]["id"]
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            assistant,
            {"role": "tool", "tool_call_id": call_id, "content": "Sunny, 21 degrees"},
        ],
        "tools": [WEATHER_TOOL],
    }
    choice = (await answer(adapter, body))["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert 'the tool get_weather returned "Sunny, 21 degrees"' in choice["message"]["content"]


async def test_image_parts_are_accepted_and_count_85_tokens(adapter):
    text_only = chat_body()
    with_image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does a gateway do?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    }
    plain = await answer(adapter, text_only)
    multimodal = await answer(adapter, with_image)
    assert multimodal["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] + 85


async def test_echo_option_quotes_the_last_user_message(adapter):
    response = await answer(adapter, chat_body("my name is <PERSON_1>"), echo=True)
    content = response["choices"][0]["message"]["content"]
    assert 'you said "my name is <PERSON_1>"' in content


# -- streaming ----------------------------------------------------------------------------


async def test_stream_has_openai_chunk_shape(adapter):
    chunks = await collect(adapter, chat_body())
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == chunks[0]["id"]
        assert chunk["id"].startswith("chatcmpl-sim-")
        assert chunk["model"] == MODEL
        assert isinstance(chunk["created"], int)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    content_chunks = chunks[1:-2]
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content_chunks)
    assert all(len(c["choices"][0]["delta"]["content"].split()) == 1 for c in content_chunks)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    finish = chunks[-2]["choices"][0]
    assert finish["delta"] == {}
    assert finish["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0


async def test_stream_assembles_to_the_non_streamed_answer(adapter):
    body = chat_body(n=2, max_tokens=25, seed=3)
    response = await answer(adapter, body)
    chunks = await collect(adapter, body)
    for choice in response["choices"]:
        assert streamed_text(chunks, choice["index"]) == choice["message"]["content"]
        finishes = [
            c["finish_reason"]
            for chunk in chunks
            for c in chunk["choices"]
            if c["index"] == choice["index"] and c["finish_reason"]
        ]
        assert finishes == [choice["finish_reason"]]
    assert chunks[-1]["usage"] == response["usage"]


async def test_streamed_tool_call_assembles_to_the_same_call(adapter):
    body = chat_body(tools=[WEATHER_TOOL])
    [call] = (await answer(adapter, body))["choices"][0]["message"]["tool_calls"]
    chunks = await collect(adapter, body)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [
        part
        for chunk in chunks
        for choice in chunk["choices"]
        for part in choice["delta"].get("tool_calls", [])
    ]
    header = deltas[0]
    assert header["index"] == 0
    assert header["id"] == call["id"]
    assert header["type"] == "function"
    assert header["function"]["name"] == "get_weather"
    assert len(deltas) > 2
    arguments = "".join(part["function"]["arguments"] for part in deltas)
    assert arguments == call["function"]["arguments"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []


async def test_stream_breaks_loudly_after_the_configured_chunks(adapter):
    received = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in adapter.chat_stream(make_target(fail_after_chunks=4), chat_body()):
            received.append(chunk)
    assert len(received) == 4
    assert caught.value.retryable
    assert "stream" in caught.value.message


async def test_failure_rate_one_always_fails_with_a_retryable_503(adapter):
    target = make_target(failure_rate=1.0)
    for _ in range(5):
        with pytest.raises(UpstreamError) as caught:
            await adapter.chat(target, chat_body())
        error = caught.value
        assert error.status == 503
        assert error.code == "upstream_unavailable"
        assert error.retryable
        assert error.message == "simulated upstream failure"
    with pytest.raises(UpstreamError):
        await collect(adapter, chat_body(), failure_rate=1.0)


async def test_failure_rate_zero_never_fails(adapter):
    for _ in range(50):
        await adapter.chat(make_target(failure_rate=0.0), chat_body())


async def test_ttft_delays_the_first_chunk(adapter):
    started = time.monotonic()
    stream = adapter.chat_stream(make_target(ttft_ms=30), chat_body())
    first = await anext(stream)
    elapsed = time.monotonic() - started
    await stream.aclose()
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert elapsed >= 0.03


async def test_non_streamed_answer_waits_for_ttft_and_latency(adapter):
    started = time.monotonic()
    await adapter.chat(make_target(ttft_ms=15, latency_ms=20), chat_body())
    assert time.monotonic() - started >= 0.035


async def test_tokens_per_second_paces_the_stream(adapter):
    started = time.monotonic()
    await collect(adapter, chat_body(), output_tokens=20, tokens_per_second=500)
    # 20 tokens at 500 per second take at least 40 ms.
    assert time.monotonic() - started >= 0.04


async def test_invalid_options_fall_back_to_defaults(adapter):
    response = await answer(adapter, chat_body(), ttft_ms="soon", failure_rate=-1)
    assert response["choices"][0]["finish_reason"] == "stop"


# -- embeddings ---------------------------------------------------------------------------


def vectors(result) -> list[list[float]]:
    return [item["embedding"] for item in result.response["data"]]


async def test_embeddings_are_deterministic_unit_vectors(adapter):
    target = make_target()
    first = await adapter.embeddings(target, {"input": ["hello world", "other text"]})
    again = await SimulatorAdapter().embeddings(target, {"input": ["hello world", "other text"]})
    assert vectors(first) == vectors(again)
    one, two = vectors(first)
    assert one != two
    for vector in (one, two):
        assert len(vector) == 256
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-5)
    response = first.response
    assert response["object"] == "list"
    assert response["model"] == MODEL
    assert [item["index"] for item in response["data"]] == [0, 1]
    assert response["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert first.usage.input_tokens == 4


async def test_embedding_dimension_comes_from_request_then_options(adapter):
    from_request = await adapter.embeddings(
        make_target(dimensions=64), {"input": "hi", "dimensions": 32}
    )
    from_options = await adapter.embeddings(make_target(dimensions=64), {"input": "hi"})
    assert len(vectors(from_request)[0]) == 32
    assert len(vectors(from_options)[0]) == 64


async def test_texts_sharing_words_have_closer_embeddings(adapter):
    result = await adapter.embeddings(
        make_target(),
        {"input": ["the cat sat on the mat", "the cat sat on a mat", "quarterly tax filing"]},
    )
    base, near, far = vectors(result)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(base, near) > cosine(base, far) + 0.3


async def test_token_inputs_embed_like_their_text(adapter):
    ids = tokens.encode_text("hello world")
    result = await adapter.embeddings(make_target(), {"input": ids, "dimensions": 16})
    nested = await adapter.embeddings(make_target(), {"input": [ids, ids], "dimensions": 16})
    text = await adapter.embeddings(make_target(), {"input": "hello world", "dimensions": 16})
    assert vectors(result) == vectors(text)
    assert vectors(nested) == vectors(text) * 2
    assert result.response["usage"]["prompt_tokens"] == len(ids)


async def test_base64_embeddings_decode_to_the_same_floats(adapter):
    body = {"input": ["hello world", "second"], "dimensions": 48}
    floats = await adapter.embeddings(make_target(), body)
    encoded = await adapter.embeddings(make_target(), {**body, "encoding_format": "base64"})
    for plain, item in zip(vectors(floats), encoded.response["data"], strict=True):
        raw = base64.b64decode(item["embedding"])
        assert len(raw) == 48 * 4
        assert list(struct.unpack("<48f", raw)) == plain


@pytest.mark.parametrize(
    "bad_input",
    [None, "", [], [""], [1.5], [["a"]], [[]], {"text": "x"}, [True], [-1], [[10**9]], [1, "a"]],
)
async def test_malformed_embedding_input_is_rejected(adapter, bad_input):
    with pytest.raises(InvalidRequest) as caught:
        await adapter.embeddings(make_target(), {"input": bad_input})
    assert caught.value.param == "input"


@pytest.mark.parametrize("bad_dimensions", [0, -3, "12", 10**6, True])
async def test_bad_embedding_dimensions_are_rejected(adapter, bad_dimensions):
    with pytest.raises(InvalidRequest) as caught:
        await adapter.embeddings(make_target(), {"input": "x", "dimensions": bad_dimensions})
    assert caught.value.param == "dimensions"


async def test_embedding_failures_follow_failure_rate(adapter):
    with pytest.raises(UpstreamError) as caught:
        await adapter.embeddings(make_target(failure_rate=1), {"input": "x"})
    assert caught.value.status == 503
