"""POST /api/v1/routes/simulate/: the ranking POST /v1/route would give, over the API."""

from __future__ import annotations

import pytest

from apps.providers import services
from apps.routing.route_services import route_create
from apps.tenants import roles
from apps.tenants.services import api_key_create, tenant_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/routes/simulate/"


@pytest.fixture
def models():
    provider = services.provider_create(name="sim", kind="simulator")
    for name, price, quality in (("sim-cheap", "0.1", 0.6), ("sim-fast", "1", 0.9)):
        services.deployment_create(
            provider=provider,
            public_name=name,
            upstream_model=name,
            input_price=price,
            output_price=price,
            quality_score=quality,
            capabilities=["chat"],
        )
    route_create(name="team/ordered", strategy="ordered", candidates=["sim-fast", "sim-cheap"])


def test_a_route_ranks_its_candidates(viewer_client, models):
    response = viewer_client.post(URL, {"route": "team/ordered", "prompt": "Hi"}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["route"] == "team/ordered"
    assert result["decision"]["model"] == "sim-fast"
    # Ranked by score, the ordered route's choice (its first candidate) flagged where it sits.
    chosen = {r["model"]: r["chosen"] for r in result["recommendations"]}
    assert chosen == {"sim-fast": True, "sim-cheap": False}
    # The default route is auto.
    auto = viewer_client.post(URL, {"prompt": "Hi"}, format="json")
    assert auto.status_code == 200 and auto.json()["route"] == "auto"


def test_refusals_name_the_field(viewer_client, models):
    def error(body):
        response = viewer_client.post(URL, body, format="json")
        assert response.status_code == 400, response.content
        return response.json()

    assert error({"route": "team/none", "prompt": "Hi"}) == {
        "route": ["The route 'team/none' is not enabled."]
    }
    assert list(error({"prompt": "Hi", "hints": {"quality": "superb"}})) == ["hints"]
    assert list(error({"route": "auto"})) == ["prompt"]


def test_a_key_is_checked_as_v1_route_would_and_another_tenants_reads_as_missing(
    models, grant, user_factory
):
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    own, _ = api_key_create(tenant=acme, name="k", allowed_models=["sim-cheap"])
    mine, _ = api_key_create(tenant=acme, name="any")
    other, _ = api_key_create(tenant=globex, name="k")
    user = user_factory(username="acme-admin")
    roles.tenant_role_set(user=user, tenant=acme, role="tenant-admin", actor=None, source="api")
    grant(user, "routing.view_route")
    client = client_for(user)
    ranked = client.post(
        URL, {"route": "team/ordered", "prompt": "Hi", "key": str(own.pk)}, format="json"
    )
    # That key may not use the route: refused as /v1/route would refuse it.
    assert ranked.status_code == 400
    assert "not allowed to use the model or route 'team/ordered'" in ranked.json()["route"][0]
    allowed = client.post(
        URL, {"route": "team/ordered", "prompt": "Hi", "key": str(mine.pk)}, format="json"
    )
    assert allowed.status_code == 200, allowed.content
    hidden = client.post(
        URL, {"route": "team/ordered", "prompt": "Hi", "key": str(other.pk)}, format="json"
    )
    assert hidden.status_code == 400
    assert hidden.json() == {"key": [f"No API key '{other.pk}'."]}


def test_without_the_route_view_permission_it_is_403(staff_client, models):
    assert staff_client.post(URL, {"prompt": "Hi"}, format="json").status_code == 403
