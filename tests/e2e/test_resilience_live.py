"""Two live gateway processes on one Redis act as one gateway for circuit breakers."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from tests.fakes.openai_server import Script

pytestmark = [pytest.mark.live, pytest.mark.redis]

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_a_breaker_opened_by_one_process_stops_calls_from_another(live):
    # Both processes share a Redis prefix of their own, so the main live server's breakers
    # (and the other live tests) are not affected.
    env = {
        "ATP_REDIS_PREFIX": f"atp-breaker-{uuid.uuid4().hex[:8]}",
        "ATP_BREAKER_ENABLED": "true",
        "ATP_RETRY_MAX_ATTEMPTS": "2",
        "ATP_BREAKER_MIN_REQUESTS": "2",
        "ATP_BREAKER_COOLDOWN_SECONDS": "120",
    }
    first = live.start_server(**env)
    second = live.start_server(**env)
    headers = {"authorization": f"Bearer {live.key}"}
    try:
        upstream = live.openai_upstream
        upstream.enqueue(Script(status=500), Script(status=500))
        resp = httpx.post(
            f"{first.base_url}/v1/chat/completions", json=CHAT, headers=headers, timeout=20
        )
        assert resp.status_code == 502, resp.text
        assert len(resp.json()["error"]["atp"]["attempts"]) == 2
        calls = len(upstream.bodies("/chat/completions"))
        resp = httpx.post(
            f"{second.base_url}/v1/chat/completions", json=CHAT, headers=headers, timeout=20
        )
        assert resp.status_code == 503, resp.text
        error = resp.json()["error"]
        assert error["code"] == "circuit_open" and error["retryable"] is True
        assert 0 < error["retry_after"] <= 120
        assert len(upstream.bodies("/chat/completions")) == calls  # never called
    finally:
        first.stop()
        second.stop()
