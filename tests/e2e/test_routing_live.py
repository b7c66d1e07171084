"""Two live gateway processes on one Redis act as one router: learning and cache shared."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_feedback_and_cache_cross_processes(live):
    first = live.start_server()
    second = live.start_server()
    live.extra_servers.extend([first, second])
    headers = {"authorization": f"Bearer {live.key}"}
    rid = f"cross-{uuid.uuid4().hex[:12]}"
    body = {
        "model": "team/sim",
        "temperature": 0,
        "messages": [{"role": "user", "content": f"Summarise ticket {rid} in one line."}],
    }
    answered = httpx.post(
        f"{first.base_url}/v1/chat/completions",
        json=body,
        headers={**headers, "x-request-id": rid},
        timeout=20,
    )
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-atp-cache"] == "miss"
    # The other process answers the same request from the shared cache...
    deadline = time.monotonic() + 5
    while True:
        again = httpx.post(
            f"{second.base_url}/v1/chat/completions", json=body, headers=headers, timeout=20
        )
        if again.headers.get("x-atp-cache") == "hit" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert again.headers["x-atp-cache"] == "hit"
    assert (
        again.json()["choices"][0]["message"]["content"]
        == (answered.json()["choices"][0]["message"]["content"])
    )
    # ...and takes the feedback for the first process's request into the shared bandit.
    rated = httpx.post(
        f"{second.base_url}/v1/feedback",
        json={"request_id": rid, "score": 0.8},
        headers=headers,
        timeout=20,
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["learned"] is True
    assert rated.json()["model"] == answered.headers["x-atp-model"]
