"""GET /metrics: Prometheus text with requests, breakers and cache figures; access rules."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.routing.resilience.breaker import get_breakers
from apps.routing.writebehind import request_logs
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)


async def test_metrics_count_requests_and_show_breakers(gateway, settings):
    from asgiref.sync import sync_to_async

    settings.ATP_METRICS_TOKEN = ""
    body = {"model": "sim-fast", "messages": [{"role": "user", "content": "Hi"}]}
    resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=body)
    assert resp.status == 200
    request_logs._take()
    dep_id = str(gateway.deployment.id)
    await get_breakers().record(dep_id, ok=False)

    page = await sync_to_async(Client().get)("/metrics")
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        'atp_requests_total{endpoint="chat.completions",model="sim-fast",route="",status="success"}'
        in text
    )
    assert 'atp_input_tokens_total{model="sim-fast",route=""}' in text
    assert (
        f'atp_circuit_state{{deployment="{dep_id}",model="sim-fast",provider="sim",state="closed"}} 1.0'
        in text
    )
    assert "atp_upstream_latency_ewma_ms" in text


def test_metrics_access(settings):
    settings.ATP_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 403
    assert Client().get("/metrics").status_code == 200  # loopback
    settings.ATP_METRICS_TOKEN = "scrape-secret"
    missing = Client().get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    ok = Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401


@pytest.mark.parametrize("token", ["sécret", "scrape-secret\u00e9", "\u2603", "\udcff"])
def test_a_non_ascii_metrics_token_is_refused_with_401(settings, token):
    settings.ATP_METRICS_TOKEN = "scrape-secret"
    resp = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert resp.status_code == 401
