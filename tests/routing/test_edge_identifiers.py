"""Identifiers with control characters are refused at the edge with a 400 naming the field."""

from __future__ import annotations

import json

import orjson
import pytest
from channels.testing import WebsocketCommunicator

from apps.routing.writebehind import request_logs
from atp_site.lib.identifiers import control_free
from atp_site.lib.request_ids import request_id_or_new
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Hello there"}]
CHAT = {"model": "sim-fast", "messages": MESSAGES}


def test_control_characters_are_told_apart_from_other_text():
    for clean in ("sim-fast", "user-42", "naïve ✓ 名前", "a b", ""):
        assert control_free(clean)
    for bad in ("x\x00", "a\nb", "tab\t", "del\x7f", "c1\x85", "ls\u2028", "ps\u2029", "\ud800"):
        assert not control_free(bad), repr(bad)


def test_a_request_id_with_a_trailing_newline_is_not_taken():
    assert request_id_or_new("abc") == "abc"
    assert request_id_or_new("abc\n") != "abc\n"


async def _chat(gateway, body: dict | bytes, **kwargs):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await call("POST", "/v1/chat/completions", body=raw, key=gateway.key, **kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "sim-fast\x00"),
        ("model", "x\n"),
        ("user", "user\x00"),
        ("user", "line\u2028separator"),
        ("user", "bell\x07"),
    ],
)
async def test_chat_refuses_control_characters_in_identifiers(gateway, field, value):
    resp = await _chat(gateway, {**CHAT, field: value})
    assert resp.status == 400, resp.body
    error = resp.json()["error"]
    assert error["param"] == field and error["type"] == "invalid_request_error"
    request_logs._take()


async def test_a_lone_surrogate_escape_is_refused_as_invalid_json(gateway):
    """JSON text may escape a lone surrogate ("\\ud800"), but it is no Unicode text: the
    body parser refuses it wherever it appears, so none reaches a record from a body."""
    raw = b'{"model": "sim-fast", "messages": [{"role": "user", "content": "hi"}], '
    raw += b'"user": "abc\\ud800"}'
    resp = await _chat(gateway, raw)
    assert resp.status == 400 and resp.json()["error"]["code"] == "invalid_json"
    request_logs._take()


async def test_content_may_hold_any_character(gateway):
    """Message text is not an identifier: it is passed on, and stored safely if kept."""
    body = {**CHAT, "messages": [{"role": "user", "content": "a\x00b\u2028c"}], "user": "名前"}
    assert (await _chat(gateway, body)).status == 200
    request_logs._take()


async def test_embeddings_refuse_a_control_character_in_user(gateway):
    body = {"model": "sim-embed", "input": "hi", "user": "u\x00"}
    resp = await call("POST", "/v1/embeddings", json=body, key=gateway.key)
    assert resp.status == 400 and resp.json()["error"]["param"] == "user"
    request_logs._take()


async def test_anthropic_messages_refuse_them_in_their_own_error_shape(gateway):
    base = {"model": "sim-fast", "max_tokens": 5, "messages": MESSAGES}
    for body, param in (
        ({**base, "model": "sim\x00"}, "model"),
        ({**base, "metadata": {"user_id": "u\x1b[31m"}}, "metadata.user_id"),
    ):
        resp = await call("POST", "/v1/messages", json=body, key=gateway.key)
        assert resp.status == 400
        payload = resp.json()
        assert payload["type"] == "error" and payload["error"]["param"] == param
        assert payload["error"]["type"] == "invalid_request_error"
    request_logs._take()


async def test_an_x_request_id_with_control_characters_is_refused(gateway):
    resp = await _chat(gateway, CHAT, headers={"x-request-id": "abc\x01def"})
    assert resp.status == 400
    error = resp.json()["error"]
    assert error["param"] == "X-Request-ID"
    assert resp.headers["x-request-id"].startswith("req_")  # a fresh id for the answer
    # On /v1/messages the same refusal comes in Anthropic's shape.
    resp = await call(
        "POST",
        "/v1/messages",
        json={"model": "sim-fast", "max_tokens": 5, "messages": MESSAGES},
        key=gateway.key,
        headers={"x-request-id": "abc\x01"},
    )
    assert resp.status == 400 and resp.json()["error"]["param"] == "X-Request-ID"
    request_logs._take()


async def test_feedback_refuses_a_request_id_with_control_characters(gateway):
    resp = await call(
        "POST",
        "/v1/feedback",
        json={"request_id": "req\x00", "score": 1},
        key=gateway.key,
    )
    assert resp.status == 400 and resp.json()["error"]["param"] == "request_id"


async def test_route_and_hint_names_with_control_characters_are_refused(gateway):
    resp = await _chat(gateway, {**CHAT, "model": "auto\x00"})
    assert resp.status == 400 and resp.json()["error"]["param"] == "model"
    resp = await _chat(gateway, {**CHAT, "model": "auto", "atp": {"region": ["eu\x00"]}})
    assert resp.status == 400 and resp.json()["error"]["param"] == "atp.region"
    resp = await _chat(gateway, {**CHAT, "atp": {"quality\x00": "fast"}})
    assert resp.status == 400 and resp.json()["error"]["param"] == "atp"
    request_logs._take()


async def test_realtime_refuses_a_frame_id_with_control_characters(gateway):
    from atp_site.asgi import application

    comm = WebsocketCommunicator(
        application, "/v1/realtime", headers=[(b"authorization", f"Bearer {gateway.key}".encode())]
    )
    connected, _ = await comm.connect()
    assert connected
    assert orjson.loads(await comm.receive_from(timeout=10))["type"] == "ready"
    frame = {"type": "request", "id": "c1\x00", "body": CHAT}
    await comm.send_to(text_data=orjson.dumps(frame).decode())
    reply = orjson.loads(await comm.receive_from(timeout=10))
    assert reply["type"] == "error" and reply["error"]["param"] == "id"
    await comm.disconnect()
    request_logs._take()


async def test_a_body_nested_too_deep_is_a_400_not_a_500(gateway):
    """Every later step serialises the body (token counts, upstream calls, stored bodies),
    and orjson stops at 254 levels: such a body used to fail with a 500."""
    schema: dict = {"type": "object"}
    for _ in range(150):
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    resp = await _chat(gateway, {**CHAT, "tools": [tool]})
    assert resp.status == 400 and resp.json()["error"]["code"] == "nested_too_deep"
    shallow = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert (await _chat(gateway, {**CHAT, "tools": [shallow] * 128})).status == 200
    request_logs._take()
