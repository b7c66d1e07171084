"""POST /api/v1/providers/{id}/test/: the console's connectivity test over the API."""

from __future__ import annotations

import socket

import pytest

from apps.audit.models import AuditEvent
from apps.providers import services
from apps.providers.models import HealthCheck

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url(provider) -> str:
    return f"/api/v1/providers/{provider.pk}/test/"


def test_an_answering_upstream_is_up_recorded_and_audited(manager_client):
    provider = services.provider_create(name="sim", kind="simulator")
    services.deployment_create(
        provider=provider,
        public_name="sim-a",
        upstream_model="sim-fast",
        input_price=1,
        output_price=2,
    )
    response = manager_client.post(url(provider))
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["provider"] == str(provider.pk) and result["status"] == "up"
    assert result["error"] == "" and isinstance(result["latency_ms"], int)
    (check,) = HealthCheck.objects.filter(provider=provider)
    assert check.status == "up"
    event = AuditEvent.objects.get(event_type="provider.tested")
    assert (event.actor, event.source, event.data["status"]) == ("manager", "api", "up")


def test_an_unreachable_upstream_is_down_with_its_error(manager_client):
    provider = services.provider_create(
        name="dead",
        kind="openai_compatible",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        api_key="sk-dead-0123456789abcdef",
    )
    response = manager_client.post(url(provider))
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["status"] == "down" and result["error"]
    assert "sk-dead" not in response.content.decode()


def test_nothing_to_call_is_a_400(manager_client):
    provider = services.provider_create(name="empty", kind="simulator")
    response = manager_client.post(url(provider))
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Nothing to test yet: add a model to this provider first."]
    }


def test_reading_is_not_enough(viewer_client):
    provider = services.provider_create(name="sim", kind="simulator")
    assert viewer_client.post(url(provider)).status_code == 403
    assert not HealthCheck.objects.exists()
