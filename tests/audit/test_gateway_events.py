"""Each settled /v1 request becomes a `gateway.request` audit event, written behind."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.audit.writebehind import audit_events
from apps.tenants.services import tenant_update
from tests.routing import conftest as routing
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

# The data-plane fixture: a tenant, a key and the simulator.
gateway = routing.gateway

ENDPOINT = "chat.completions"
CHAT = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
def audited(gateway):
    # Rows other data-plane tests left queued belong to their databases, not this one.
    audit_events._take()
    yield gateway
    audit_events._take()


@sync_to_async
def _gateway_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="gateway.request").order_by("sequence"))


async def test_request_is_recorded_after_the_queue_flushes(audited):
    resp = await call(
        "POST", "/v1/chat/completions", json=CHAT, key=audited.key, headers={"x-request-id": "r-1"}
    )
    assert resp.status == 200
    # Written behind: nothing is on the chain until the queue flushes.
    assert await _gateway_events() == []
    assert len(audit_events) == 1
    await audit_events.flush()

    [event] = await _gateway_events()
    assert (event.outcome, event.source, event.action) == ("success", "data_plane", "request")
    assert event.actor == f"api_key:{audited.api_key.pk}"
    assert event.tenant_id == audited.tenant.pk
    assert event.request_id == "r-1"
    data = event.data
    assert (data["request_id"], data["endpoint"]) == ("r-1", ENDPOINT)
    assert (data["requested_model"], data["model"], data["provider"]) == (
        "sim-fast",
        "sim-fast",
        "sim",
    )
    assert (data["status"], data["http_status"]) == ("success", 200)
    assert data["usage"]["input"] > 0 and data["usage"]["output"] > 0
    assert Decimal(data["cost_usd"]) == Decimal(resp.headers["x-atp-cost-usd"])
    assert data["error_code"] == ""
    assert data["policy"] is None and data["redactions"] == {}
    # Neither the key nor the conversation is kept.
    stored = str([event.data, event.before, event.after])
    assert audited.key not in stored and "Hello there" not in stored
    assert (await sync_to_async(verify_chain)()).ok


async def test_refused_model_is_recorded_as_denied(audited):
    key = await sync_to_async(audited.add_key)(allowed_models=["sim-embed"])
    resp = await call("POST", "/v1/chat/completions", json=CHAT, key=key)
    assert resp.status == 403
    await audit_events.flush()
    [event] = await _gateway_events()
    assert event.outcome == "denied"
    assert event.data["http_status"] == 403 and event.data["error_code"]


async def test_data_plane_and_control_plane_events_form_one_chain(audited):
    for _ in range(3):
        assert (
            await call("POST", "/v1/chat/completions", json=CHAT, key=audited.key)
        ).status == 200
    await sync_to_async(tenant_update)(tenant=audited.tenant, name="Acme Corp")
    assert (
        await call(
            "POST", "/v1/embeddings", json={"model": "sim-embed", "input": "x"}, key=audited.key
        )
    ).status == 200
    # A graceful stop drains the queue: no event is lost.
    await audit_events.drain()
    assert len(audit_events) == 0
    types = await sync_to_async(
        lambda: list(AuditEvent.objects.order_by("sequence").values_list("event_type", flat=True))
    )()
    assert types.count("gateway.request") == 4 and "tenant.updated" in types
    result = await sync_to_async(verify_chain)()
    assert result.ok and result.checked == len(types)


@pytest.mark.parametrize(
    "http_status, error_type, outcome",
    [
        (401, "invalid_api_key", "denied"),
        (403, "model_not_allowed", "denied"),
        (429, "rate_limit_exceeded", "denied"),  # the caller's own limit
        (429, "upstream_rate_limited", "failure"),  # every provider was rate-limited
        (503, "records_unavailable", "failure"),
    ],
)
def test_a_refusal_is_denied_unless_the_upstream_caused_it(http_status, error_type, outcome):
    from apps.audit.writebehind import gateway_event

    log = {"status": "error", "http_status": http_status, "error_type": error_type}
    assert gateway_event(log)["outcome"] == outcome
