"""Errors of the management API: bad input is a 4xx in DRF's shape naming the field, a name
in use is a 409, and nothing a client sends reaches the database unstorable."""

from __future__ import annotations

import json

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from rest_framework.exceptions import ValidationError

from apps.audit.models import RetentionPolicy
from apps.providers.models import ModelDeployment, Provider
from apps.routing.models import Route
from apps.tenants.models import ApiKey, Tenant
from atp_site.lib.drf import exception_handler

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(tenant_factory) -> Tenant:
    return tenant_factory(slug="acme", name="Acme")


@pytest.fixture
def provider(provider_factory) -> Provider:
    return provider_factory(name="sim", kind="simulator")


def deployment_body(provider: Provider, **fields) -> dict:
    return {
        "provider": str(provider.pk),
        "public_name": "model-a",
        "upstream_model": "model-a",
        "input_price": "1",
        "output_price": "2",
        **fields,
    }


# --- values the database cannot store ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "field", "where"),
    [
        ("/api/v1/providers/", {"name": "p", "kind": "simulator", "options": {"a": "x\x00"}},
         "options", "options.a"),
        ("/api/v1/providers/", {"name": "p", "kind": "simulator", "options": {"a\x00": 1}},
         "options", "options.*"),
        ("/api/v1/routes/", {"name": "r", "retry": {"x": ["\ud800"]}}, "retry", "retry.x.0"),
        ("/api/v1/routes/", {"name": "r", "candidate_filter": {"regions": ["eu\x00"]}},
         "candidate_filter", "candidate_filter.regions.0"),
        ("/api/v1/tenants/", {"slug": "t", "name": "T", "preferred_regions": ["eu\x00"]},
         "preferred_regions", "preferred_regions.0"),
        ("/api/v1/routes/", {"name": "r", "description": "café \ud83d"}, "description", None),
    ],
)  # fmt: skip
def test_a_nul_or_a_lone_surrogate_anywhere_in_a_body_is_a_400_naming_the_field(
    manager_client, url, body, field, where
):
    before = (Provider.objects.count(), Route.objects.count(), Tenant.objects.count())
    # As JSON text: a lone surrogate only exists as an escape there.
    response = manager_client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    assert len(messages) == 1 and ("Null" in messages[0] or "Surrogate" in messages[0])
    if where:
        assert f"(at {where})" in messages[0]
    # The offending text is never echoed.
    assert "\x00" not in response.content.decode() and "\\u0000" not in response.content.decode()
    assert (Provider.objects.count(), Route.objects.count(), Tenant.objects.count()) == before


def test_a_form_encoded_body_is_checked_too(manager_client):
    response = manager_client.post(
        "/api/v1/routes/",
        "name=r&description=a%00b",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.json() == {"description": ["Null characters are not allowed."]}


@pytest.mark.parametrize(
    ("url", "field", "value"),
    [
        ("/api/v1/tenants/", "name", "Acme\nInc"),
        ("/api/v1/api-keys/", "name", "ci\x1b[31m"),
        ("/api/v1/api-keys/", "allowed_models", ["gpt\u2028x"]),
        ("/api/v1/deployments/", "public_name", "mo\rdel"),
        ("/api/v1/deployments/", "aliases", ["alias\x7f"]),
        ("/api/v1/routes/", "candidates", ["model\ta"]),
        ("/api/v1/retention-policies/", "classification", "bodies\x07"),
        ("/api/v1/admin-tokens/", "name", "lap\x85top"),
    ],
)
def test_control_characters_in_a_name_are_a_400_naming_the_field(
    manager_client, acme, provider, url, field, value
):
    bodies = {
        "/api/v1/tenants/": {"slug": "new", "name": "New"},
        "/api/v1/api-keys/": {"tenant": str(acme.pk), "name": "ci"},
        "/api/v1/deployments/": deployment_body(provider),
        "/api/v1/routes/": {"name": "team/x"},
        "/api/v1/retention-policies/": {"days": 30},
        "/api/v1/admin-tokens/": {"name": "laptop"},
    }
    response = manager_client.post(url, {**bodies[url], field: value}, format="json")
    assert response.status_code == 400, response.content
    assert "Control characters and line breaks are not allowed." in str(response.json()[field])


def test_a_description_may_hold_line_breaks(manager_client):
    body = {"name": "team/notes", "description": "First line.\nSecond line.\tTabbed."}
    response = manager_client.post("/api/v1/routes/", body, format="json")
    assert response.status_code == 201, response.content
    assert Route.objects.get(name="team/notes").description == body["description"]


def test_a_bad_search_term_is_a_400_naming_search(manager_client):
    response = manager_client.get("/api/v1/tenants/", {"search": "ac\x00me"})
    assert response.status_code == 400
    assert response.json() == {"search": ["Null characters are not allowed."]}


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/audit/", "/api/v1/exchanges/", "/api/v1/audit/export/"])
def test_a_datetime_filter_takes_any_offset_python_does(manager_client, url):
    # PostgreSQL refuses offsets beyond 15:59 in a query; the filter speaks UTC.
    response = manager_client.get(url, {"since": "2020-01-01T00:00:00+21:17"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("url", ["/api/v1/audit/", "/api/v1/exchanges/"])
def test_a_datetime_filter_beyond_the_calendar_is_a_400_naming_it(manager_client, url):
    response = manager_client.get(url, {"until": "9999-12-31T23:59:59-05:00"})
    assert response.status_code == 400, response.content
    assert response.json() == {"until": ["Out of the supported range of dates."]}


def test_report_bounds_take_any_offset_and_stay_in_the_calendar(manager_client):
    url = "/api/v1/audit/report/"
    ok = manager_client.get(url, {"since": "2020-01-01T00:00:00+21:17", "until": "2030-01-01"})
    assert ok.status_code == 200, ok.content
    beyond = manager_client.get(url, {"since": "2020-01-01", "until": "9999-12-31"})
    assert beyond.status_code == 400 and list(beyond.json()) == ["until"]


# --- shapes --------------------------------------------------------------------------------


def test_every_field_of_a_validation_error_holds_a_list_of_messages(manager_client):
    response = manager_client.get("/api/v1/audit/export/", {"format": "xml"})
    assert response.status_code == 400
    assert response.json() == {"format": ["Must be one of: csv, json, jsonl."]}


@pytest.mark.parametrize("path", ["/api/v1/tenants/1.5/", "/api/v1/nothing-here/"])
def test_an_api_path_no_route_matches_is_a_json_404(manager_client, path):
    response = manager_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_outside_the_api_keeps_its_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_deployment_needs_its_prices(manager_client, provider):
    body = deployment_body(provider)
    del body["input_price"], body["output_price"]
    response = manager_client.post("/api/v1/deployments/", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"input_price", "output_price"}


def test_a_deployment_is_written_with_a_provider_id(manager_client, provider):
    response = manager_client.post("/api/v1/deployments/", deployment_body(provider), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["provider"] == {
        "id": str(provider.pk),
        "name": "sim",
        "kind": "simulator",
    }


# --- conflicts -----------------------------------------------------------------------------


def _conflict(response, field: str) -> None:
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "conflict" and body["field"] == field and body["detail"]


def test_a_slug_or_name_in_use_is_a_409_naming_the_field(manager_client, acme, provider):
    _conflict(manager_client.post("/api/v1/tenants/", {"slug": "acme", "name": "A"}), "slug")
    _conflict(
        manager_client.post("/api/v1/providers/", {"name": "sim", "kind": "simulator"}), "name"
    )
    assert manager_client.post("/api/v1/routes/", {"name": "team/a"}).status_code == 201
    _conflict(manager_client.post("/api/v1/routes/", {"name": "team/a"}), "name")
    key = {"tenant": str(acme.pk), "name": "ci"}
    assert manager_client.post("/api/v1/api-keys/", key, format="json").status_code == 201
    _conflict(manager_client.post("/api/v1/api-keys/", key, format="json"), "name")
    body = deployment_body(provider)
    assert manager_client.post("/api/v1/deployments/", body, format="json").status_code == 201
    _conflict(manager_client.post("/api/v1/deployments/", body, format="json"), "public_name")
    policy = {"tenant_id": str(acme.pk), "classification": "bodies", "days": 30}
    assert manager_client.post("/api/v1/retention-policies/", policy).status_code == 201
    _conflict(manager_client.post("/api/v1/retention-policies/", policy), "classification")
    assert ApiKey.objects.count() == 1 and ModelDeployment.objects.count() == 1
    assert RetentionPolicy.objects.count() == 1


def test_renaming_onto_a_name_in_use_is_a_409(manager_client, tenant_factory, acme):
    other = tenant_factory(slug="globex", name="Globex")
    response = manager_client.patch(f"/api/v1/tenants/{other.pk}/", {"slug": "acme"})
    _conflict(response, "slug")
    other.refresh_from_db()
    assert other.slug == "globex"


def test_a_name_in_use_with_another_bad_field_is_a_400_with_both(manager_client, acme):
    response = manager_client.post("/api/v1/tenants/", {"slug": "acme", "cost_mode": "lavish"})
    assert response.status_code == 400
    assert {"slug", "name", "cost_mode"} <= set(response.json())


def test_a_race_lost_at_the_unique_index_is_a_409(acme):
    # Two requests passed the name check at once; the second insert hits the index.
    try:
        with transaction.atomic():
            Tenant.objects.create(slug="acme", name="Again")
    except IntegrityError as exc:
        response = exception_handler(exc, {})
    assert response.status_code == 409
    assert response.data == {
        "detail": "This conflicts with an existing object.",
        "code": "conflict",
    }


def test_a_validation_error_stays_a_400(acme):
    response = exception_handler(ValidationError({"name": ["This field is required."]}), {})
    assert response.status_code == 400
    assert response.data == {"name": ["This field is required."]}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite stores a NUL")
def test_a_value_the_database_refuses_is_a_400_not_a_500(acme):
    # The last resort behind validation, which should have named the field.
    try:
        with transaction.atomic():
            Tenant.objects.create(slug="nul", name="a\x00b")
    except DataError as exc:
        response = exception_handler(exc, {})
    assert response.status_code == 400
    assert response.data == {
        "detail": "A value in the request cannot be stored.",
        "code": "invalid_value",
    }
