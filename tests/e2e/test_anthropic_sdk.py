"""The official Anthropic SDK against ATP's /v1/messages, served by any provider."""

from __future__ import annotations

import anthropic
import pytest

from tests.fakes.openai_server import Script

pytestmark = pytest.mark.live


@pytest.fixture
def client(live) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key=live.key, max_retries=0, timeout=20)


@pytest.mark.parametrize(
    "model", ["sim-fast", "claude-test", "gpt-test", "gemini-test", "ollama-test"]
)
def test_messages_create(client, model):
    message = client.messages.create(
        model=model,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize(
    "model", ["sim-fast", "claude-test", "gpt-test", "gemini-test", "ollama-test"]
)
def test_messages_stream(client, model):
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")


def test_tool_use_from_an_openai_upstream_reaches_the_sdk_as_tool_use(client, live):
    live.openai_upstream.enqueue(
        Script(tool_calls=[{"id": "call_9", "name": "lookup", "arguments": {"q": "atp"}}])
    )
    tools = [
        {
            "name": "lookup",
            "description": "Search",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    with client.messages.stream(
        model="gpt-test",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "Find atp"}],
    ) as stream:
        final = stream.get_final_message()
    block = next(b for b in final.content if b.type == "tool_use")
    assert block.name == "lookup" and block.input == {"q": "atp"}
    assert final.stop_reason == "tool_use"


def test_errors_reach_the_sdk_in_anthropic_shape(client, live):
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    bad = anthropic.Anthropic(
        base_url=live.base_url, api_key="atp_wrong-key-xxxxxxxxxxxxx", max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(
            model="sim-fast", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
