"""An upstream rate limit with no candidate left reaches the official SDKs as their
rate-limit error (429 with Retry-After), on /v1/chat/completions and /v1/messages."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes.anthropic_server import AnthropicReply
from tests.fakes.openai_server import Script

pytestmark = pytest.mark.live

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def oai(live) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live.base_url}/v1", api_key=live.key, max_retries=0, timeout=20
    )


@pytest.fixture
def claude(live) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key=live.key, max_retries=0, timeout=20)


def test_openai_sdk_gets_rate_limit_error_with_the_upstreams_retry_after(oai, live):
    live.openai_upstream.enqueue(Script(status=429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "3"
    assert err.code == "upstream_rate_limited" and err.type == "rate_limit_error"
    assert err.body["retryable"] is True and err.body["retry_after"] == 3


def test_openai_sdk_gets_a_default_retry_after_when_the_upstream_gave_none(oai, live):
    live.anthropic_upstream.enqueue(AnthropicReply(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="claude-test", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "1"


def test_an_upstream_retry_after_beyond_the_bound_is_capped(oai, live):
    live.openai_upstream.enqueue(Script(status=429, retry_after=86400))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert info.value.response.headers["retry-after"] == "60"


def test_a_streamed_request_gets_the_same_rate_limit_error(oai, live):
    live.openai_upstream.enqueue(Script(status=429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    assert info.value.response.headers["retry-after"] == "2"


@pytest.mark.parametrize("model", ["claude-test", "gpt-test"])
def test_anthropic_sdk_gets_rate_limit_error_on_messages(claude, live, model):
    if model == "claude-test":
        live.anthropic_upstream.enqueue(
            AnthropicReply(status=429, error_message="rate limited", retry_after=4)
        )
    else:
        live.openai_upstream.enqueue(Script(status=429, retry_after=4))
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model=model, max_tokens=10, messages=MESSAGES)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "4"
    body = err.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"


def test_upstream_failures_keep_their_5xx(oai, live):
    live.openai_upstream.enqueue(Script(status=503))
    with pytest.raises(openai.InternalServerError) as unavailable:
        oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert unavailable.value.status_code == 503
    assert unavailable.value.response.headers["retry-after"] == "1"
    live.openai_upstream.enqueue(Script(status=500))
    with pytest.raises(openai.InternalServerError) as failed:
        oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert failed.value.status_code == 502
