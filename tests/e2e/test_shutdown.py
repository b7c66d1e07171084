"""A graceful shutdown writes every queued request log row."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest

pytestmark = pytest.mark.live


def test_sigterm_drains_the_write_behind_queue(live):
    # A flush interval far longer than the test: only the shutdown drain can write these.
    server = live.start_server(ATP_WRITE_BEHIND_INTERVAL="300", ATP_WRITE_BEHIND_BATCH="100000")
    live.extra_servers.append(server)
    ids = [f"drain-{uuid.uuid4().hex[:12]}" for _ in range(25)]
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for rid in ids:
            resp = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {live.key}", "x-request-id": rid},
                json={"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert resp.status_code == 200
    assert live.log_rows(ids, timeout=0.5) == {}
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert server.stop() in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete" in server.log()
    rows = live.log_rows(ids, timeout=5)
    assert len(rows) == 25
