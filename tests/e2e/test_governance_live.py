"""Governance against a live ATP through the official SDKs: a tenant whose policies (from
the configuration file) mask contact details and deny secrets. The fake upstreams record
what they received, so the tests show the provider never saw a masked value while the
caller got it back, streamed or not, through OpenAI's and Anthropic's SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.fakes.anthropic_server import AnthropicReply
from tests.fakes.openai_server import Script

pytestmark = pytest.mark.live

EMAIL = "lena.fischer@example.org"
PHONE = "+49 30 901820"
# A made-up key in the AWS access key format.
AWS_KEY = "AKIAQ4M7ZP2XLW9RT3VK"


@pytest.fixture
def oai(live) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live.base_url}/v1", api_key=live.governed_key, max_retries=0, timeout=20
    )


@pytest.fixture
def claude(live) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=live.base_url, api_key=live.governed_key, max_retries=0, timeout=20
    )


def _sent_to_openai(live) -> str:
    return json.dumps(live.openai_upstream.bodies("/chat/completions")[-1])


def test_openai_sdk_gets_its_values_back_while_the_provider_sees_placeholders(oai, live):
    live.openai_upstream.enqueue(Script(text="I will mail [EMAIL_1] and call [PHONE_1]."))
    completion = oai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": f"Contact {EMAIL} or {PHONE}."}],
    )
    assert completion.choices[0].message.content == f"I will mail {EMAIL} and call {PHONE}."
    sent = _sent_to_openai(live)
    assert EMAIL not in sent and PHONE not in sent and "[EMAIL_1]" in sent


def test_openai_sdk_stream_is_restored_across_chunks(oai, live):
    live.openai_upstream.enqueue(
        Script(text="Dear [EMAIL_1], we called [PHONE_1] twice. Bye [EMAIL_1].", chunks=23)
    )
    stream = oai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": f"Write to {EMAIL}, phone {PHONE}."}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"Dear {EMAIL}, we called {PHONE} twice. Bye {EMAIL}."
    assert EMAIL not in _sent_to_openai(live)


def test_anthropic_sdk_through_an_anthropic_provider(claude, live):
    live.anthropic_upstream.enqueue(AnthropicReply(text="Noted, [EMAIL_1]."))
    message = claude.messages.create(
        model="claude-test",
        max_tokens=50,
        system=f"The customer's address is {EMAIL}.",
        messages=[{"role": "user", "content": f"Greet {EMAIL}"}],
    )
    assert message.content[0].text == f"Noted, {EMAIL}."
    received = json.dumps([r.body for r in live.anthropic_upstream.requests[-1:]])
    assert EMAIL not in received and "[EMAIL_1]" in received


def test_a_denied_request_reaches_both_sdks_as_permission_errors(oai, claude):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"key {AWS_KEY}"}]
        )
    assert caught.value.body["code"] == "policy_denied"
    assert "no-secrets" in caught.value.body["message"]
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        claude.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": f"key {AWS_KEY}"}],
        )
    assert "no-secrets" in str(refused.value)
