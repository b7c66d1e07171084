"""CRUD, pagination, validation and permission checks, written once for every management resource."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from django.db.models import Model

from apps.providers.models import ModelDeployment, Provider
from apps.tenants.models import AdminToken, ApiKey, Tenant
from apps.tenants.services import admin_token_create, api_key_create

pytestmark = pytest.mark.django_db


@dataclass
class Resource:
    """What the generic suite needs to know about one endpoint."""

    url: str
    model: type[Model]
    # Each callable gets `f`: the factories and the acting staff user.
    # Creates one object the acting user can see.
    make: Callable[[SimpleNamespace], Model]
    # A valid create payload; may create the objects it refers to.
    payload: Callable[[SimpleNamespace], dict[str, Any]]
    # A partial update and the field that shows it took effect.
    patch: dict[str, Any] = field(default_factory=dict)
    # An invalid create payload and the field the 400 must name.
    invalid: Callable[[SimpleNamespace], tuple[dict[str, Any], str]] = lambda f: ({}, "name")
    can_update: bool = True
    can_delete: bool = True


def _deployment_payload(f: SimpleNamespace) -> dict[str, Any]:
    return {
        "provider": str(f.provider().pk),
        "public_name": "gpt-test",
        "upstream_model": "gpt-test-2025",
        "input_price": "0.15",
        "output_price": "0.6",
        "capabilities": ["chat", "tools"],
        "quality_score": 0.7,
    }


RESOURCES = {
    "tenants": Resource(
        url="/api/v1/tenants/",
        model=Tenant,
        make=lambda f: f.tenant(),
        payload=lambda f: {"slug": "acme", "name": "Acme Corp"},
        patch={"name": "Acme Renamed"},
        invalid=lambda f: ({"slug": "not a slug!", "name": "x"}, "slug"),
    ),
    "api-keys": Resource(
        url="/api/v1/api-keys/",
        model=ApiKey,
        make=lambda f: api_key_create(tenant=f.tenant(), name="k")[0],
        payload=lambda f: {"tenant": str(f.tenant().pk), "name": "ci"},
        patch={"name": "ci-renamed"},
        invalid=lambda f: ({"tenant": str(f.tenant().pk), "allowed_models": ["x"]}, "name"),
        can_delete=False,
    ),
    "providers": Resource(
        url="/api/v1/providers/",
        model=Provider,
        make=lambda f: f.provider(),
        payload=lambda f: {"name": "openai", "kind": "openai", "base_url": "https://x.test/v1"},
        patch={"region": "eu"},
        invalid=lambda f: ({"name": "openai", "kind": "openai"}, "base_url"),
    ),
    "deployments": Resource(
        url="/api/v1/deployments/",
        model=ModelDeployment,
        make=lambda f: f.deployment(),
        payload=_deployment_payload,
        patch={"weight": 7},
        invalid=lambda f: ({**_deployment_payload(f), "quality_score": 1.5}, "quality_score"),
    ),
    "admin-tokens": Resource(
        url="/api/v1/admin-tokens/",
        model=AdminToken,
        make=lambda f: admin_token_create(user=f.user, name="t")[0],
        payload=lambda f: {"name": "laptop"},
        can_update=False,
        can_delete=False,
    ),
}


@pytest.fixture
def f(tenant_factory, provider_factory, deployment_factory, manager_user) -> SimpleNamespace:
    return SimpleNamespace(
        tenant=tenant_factory,
        provider=provider_factory,
        deployment=deployment_factory,
        user=manager_user,
    )


resources = pytest.mark.parametrize("resource", RESOURCES.values(), ids=RESOURCES.keys())


@resources
def test_list_is_paginated(resource, f, manager_client, manager_user):
    for _ in range(3):
        resource.make(f)
    response = manager_client.get(resource.url, {"limit": 2})
    assert response.status_code == 200
    body = response.json()
    expected = resource.model.objects.count()
    if resource.model is AdminToken:
        expected = AdminToken.objects.filter(user=manager_user).count()
    assert body["count"] == expected >= 3
    assert len(body["results"]) == 2
    assert body["next"]


@resources
def test_create_then_retrieve(resource, f, manager_client):
    response = manager_client.post(resource.url, resource.payload(f), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    detail = manager_client.get(f"{resource.url}{created['id']}/")
    assert detail.status_code == 200
    assert detail.json()["id"] == created["id"]
    assert resource.model.objects.filter(pk=created["id"]).exists()


@resources
def test_partial_update(resource, f, manager_client, manager_user):
    obj = resource.make(f)
    response = manager_client.patch(f"{resource.url}{obj.pk}/", resource.patch, format="json")
    if not resource.can_update:
        assert response.status_code == 405
        return
    assert response.status_code == 200, response.content
    for key, value in resource.patch.items():
        assert response.json()[key] == value
        obj.refresh_from_db()
        assert getattr(obj, key) == value


@resources
def test_delete(resource, f, manager_client, manager_user):
    obj = resource.make(f)
    response = manager_client.delete(f"{resource.url}{obj.pk}/")
    if not resource.can_delete:
        assert response.status_code == 405
        assert resource.model.objects.filter(pk=obj.pk).exists()
        return
    assert response.status_code == 204
    assert not resource.model.objects.filter(pk=obj.pk).exists()


@resources
def test_invalid_create_is_a_400_naming_the_field(resource, f, manager_client):
    payload, field_name = resource.invalid(f)
    response = manager_client.post(resource.url, payload, format="json")
    assert response.status_code == 400
    assert field_name in response.json()


@resources
def test_anonymous_gets_401(resource, f, api_client):
    assert api_client.get(resource.url).status_code == 401
    assert api_client.post(resource.url, {}, format="json").status_code == 401


@resources
def test_staff_without_permissions_gets_403(resource, f, api_client, staff_user, plain_user):
    for user in (staff_user, plain_user):
        api_client.force_login(user)
        assert api_client.get(resource.url).status_code == 403
        assert api_client.post(resource.url, {}, format="json").status_code == 403


@resources
def test_admin_token_authenticates(resource, f, token_client, manager_user):
    obj = resource.make(f)
    response = token_client.get(f"{resource.url}{obj.pk}/")
    assert response.status_code == 200
    assert response.json()["id"] == str(obj.pk)


@resources
def test_search_and_ordering_are_accepted(resource, f, manager_client, manager_user):
    resource.make(f)
    response = manager_client.get(
        resource.url, {"search": "zzz-no-match", "ordering": "-created_at"}
    )
    assert response.status_code == 200
    if resource.model is not AdminToken:
        assert response.json()["count"] == 0
