"""/v1/realtime against a live server with a real WebSocket client."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.live


def test_streams_over_a_real_websocket(live):
    url = live.base_url.replace("http://", "ws://") + "/v1/realtime"
    with connect(url, additional_headers={"Authorization": f"Bearer {live.key}"}) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        for cid in ("one", "two"):
            ws.send(
                json.dumps(
                    {
                        "type": "request",
                        "id": cid,
                        "body": {
                            "model": "sim-fast",
                            "messages": [{"role": "user", "content": f"Hello {cid}"}],
                        },
                    }
                )
            )
        done = {}
        text = {"one": "", "two": ""}
        while len(done) < 2:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "chunk":
                for choice in message["data"]["choices"]:
                    text[message["id"]] += choice["delta"].get("content") or ""
            else:
                assert message["type"] == "done", message
                done[message["id"]] = message
    assert text["one"] and text["two"] and text["one"] != text["two"]
    rows = live.log_rows([d["request_id"] for d in done.values()])
    assert len(rows) == 2 and all(r[1] == "success" for r in rows.values())
