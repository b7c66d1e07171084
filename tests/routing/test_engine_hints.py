"""Routing hints: body over headers over tenant preferences, validation, detected needs."""

from __future__ import annotations

import pytest

from apps.routing.engine.hints import DEFAULT_EXPECTED_OUTPUT_TOKENS, parse_hints
from apps.routing.snapshot import KeyInfo
from atp_site.lib.errors import InvalidRequest


def key(**prefs) -> KeyInfo:
    return KeyInfo(
        id="k1",
        tenant_id="t1",
        tenant_slug="acme",
        name="default",
        allowed_models=None,
        expires_at=None,
        revoked=False,
        tenant_active=True,
        **prefs,
    )


def chat(content="Hello there", **extra) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def test_body_hints_win_over_headers():
    body = chat(atp={"quality": "high", "max_cost_usd": 0.5, "region": ["EU"]})
    headers = {
        b"x-atp-quality": b"fast",
        b"x-atp-max-cost-usd": b"0.01",
        b"x-atp-latency-slo-ms": b"800",
        b"x-atp-region": b"us",
    }
    request = parse_hints(body, headers, key())
    assert request.tier == "high"
    assert request.max_cost_usd == 0.5
    assert request.regions == ("eu",)
    assert request.latency_slo_ms == 800.0
    assert request.sources["quality"] == "body"
    assert request.sources["latency_slo_ms"] == "header"


def test_headers_are_parsed():
    headers = {
        b"x-atp-quality": b"Balanced",
        b"x-atp-region": b"eu-west, us-east",
        b"x-atp-required-capabilities": b"vision,json",
        b"x-atp-carbon-aware": b"true",
    }
    request = parse_hints(chat(), headers, key())
    assert request.tier == "balanced"
    assert request.regions == ("eu-west", "us-east")
    assert request.required_capabilities == {"vision", "json"}
    assert request.carbon_aware is True


@pytest.mark.parametrize(
    ("atp", "headers", "param"),
    [
        ({"quality": "ultra"}, {}, "atp.quality"),
        ({"max_cost_usd": -1}, {}, "atp.max_cost_usd"),
        ({"max_cost_usd": True}, {}, "atp.max_cost_usd"),
        ({"latency_slo_ms": "soon"}, {}, "atp.latency_slo_ms"),
        ({"region": [1]}, {}, "atp.region"),
        ({"required_capabilities": ["telepathy"]}, {}, "atp.required_capabilities"),
        ({"carbon_aware": "maybe"}, {}, "atp.carbon_aware"),
        ({}, {b"x-atp-max-cost-usd": b"nan"}, "X-ATP-Max-Cost-USD"),
        ({}, {b"x-atp-quality": b"best"}, "X-ATP-Quality"),
        ({}, {b"x-atp-latency-slo-ms": b"0"}, "X-ATP-Latency-SLO-MS"),
        ({}, {b"x-atp-region": b"eu,,us"}, "X-ATP-Region"),
        ({}, {b"x-atp-carbon-aware": b"2"}, "X-ATP-Carbon-Aware"),
    ],
)
def test_invalid_hint_names_the_param(atp, headers, param):
    with pytest.raises(InvalidRequest) as caught:
        parse_hints(chat(atp=atp), headers, key())
    assert caught.value.param == param
    assert caught.value.status == 400


def test_atp_must_be_an_object():
    with pytest.raises(InvalidRequest) as caught:
        parse_hints(chat(atp="fast"), {}, key())
    assert caught.value.param == "atp"


def test_tenant_preferences_apply_when_the_request_is_silent():
    tenant = key(cost_mode="aggressive", preferred_regions=("EU",), carbon_aware=True)
    request = parse_hints(chat(), {}, tenant)
    assert request.cost_mode == "aggressive"
    assert request.preferred_regions == ("eu",)
    assert request.regions == ()  # a preference, not residency
    assert request.carbon_aware is True
    assert request.sources["carbon_aware"] == "tenant"


def test_request_hints_override_tenant_preferences():
    tenant = key(cost_mode="aggressive", carbon_aware=True)
    request = parse_hints(chat(atp={"quality": "high", "carbon_aware": False}), {}, tenant)
    assert request.cost_mode == "balanced"
    assert request.carbon_aware is False


def test_needs_are_detected():
    body = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "response_format": {"type": "json_object"},
        "max_tokens": 1000,
    }
    request = parse_hints(body, {}, key())
    assert request.detected_needs == {"tools", "vision", "json"}
    assert request.required_capabilities >= {"tools", "vision", "json"}
    assert request.prompt_text == "What is in this picture?"
    assert request.min_context_window == request.prompt_tokens + 1000
    assert request.expected_output_tokens == 1000


def test_plain_request_needs_nothing_and_expects_a_typical_answer():
    request = parse_hints(chat(response_format={"type": "text"}), {}, key())
    assert request.detected_needs == frozenset()
    assert request.prompt_tokens > 0
    assert request.expected_output_tokens == DEFAULT_EXPECTED_OUTPUT_TOKENS
    assert request.min_context_window == request.prompt_tokens


def test_given_prompt_tokens_are_not_counted_again():
    request = parse_hints(chat("x " * 1000), {}, key(), prompt_tokens=7)
    assert request.prompt_tokens == 7


def test_long_prompt_text_keeps_head_and_tail():
    text = "Summarize this. " + "filler " * 2000 + " THE END"
    request = parse_hints(chat(text), {}, key())
    assert request.prompt_text.startswith("Summarize this.")
    assert request.prompt_text.endswith("THE END")
    assert len(request.prompt_text) <= 4001
