"""The /v1 data plane in process: authentication, validation, errors, streaming, logging."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.providers.models import ModelDeployment, Provider
from apps.routing.models import RequestLog
from apps.routing.snapshot import holder
from atp_site.lib import config_version
from tests.routing.conftest import call, flush_logs

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello there"}]}


def _error(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


async def test_chat_completion_answers_with_usage_cost_and_request_id(gateway):
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)
    assert resp.status == 200, resp.body
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "sim-fast"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert resp.headers["x-request-id"].startswith("req_")
    expected = (
        Decimal(usage["prompt_tokens"]) * 1 + Decimal(usage["completion_tokens"]) * 2
    ) / 10**6
    assert Decimal(resp.headers["x-atp-cost-usd"]) == expected.quantize(Decimal("0.00000001"))
    assert resp.headers["x-atp-provider"] == "sim"


async def test_callers_request_id_is_echoed(gateway):
    resp = await call(
        "POST",
        "/v1/chat/completions",
        json=CHAT,
        key=gateway.key,
        headers={"x-request-id": "trace-123"},
    )
    assert resp.headers["x-request-id"] == "trace-123"


async def test_alias_resolves_to_deployment(gateway):
    resp = await call(
        "POST", "/v1/chat/completions", json={**CHAT, "model": "fast"}, key=gateway.key
    )
    assert resp.status == 200
    assert resp.json()["model"] == "sim-fast"


async def test_streamed_chat_ends_with_done_and_reports_usage_when_asked(gateway):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    resp = await call("POST", "/v1/chat/completions", json=body, key=gateway.key)
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = resp.sse()
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["model"] == "sim-fast" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert Decimal(chunks[-1]["atp"]["cost_usd"]) > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text


async def test_stream_without_include_usage_has_no_usage_chunk(gateway):
    resp = await call(
        "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, key=gateway.key
    )
    chunks = [orjson.loads(e) for e in resp.sse()[:-1]]
    assert all(c["choices"] for c in chunks)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"authorization": "Bearer atp_not-a-real-key-at-all-000"}, "invalid_api_key"),
        ({"authorization": "Basic abc"}, "missing_api_key"),
    ],
)
async def test_missing_or_bad_key_gets_401(gateway, headers, code):
    resp = await call("POST", "/v1/chat/completions", json=CHAT, headers=headers)
    assert resp.status == 401
    err = _error(resp)
    assert err["type"] == "authentication_error" and err["code"] == code
    assert err["request_id"] == resp.headers["x-request-id"]
    assert err["retryable"] is False


async def test_revoked_key_gets_401_after_config_change(gateway):
    assert (await call("GET", "/v1/models", key=gateway.key)).status == 200
    await sync_to_async(type(gateway.api_key).objects.filter(pk=gateway.api_key.pk).update)(
        revoked_at=timezone.now()
    )
    await sync_to_async(config_version.bump)()
    resp = await call("GET", "/v1/models", key=gateway.key)
    assert resp.status == 401
    assert _error(resp)["code"] == "revoked_api_key"


async def test_expired_key_gets_401(gateway):
    raw = await sync_to_async(gateway.add_key)(expires_at=timezone.now() - timezone.timedelta(1))
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=raw)
    assert resp.status == 401 and _error(resp)["code"] == "expired_api_key"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "sim-fast"}, "messages"),
        ({"model": "sim-fast", "messages": []}, "messages"),
        (
            {"model": "sim-fast", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ({**CHAT, "temperature": 3}, "temperature"),
        ({**CHAT, "n": 0}, "n"),
        ({**CHAT, "max_tokens": "ten"}, "max_tokens"),
        ({**CHAT, "stream": "yes"}, "stream"),
        ({**CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
        (
            {**CHAT, "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
        ),
        ({**CHAT, "response_format": {"type": "xml"}}, "response_format.type"),
        ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        (
            {"model": "sim-fast", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
    ],
)
async def test_invalid_body_gets_400_naming_the_field(gateway, payload, param):
    resp = await call("POST", "/v1/chat/completions", json=payload, key=gateway.key)
    assert resp.status == 400, resp.body
    err = _error(resp)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_malformed_json_gets_400(gateway, raw):
    resp = await call("POST", "/v1/chat/completions", body=raw, key=gateway.key)
    assert resp.status == 400
    assert _error(resp)["type"] == "invalid_request_error"


async def test_unknown_model_gets_404(gateway):
    resp = await call(
        "POST", "/v1/chat/completions", json={**CHAT, "model": "nope"}, key=gateway.key
    )
    assert resp.status == 404
    err = _error(resp)
    assert err["code"] == "model_not_found" and err["param"] == "model"


async def test_key_limited_to_other_models_gets_403(gateway):
    raw = await sync_to_async(gateway.add_key)(allowed_models=["sim-embed"])
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=raw)
    assert resp.status == 403
    assert _error(resp)["code"] == "model_not_allowed"


async def test_body_over_the_limit_gets_413(gateway, settings):
    settings.ATP_MAX_BODY_BYTES = 2048
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    resp = await call("POST", "/v1/chat/completions", json=big, key=gateway.key)
    assert resp.status == 413
    assert _error(resp)["code"] == "request_too_large"


async def test_unknown_path_and_wrong_method_answer_in_openai_shape(gateway):
    resp = await call("POST", "/v1/nothing-here", json={}, key=gateway.key)
    assert resp.status == 404 and _error(resp)["code"] == "unknown_url"
    resp = await call("GET", "/v1/chat/completions", key=gateway.key)
    assert resp.status == 405 and _error(resp)["code"] == "method_not_allowed"


async def test_models_lists_only_what_the_key_may_use(gateway):
    resp = await call("GET", "/v1/models", key=gateway.key)
    ids = {m["id"] for m in resp.json()["data"]}
    assert {"sim-fast", "fast", "sim-embed"} <= ids
    raw = await sync_to_async(gateway.add_key)(allowed_models=["sim-embed"])
    resp = await call("GET", "/v1/models", key=raw)
    assert [m["id"] for m in resp.json()["data"]] == ["sim-embed"]
    resp = await call("GET", "/v1/models/sim-embed", key=raw)
    assert resp.status == 200 and resp.json()["owned_by"] == "sim"
    resp = await call("GET", "/v1/models/sim-fast", key=raw)
    assert resp.status == 404


async def test_embeddings(gateway):
    resp = await call(
        "POST",
        "/v1/embeddings",
        json={"model": "sim-embed", "input": ["a", "b c"]},
        key=gateway.key,
    )
    assert resp.status == 200, resp.body
    body = resp.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] > 0
    resp = await call(
        "POST", "/v1/embeddings", json={"model": "sim-embed", "input": []}, key=gateway.key
    )
    assert resp.status == 400 and _error(resp)["param"] == "input"


async def test_embedding_with_a_chat_only_model_is_refused(gateway):
    resp = await call(
        "POST", "/v1/embeddings", json={"model": "sim-fast", "input": "x"}, key=gateway.key
    )
    assert resp.status == 400 and _error(resp)["param"] == "model"


async def test_request_log_is_written_behind_with_tokens_and_cost(gateway):
    resp = await call(
        "POST",
        "/v1/chat/completions",
        json=CHAT,
        key=gateway.key,
        headers={"x-request-id": "log-me"},
    )
    usage = resp.json()["usage"]
    await flush_logs()
    row = await RequestLog.objects.aget(request_id="log-me")
    assert row.status == "success" and row.http_status == 200
    assert row.tenant_id == gateway.tenant.id and row.api_key_id == gateway.api_key.id
    assert row.model == "sim-fast" and row.upstream_model == "sim-fast-1"
    assert row.input_tokens == usage["prompt_tokens"]
    assert row.output_tokens == usage["completion_tokens"]
    assert row.cost_usd == Decimal(resp.headers["x-atp-cost-usd"])
    assert row.latency_ms is not None and row.endpoint == "chat.completions"


async def test_failed_request_is_logged_with_its_error(gateway):
    await call(
        "POST",
        "/v1/chat/completions",
        json={**CHAT, "model": "nope"},
        key=gateway.key,
        headers={"x-request-id": "bad-model"},
    )
    await flush_logs()
    row = await RequestLog.objects.aget(request_id="bad-model")
    assert row.status == "error" and row.http_status == 404
    assert row.error_type == "model_not_found"


async def test_warm_request_makes_no_database_query(gateway, django_db_blocker):
    assert (await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)).status == 200
    # Blocking the database for every thread proves the warm path never touches it.
    with django_db_blocker.block():
        resp = await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)
        assert resp.status == 200
        resp = await call(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, key=gateway.key
        )
        assert resp.sse()[-1] == b"[DONE]"
    # A change bumps the version; the next request sees the new deployment.
    await sync_to_async(ModelDeployment.objects.create)(
        provider=gateway.provider,
        public_name="sim-new",
        upstream_model="sim-new",
    )
    await sync_to_async(config_version.bump)()
    resp = await call(
        "POST", "/v1/chat/completions", json={**CHAT, "model": "sim-new"}, key=gateway.key
    )
    assert resp.status == 200


async def test_mid_stream_failure_ends_with_an_error_event_and_no_done(gateway):
    await sync_to_async(Provider.objects.filter(pk=gateway.provider.pk).update)(
        options={"fail_after_chunks": 3}
    )
    await sync_to_async(config_version.bump)()
    resp = await call(
        "POST",
        "/v1/chat/completions",
        json={**CHAT, "stream": True},
        key=gateway.key,
        headers={"x-request-id": "broken-stream"},
    )
    events = resp.sse()
    assert b"[DONE]" not in events
    last = orjson.loads(events[-1])
    assert last["error"]["retryable"] is True
    assert last["error"]["request_id"] == "broken-stream"
    await flush_logs()
    row = await RequestLog.objects.aget(request_id="broken-stream")
    assert row.status == "error" and row.output_tokens > 0 and row.usage_estimated


async def test_failing_deployment_falls_back_to_the_next(gateway):
    broken = await sync_to_async(Provider.objects.create)(
        name="sim-broken", kind="simulator", options={"failure_rate": 1.0}
    )
    await sync_to_async(ModelDeployment.objects.create)(
        provider=broken,
        public_name="sim-fast",
        upstream_model="sim-x",
        weight=1_000_000,
    )
    await sync_to_async(config_version.bump)()
    holder.invalidate()
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)
    assert resp.status == 200
    assert resp.headers["x-atp-provider"] == "sim"


async def test_all_candidates_failing_gives_one_clean_retryable_error(gateway):
    await sync_to_async(Provider.objects.filter(pk=gateway.provider.pk).update)(
        options={"failure_rate": 1.0}
    )
    await sync_to_async(config_version.bump)()
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=gateway.key)
    assert resp.status == 503
    err = _error(resp)
    assert err["retryable"] is True and err["code"] == "upstream_unavailable"
    resp = await call(
        "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, key=gateway.key
    )
    assert resp.status == 503 and resp.headers["content-type"] == "application/json"


async def test_anthropic_messages_endpoint_speaks_anthropic(gateway):
    body = {"model": "sim-fast", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    resp = await call("POST", "/v1/messages", json=body, headers={"x-api-key": gateway.key})
    assert resp.status == 200, resp.body
    out = resp.json()
    assert out["type"] == "message" and out["content"][0]["type"] == "text"
    assert out["usage"]["output_tokens"] > 0
    resp = await call(
        "POST", "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": gateway.key}
    )
    types = [
        line.split(b": ", 1)[1] for line in resp.body.split(b"\n") if line.startswith(b"event:")
    ]
    assert types[:2] == [b"message_start", b"ping"]
    assert types[-2:] == [b"message_delta", b"message_stop"]


async def test_anthropic_errors_use_anthropic_shape(gateway):
    resp = await call(
        "POST",
        "/v1/messages",
        json={"model": "sim-fast", "messages": []},
        headers={"x-api-key": gateway.key},
    )
    assert resp.status == 400
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    resp = await call("POST", "/v1/messages", json={})
    assert resp.status == 401 and resp.json()["error"]["type"] == "authentication_error"


async def test_client_leaving_mid_stream_cancels_the_upstream_and_logs_it(gateway):
    from channels.testing import ApplicationCommunicator

    from atp_site.asgi import application

    await sync_to_async(Provider.objects.filter(pk=gateway.provider.pk).update)(
        options={"tokens_per_second": 40, "output_tokens": 200}
    )
    await sync_to_async(config_version.bump)()
    raw = orjson.dumps({**CHAT, "stream": True})
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "scheme": "http",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {gateway.key}".encode()),
            (b"x-request-id", b"walked-away"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": raw, "more_body": False})
    start = await comm.receive_output(5)
    assert start["status"] == 200
    first = await comm.receive_output(5)
    assert first["more_body"] is True
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(5)
    await flush_logs()
    row = await RequestLog.objects.aget(request_id="walked-away")
    assert row.status == "cancelled"
    assert row.output_tokens < 200
