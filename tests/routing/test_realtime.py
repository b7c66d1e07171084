"""The /v1/realtime WebSocket: streamed chat completions, many per socket, cancellable."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.audit.writebehind import audit_events
from apps.providers.models import ModelDeployment
from apps.routing.writebehind import request_logs
from atp_site.lib import config_version

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello there"}]}


async def _socket(path: str = "/v1/realtime", key: str | None = None) -> WebsocketCommunicator:
    from atp_site.asgi import application

    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def _recv(comm) -> dict:
    return orjson.loads(await comm.receive_from(timeout=10))


async def _collect(comm, cid: str) -> tuple[list[dict], dict]:
    chunks = []
    while True:
        message = await _recv(comm)
        assert message.get("id") == cid, message
        if message["type"] == "chunk":
            chunks.append(message["data"])
        else:
            return chunks, message


async def test_streams_a_completion_and_reports_usage_and_cost(gateway):
    comm = await _socket(key=gateway.key)
    assert (await _recv(comm)) == {"type": "ready", "tenant": "acme"}
    await comm.send_to(
        text_data=orjson.dumps({"type": "request", "id": "c1", "body": CHAT}).decode()
    )
    chunks, done = await _collect(comm, "c1")
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text
    assert done["type"] == "done" and done["model"] == "sim-fast"
    assert done["usage"]["completion_tokens"] > 0 and float(done["cost_usd"]) > 0
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await _recv(comm)) == {"type": "pong"}
    await comm.disconnect()
    row = request_logs._take()[-1]
    assert row["request_id"] == done["request_id"]
    assert row["endpoint"] == "realtime.chat.completions" and row["status"] == "success"
    assert audit_events._take()


async def test_many_requests_on_one_socket_and_cancel(gateway):
    def slow_model():
        ModelDeployment.objects.create(
            provider=gateway.provider,
            public_name="sim-slow",
            upstream_model="sim-slow",
            capabilities=["chat", "streaming"],
        )
        gateway.provider.options = {"tokens_per_second": 20, "output_tokens": 200}
        gateway.provider.save()
        config_version.bump()

    await sync_to_async(slow_model)()
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    slow = {**CHAT, "model": "sim-slow"}
    for cid in ("a", "b"):
        await comm.send_to(
            text_data=orjson.dumps({"type": "request", "id": cid, "body": slow}).decode()
        )
    # Both stream at once: chunks of a and b interleave.
    seen = {"a": 0, "b": 0}
    while seen["a"] < 4 or seen["b"] < 1:
        message = await _recv(comm)
        assert message["type"] == "chunk"
        seen[message["id"]] += 1
    await comm.send_to(text_data='{"type": "cancel", "id": "a"}')
    cancelled = None
    for _ in range(400):
        message = await _recv(comm)
        if message["type"] == "cancelled":
            cancelled = message
            break
    assert cancelled is not None and cancelled["id"] == "a"
    await comm.disconnect()  # b is cancelled with the socket
    await asyncio.sleep(0.05)
    rows = {r["request_id"]: r for r in request_logs._take()}
    assert rows[cancelled["request_id"]]["status"] == "cancelled"
    assert rows[cancelled["request_id"]]["http_status"] == 499
    assert rows[cancelled["request_id"]]["output_tokens"] > 0  # usage so far is kept
    assert sum(r["status"] == "cancelled" for r in rows.values()) == 2
    audit_events._take()


async def test_authentication_and_bad_messages(gateway):
    # No key on the upgrade: a first message authenticates.
    comm = await _socket()
    await comm.send_to(text_data='{"type": "request", "id": "x", "body": {}}')
    error = await _recv(comm)
    assert error["type"] == "error" and error["error"]["code"] == "missing_api_key"
    assert (await comm.receive_output(5))["type"] == "websocket.close"

    comm = await _socket()
    await comm.send_to(text_data=orjson.dumps({"type": "auth", "api_key": gateway.key}).decode())
    assert (await _recv(comm))["type"] == "ready"
    await comm.send_to(text_data="not json")
    assert (await _recv(comm))["error"]["type"] == "invalid_request_error"
    await comm.send_to(text_data='{"type": "request", "id": "y", "body": {"model": "sim-fast"}}')
    bad = await _recv(comm)
    assert bad["id"] == "y" and bad["error"]["param"] == "messages"
    await comm.send_to(text_data='{"type": "request", "id": "", "body": {}}')
    assert (await _recv(comm))["error"]["param"] == "id"
    await comm.send_to(text_data='{"type": "shout", "id": "z"}')
    assert (await _recv(comm))["error"]["param"] == "type"
    # The socket survives bad messages and still serves.
    await comm.send_to(
        text_data=orjson.dumps({"type": "request", "id": "ok", "body": CHAT}).decode()
    )
    _, done = await _collect(comm, "ok")
    assert done["type"] == "done"
    await comm.disconnect()

    comm = await _socket(key="atp_wrong-key-xxxxxxxxxxxxxxxx")
    error = await _recv(comm)
    assert error["type"] == "error" and error["error"]["code"] == "invalid_api_key"
    assert (await comm.receive_output(5)) == {"type": "websocket.close", "code": 4401}
    request_logs._take()
    audit_events._take()


async def test_other_v1_websocket_paths_are_closed(gateway):
    from atp_site.asgi import application

    comm = WebsocketCommunicator(application, "/v1/nope")
    connected, code = await comm.connect()
    assert not connected and code == 4404
