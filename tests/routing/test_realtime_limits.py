"""/v1/realtime limits: sockets per key, authentication deadline, message size, duplicate
ids, and sockets of keys revoked or expired while open."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.audit.writebehind import audit_events
from apps.providers.models import ModelDeployment
from apps.routing.writebehind import request_logs
from apps.tenants.services import api_key_revoke
from atp_site.lib import config_version
from tests.routing.test_realtime import CHAT, _recv, _socket

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed(comm) -> dict:
    """The next websocket.close, skipping text frames, within 10 seconds."""
    deadline = time.monotonic() + 10
    while True:
        message = await comm.receive_output(max(deadline - time.monotonic(), 0.01))
        if message["type"] == "websocket.close":
            return message


async def _error_then_close(comm) -> tuple[dict, dict]:
    error = await _recv(comm)
    assert error["type"] == "error", error
    return error, await _closed(comm)


async def test_a_duplicate_id_is_refused_with_its_own_code_and_the_running_request_finishes(
    gateway,
):
    def slow_model():
        ModelDeployment.objects.create(
            provider=gateway.provider,
            public_name="sim-slow",
            upstream_model="sim-slow",
            capabilities=["chat", "streaming"],
        )
        gateway.provider.options = {"tokens_per_second": 50, "output_tokens": 40}
        gateway.provider.save()
        config_version.bump()

    await sync_to_async(slow_model)()
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    frame = orjson.dumps({"type": "request", "id": "r1", "body": {**CHAT, "model": "sim-slow"}})
    await comm.send_to(text_data=frame.decode())
    first = await _recv(comm)
    assert first["type"] == "chunk" and first["id"] == "r1"
    await comm.send_to(text_data=frame.decode())  # same id while r1 streams
    refused = None
    while True:
        message = await _recv(comm)
        if message["type"] == "error":
            refused = message
            continue
        if message["type"] == "done":
            break
        assert message["type"] == "chunk", message
    assert refused is not None and refused["id"] == "r1"
    assert refused["error"]["code"] == "duplicate_id" and refused["error"]["param"] == "id"
    assert message["id"] == "r1"  # the running request was not disturbed
    await comm.disconnect()
    request_logs._take()
    audit_events._take()


async def test_a_message_above_max_body_bytes_closes_with_1009(gateway, settings):
    settings.ATP_MAX_BODY_BYTES = 4096
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    await comm.send_to(text_data=orjson.dumps({"type": "request", "id": "b", "body": big}).decode())
    error, closed = await _error_then_close(comm)
    assert error["error"]["code"] == "message_too_large"
    assert closed["code"] == 1009
    # Characters count as their UTF-8 bytes: 1,500 euro signs are 4,500 bytes.
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    await comm.send_to(text_data='{"type": "ping", "pad": "' + "€" * 1500 + '"}')
    error, closed = await _error_then_close(comm)
    assert error["error"]["code"] == "message_too_large" and closed["code"] == 1009
    # Below the limit: served as before.
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    await comm.send_to(bytes_data=b'{"type": "ping"}')
    assert (await _recv(comm)) == {"type": "pong"}
    await comm.disconnect()


async def test_a_body_nested_too_deep_gets_an_error_frame_and_the_socket_stays(gateway):
    comm = await _socket(key=gateway.key)
    await _recv(comm)
    # Deeper than the JSON encoder can write back, so the frame is written by hand.
    deep = '{"x": ' * 300 + "1" + "}" * 300
    chat = orjson.dumps(CHAT).decode()[:-1]
    frame = '{"type": "request", "id": "d", "body": ' + chat + ', "metadata": ' + deep + "}}"
    await comm.send_to(text_data=frame)
    error = await _recv(comm)
    assert error["type"] == "error" and error["id"] == "d", error
    assert error["error"]["code"] == "nested_too_deep" and error["error"]["param"] == "body"
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await _recv(comm))["type"] == "pong"
    await comm.disconnect()


async def test_a_socket_that_never_authenticates_is_closed(gateway, settings):
    settings.ATP_REALTIME_AUTH_TIMEOUT_SECONDS = 0.3
    comm = await _socket()
    await comm.send_to(text_data='{"type": "ping"}')  # pings do not extend the deadline
    assert (await _recv(comm)) == {"type": "pong"}
    error, closed = await _error_then_close(comm)
    assert error["error"]["code"] == "auth_timeout"
    assert closed["code"] == 4401
    # Authenticating in time cancels the deadline.
    comm = await _socket()
    await comm.send_to(text_data=orjson.dumps({"type": "auth", "api_key": gateway.key}).decode())
    assert (await _recv(comm))["type"] == "ready"
    await asyncio.sleep(0.5)  # past the deadline on purpose
    await comm.send_to(text_data='{"type": "ping"}')
    assert (await _recv(comm)) == {"type": "pong"}
    await comm.disconnect()


async def test_sockets_per_key_are_limited(gateway, settings):
    settings.ATP_REALTIME_MAX_SOCKETS_PER_KEY = 2
    first = await _socket(key=gateway.key)
    second = await _socket(key=gateway.key)
    for comm in (first, second):
        assert (await _recv(comm))["type"] == "ready"
    third = await _socket(key=gateway.key)
    error, closed = await _error_then_close(third)
    assert error["error"]["code"] == "too_many_sockets"
    assert error["error"]["type"] == "rate_limit_error"
    assert closed["code"] == 4429
    # Another key is not affected.
    other_key = await sync_to_async(gateway.add_key)()
    other = await _socket(key=other_key)
    assert (await _recv(other))["type"] == "ready"
    # Closing a socket frees its slot.
    await first.disconnect()
    again = await _socket(key=gateway.key)
    assert (await _recv(again))["type"] == "ready"
    for comm in (second, other, again):
        await comm.disconnect()


async def test_an_open_socket_of_a_revoked_key_is_closed_with_4401(gateway, settings):
    settings.ATP_SNAPSHOT_CHECK_SECONDS = 0.2
    comm = await _socket(key=gateway.key)
    assert (await _recv(comm))["type"] == "ready"
    await sync_to_async(api_key_revoke)(api_key=gateway.api_key)
    revoked_at = time.monotonic()
    error, closed = await _error_then_close(comm)
    assert time.monotonic() - revoked_at < 0.2 + 1
    assert error["error"]["code"] == "revoked_api_key"
    assert closed["code"] == 4401


async def test_an_open_socket_of_an_expiring_key_is_closed_with_4401(gateway, settings):
    settings.ATP_SNAPSHOT_CHECK_SECONDS = 0.2
    expires_at = timezone.now() + timedelta(seconds=1)
    key = await sync_to_async(gateway.add_key)(expires_at=expires_at)
    comm = await _socket(key=key)
    assert (await _recv(comm))["type"] == "ready"
    error, closed = await _error_then_close(comm)
    assert timezone.now() - expires_at < timedelta(seconds=0.2 + 1)
    assert error["error"]["code"] == "expired_api_key"
    assert closed["code"] == 4401
