"""Structured logs of a live server (ATP_LOG_FORMAT=json): one JSON object per line, and
one record per finished /v1 request with its ids, tenant, route and outcome, never a key
or a prompt."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.live

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _records(server) -> list[dict]:
    records = []
    for line in server.log().splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_json_logs_carry_each_requests_ids_and_outcome(live):
    server = live.start_server(ATP_LOG_FORMAT="json")
    live.extra_servers.append(server)
    prompt = f"a prompt that must stay out of the logs {uuid.uuid4().hex}"
    resp = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        headers={
            "Authorization": f"Bearer {live.key}",
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        },
        json={"model": "team/sim", "messages": [{"role": "user", "content": prompt}]},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    request_id = resp.headers["x-request-id"]
    refused = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        headers={"Authorization": "Bearer atp_wrong-key-for-the-log-test"},
        json={"model": "team/sim", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert refused.status_code == 401

    deadline = time.monotonic() + 10
    while True:
        mine = [r for r in _records(server) if r.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    server.stop()
    log = server.log()
    # Every line the server wrote is a JSON object (the start-up lines included).
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(line.lstrip().startswith("{") for line in lines), log[:2000]
    records = _records(server)
    assert {"time", "level", "logger", "message"} <= set(records[0])

    within = [r for r in records if r.get("request_id") == request_id]
    (done,) = [r for r in within if r["logger"] == "atp.requests"]
    assert done["level"] == "INFO"
    assert done["trace_id"] == TRACE_ID
    assert done["tenant"] == "live"
    assert done["outcome"] == "success" and done["http_status"] == 200
    assert done["endpoint"] == "chat.completions" and done["latency_ms"] >= 0
    assert done["input_tokens"] > 0 and done["output_tokens"] > 0
    # The server's own lines are JSON too.
    assert any(r["logger"] == "uvicorn.error" for r in records)
    assert prompt not in log
    assert live.key not in log and "atp_wrong-key-for-the-log-test" not in log
