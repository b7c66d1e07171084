"""Routes control plane: services (validated, audited, versioned), REST API and Django admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.routing.models import BanditArm, Route
from apps.routing.route_services import route_create, route_delete, route_update
from apps.routing.snapshot import build_snapshot
from atp_site.lib import config_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/routes/"

CODING = {
    "name": "team/coding",
    "description": "Code first",
    "strategy": "learned",
    "tier": "high",
    "candidates": ["code-model", "frontier"],
    "candidate_filter": {"capabilities": ["tools"], "min_quality": 0.6},
    "fallbacks": ["cheap"],
    "retry": {"max_attempts": 3, "initial_backoff_ms": 50, "multiplier": 2, "jitter": 0.2},
    "timeouts": {"connect": 2, "first_byte": 20, "total": 120},
    "exploration_rate": 0.05,
    "challenger": "new-model",
    "challenger_share": 0.1,
    "cache_ttl_seconds": 300,
}


# --- services -------------------------------------------------------------------------------


def test_create_update_delete_are_audited_and_bump_the_version(
    django_capture_on_commit_callbacks,
):
    before = config_version.current()
    with django_capture_on_commit_callbacks(execute=True):
        route = route_create(**CODING)
    assert config_version.current() != before
    # The data plane's snapshot sees it.
    info = build_snapshot(1).routes["team/coding"]
    assert info.candidates == ("code-model", "frontier") and info.retry["max_attempts"] == 3

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        route_update(route=route, tier="balanced", fallbacks=["cheap", "cheap", " other "])
    assert len(callbacks) == 1
    route.refresh_from_db()
    assert route.fallbacks == ["cheap", "other"]
    # Nothing changed: nothing recorded, nothing invalidated.
    with django_capture_on_commit_callbacks() as callbacks:
        route_update(route=route, tier="balanced")
    assert callbacks == []

    route_id = str(route.id)
    route_delete(route=route)
    events = list(
        AuditEvent.objects.filter(resource_type="route").values_list("event_type", "resource_id")
    )
    assert events == [
        ("route.created", route_id),
        ("route.updated", route_id),
        ("route.deleted", route_id),
    ]
    updated = AuditEvent.objects.get(event_type="route.updated")
    assert updated.data["changed"] == ["fallbacks", "tier"]
    assert updated.before["tier"] == "high" and updated.after["tier"] == "balanced"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": "has space"}, "name", "letters"),
        ({"strategy": "psychic"}, "strategy", "not a valid choice"),
        ({"tier": "ultra"}, "tier", "not a valid choice"),
        ({"candidates": "gpt-4o"}, "candidates", "list of model names"),
        ({"candidates": ["ok", 3]}, "candidates", "list of model names"),
        ({"fallbacks": [""]}, "fallbacks", "list of model names"),
        ({"candidate_filter": {"colour": "red"}}, "candidate_filter", "Unknown key 'colour'"),
        ({"candidate_filter": {"regions": "eu"}}, "candidate_filter", "regions: must be a list"),
        ({"candidate_filter": {"min_quality": 2}}, "candidate_filter", "between 0 and 1"),
        ({"candidate_filter": {"max_input_price": -1}}, "candidate_filter", ">= 0"),
        ({"retry": {"attempts": 3}}, "retry", "Unknown key 'attempts'"),
        ({"retry": {"max_attempts": 0}}, "retry", "max_attempts: must be a number from 1"),
        ({"retry": {"max_attempts": 2.5}}, "retry", "whole number"),
        ({"retry": {"multiplier": 0.5}}, "retry", "multiplier"),
        ({"retry": {"jitter": 1}}, "retry", "jitter"),
        ({"retry": {"initial_backoff_ms": 500, "max_backoff_ms": 100}}, "retry", "not be below"),
        ({"timeouts": {"total": 0}}, "timeouts", "total: must be a number of seconds > 0"),
        ({"timeouts": {"read": 5}}, "timeouts", "Unknown key 'read'"),
        ({"timeouts": {"connect": True}}, "timeouts", "connect"),
        ({"exploration_rate": 1.5}, "exploration_rate", "between 0 and 1"),
        ({"challenger_share": -0.1}, "challenger_share", "between 0 and 1"),
        ({"semantic_threshold": float("nan")}, "semantic_threshold", "between 0 and 1"),
        ({"challenger": "", "challenger_share": 0.2}, "challenger", "Name the challenger"),
    ],
)
def test_invalid_routes_are_refused_naming_the_field(fields, field, message):
    with pytest.raises(ValidationError) as exc:
        route_create(**{**CODING, **fields})
    assert field in exc.value.message_dict, exc.value.message_dict
    assert message in " ".join(exc.value.message_dict[field])
    assert not Route.objects.exists() and not AuditEvent.objects.exists()


def test_route_names_are_unique():
    route_create(name="atp/fast", strategy="cheapest")
    with pytest.raises(ValidationError) as exc:
        route_create(name="atp/fast")
    assert "name" in exc.value.message_dict


# --- REST API -------------------------------------------------------------------------------


def test_api_crud(manager_client, manager_user):
    resp = manager_client.post(URL, CODING, format="json")
    assert resp.status_code == 201, resp.json()
    created = resp.json()
    assert created["candidates"] == ["code-model", "frontier"]
    assert created["retry"]["max_attempts"] == 3
    pk = created["id"]

    listed = manager_client.get(URL, {"name": "team/coding"}).json()
    assert [r["id"] for r in listed["results"]] == [pk]

    resp = manager_client.patch(f"{URL}{pk}/", {"enabled": False}, format="json")
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    assert "team/coding" not in build_snapshot(1).routes

    assert manager_client.delete(f"{URL}{pk}/").status_code == 204
    assert not Route.objects.exists()
    actors = set(AuditEvent.objects.filter(resource_type="route").values_list("actor", "source"))
    assert actors == {(manager_user.get_username(), "api")}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x y"}, "name"),
        ({"name": "r", "strategy": "psychic"}, "strategy"),
        ({"name": "r", "candidates": "one"}, "candidates"),
        ({"name": "r", "candidate_filter": ["capabilities"]}, "candidate_filter"),
        ({"name": "r", "candidate_filter": {"bogus": 1}}, "candidate_filter"),
        ({"name": "r", "retry": {"max_attempts": 100}}, "retry"),
        ({"name": "r", "timeouts": {"total": -1}}, "timeouts"),
        ({"name": "r", "exploration_rate": "lots"}, "exploration_rate"),
        ({"name": "r", "challenger_share": 3}, "challenger_share"),
        ({"name": "r", "cache_ttl_seconds": -5}, "cache_ttl_seconds"),
        ({}, "name"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(manager_client, payload, field):
    resp = manager_client.post(URL, payload, format="json")
    assert resp.status_code == 400 and field in resp.json(), resp.json()
    assert not Route.objects.exists()


def test_api_duplicate_name_is_a_409(manager_client):
    assert manager_client.post(URL, {"name": "atp/high"}, format="json").status_code == 201
    resp = manager_client.post(URL, {"name": "atp/high"}, format="json")
    assert resp.status_code == 409 and resp.json()["field"] == "name"


def test_api_needs_a_permission(api_client, plain_user):
    assert api_client.get(URL).status_code == 401
    api_client.force_login(plain_user)
    assert api_client.post(URL, {"name": "r"}, format="json").status_code == 403


def test_routes_are_in_the_openapi_schema(manager_client):
    schema = manager_client.get("/api/v1/schema/", {"format": "json"}).json()
    assert "/api/v1/routes/" in schema["paths"] and "/api/v1/routes/{id}/" in schema["paths"]


# --- Django admin ----------------------------------------------------------------------------


def _admin_form(**overrides) -> dict:
    data = {
        "name": "team/cheap",
        "description": "",
        "enabled": "on",
        "strategy": "cheapest",
        "tier": "fast",
        "candidates": '["a", "b"]',
        "candidate_filter": "{}",
        "fallbacks": "[]",
        "retry": '{"max_attempts": 2}',
        "timeouts": "{}",
        "exploration": "on",
        "exploration_rate": "0.1",
        "challenger": "",
        "challenger_share": "0",
        "cache_ttl_seconds": "0",
        "semantic_threshold": "0.92",
    }
    return {**data, **overrides}


def test_admin_writes_go_through_the_services(admin_client):
    resp = admin_client.post("/admin/routing/route/add/", _admin_form())
    assert resp.status_code == 302
    route = Route.objects.get()
    assert route.candidates == ["a", "b"]
    assert AuditEvent.objects.get(event_type="route.created").source == "admin"

    resp = admin_client.post(
        f"/admin/routing/route/{route.pk}/change/", _admin_form(tier="high", retry="{}")
    )
    assert resp.status_code == 302
    assert AuditEvent.objects.get(event_type="route.updated").data["changed"] == ["retry", "tier"]

    resp = admin_client.post(f"/admin/routing/route/{route.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302
    assert AuditEvent.objects.filter(event_type="route.deleted").exists()


def test_admin_shows_service_errors_on_the_form(admin_client):
    resp = admin_client.post("/admin/routing/route/add/", _admin_form(retry='{"max_attempts": 99}'))
    assert resp.status_code == 200
    assert "max_attempts: must be a number from 1 to 10" in resp.content.decode()
    assert not Route.objects.exists()


def test_bandit_arms_are_read_only_in_the_admin(admin_client):
    arm = BanditArm.objects.create(
        route="auto", cluster=3, model="sim-fast", pulls=4, reward_sum=3, cost_sum=0.02
    )
    page = admin_client.get("/admin/routing/banditarm/")
    assert page.status_code == 200 and "sim-fast" in page.content.decode()
    assert "0.750" in page.content.decode()
    assert admin_client.get("/admin/routing/banditarm/add/").status_code == 403
    detail = admin_client.get(f"/admin/routing/banditarm/{arm.pk}/change/")
    assert detail.status_code == 200 and 'name="pulls"' not in detail.content.decode()
    resp = admin_client.post(f"/admin/routing/banditarm/{arm.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 403 and BanditArm.objects.filter(pk=arm.pk).exists()
