"""The provider and deployment endpoints: write-only credentials, brief nesting, filters."""

from __future__ import annotations

import pytest

from apps.providers.models import Provider
from apps.tenants.permissions import CHANGE_PROVIDER_CREDENTIALS
from atp_site.lib import crypto

pytestmark = pytest.mark.django_db

SECRET = "sk-live-do-not-leak-0123456789"


def _assert_no_secret(response, provider: Provider) -> None:
    text = response.content.decode()
    assert SECRET not in text
    assert provider.api_key_encrypted not in text
    assert "api_key_encrypted" not in text
    assert '"api_key"' not in text


def test_provider_key_is_write_only(manager_client):
    response = manager_client.post(
        "/api/v1/providers/",
        {"name": "openai", "kind": "openai", "base_url": "https://x.test/v1", "api_key": SECRET},
        format="json",
    )
    assert response.status_code == 201
    provider = Provider.objects.get(pk=response.json()["id"])
    assert crypto.decrypt(provider.api_key_encrypted) == SECRET
    assert response.json()["has_api_key"] is True
    assert response.json()["api_key_env"] == ""
    _assert_no_secret(response, provider)
    for later in (
        manager_client.get("/api/v1/providers/"),
        manager_client.get(f"/api/v1/providers/{provider.pk}/"),
        manager_client.patch(f"/api/v1/providers/{provider.pk}/", {"region": "eu"}, format="json"),
        manager_client.get("/api/v1/deployments/"),
    ):
        assert later.status_code == 200
        _assert_no_secret(later, provider)
    provider.refresh_from_db()
    assert crypto.decrypt(provider.api_key_encrypted) == SECRET


def test_provider_key_can_be_replaced_by_an_env_reference(manager_client, manager_user, grant):
    grant(manager_user, CHANGE_PROVIDER_CREDENTIALS)
    provider = Provider(name="p", kind="openai", base_url="https://x.test/v1")
    provider.set_api_key(SECRET)
    provider.save()
    response = manager_client.patch(
        f"/api/v1/providers/{provider.pk}/", {"api_key_env": "OPENAI_API_KEY"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["has_api_key"], response.json()["api_key_env"]) == (
        False,
        "OPENAI_API_KEY",
    )


def test_provider_key_and_env_together_is_a_400(manager_client, manager_user, grant):
    grant(manager_user, CHANGE_PROVIDER_CREDENTIALS)
    response = manager_client.post(
        "/api/v1/providers/",
        {
            "name": "p",
            "kind": "openai",
            "base_url": "https://x.test/v1",
            "api_key": SECRET,
            "api_key_env": "OPENAI_API_KEY",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "api_key_env" in response.json()


def test_deployment_shows_a_brief_provider_and_takes_its_id(manager_client, provider_factory):
    provider = provider_factory()
    response = manager_client.post(
        "/api/v1/deployments/",
        {
            "provider": str(provider.pk),
            "public_name": "m",
            "upstream_model": "m-2025",
            "input_price": "1.5",
            "output_price": "2",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["provider"] == {
        "id": str(provider.pk),
        "name": provider.name,
        "kind": provider.kind,
    }


def test_deployment_name_clash_is_a_409_naming_public_name(manager_client, deployment_factory):
    existing = deployment_factory()
    response = manager_client.post(
        "/api/v1/deployments/",
        {
            "provider": str(existing.provider_id),
            "public_name": existing.public_name,
            "upstream_model": "x",
            "input_price": "1",
            "output_price": "1",
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["field"] == "public_name"


def test_deployment_filters(manager_client, deployment_factory, provider_factory):
    provider = provider_factory()
    on = deployment_factory(provider=provider, public_name="alpha")
    off = deployment_factory(provider=provider, public_name="beta", enabled=False)
    deployment_factory(public_name="alpha")  # same name, other provider

    def names(**params) -> list[tuple[str, str]]:
        results = manager_client.get("/api/v1/deployments/", params).json()["results"]
        return sorted((d["public_name"], d["provider"]["id"]) for d in results)

    assert names(provider=str(provider.pk)) == [
        ("alpha", str(provider.pk)),
        ("beta", str(provider.pk)),
    ]
    assert names(provider=str(provider.pk), enabled="false") == [("beta", str(off.provider_id))]
    assert len(names(public_name="alpha")) == 2
    assert names(public_name="alpha", provider=str(provider.pk)) == [("alpha", str(on.provider_id))]


def test_openapi_schema_lists_the_endpoints(manager_client):
    response = manager_client.get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/deployments/" in response.content


def test_prices_alone_through_the_api_with_the_prices_permission(user_factory, grant):
    """The cost-admin's permission changes prices through the API as in the console: only
    the prices given, exact decimals, audited; the rest of the deployment is not theirs."""
    from apps.audit.models import AuditEvent
    from apps.providers.models import ModelDeployment
    from tests.conftest import client_for

    provider = Provider.objects.create(name="p", kind="openai", base_url="https://x.test/v1")
    deployment = ModelDeployment.objects.create(
        provider=provider, public_name="m", upstream_model="m", input_price="1", output_price="2"
    )
    cost_admin = grant(
        user_factory(username="cost"),
        "providers.view_modeldeployment",
        "providers.change_deployment_prices",
    )
    client = client_for(cost_admin)
    url = f"/api/v1/deployments/{deployment.pk}/prices/"
    done = client.post(url, {"output_price": "2.5", "reasoning_price": "3"}, format="json")
    assert done.status_code == 200, done.content
    assert (done.json()["input_price"], done.json()["output_price"]) == ("1.000000", "2.500000")
    deployment.refresh_from_db()
    assert str(deployment.reasoning_price) == "3.000000"
    changed = AuditEvent.objects.filter(event_type="deployment.updated").latest("sequence")
    assert set(changed.data["changed"]) == {"output_price", "reasoning_price"}
    bad = client.post(url, {"input_price": "-1"}, format="json")
    assert bad.status_code == 400 and "input_price" in bad.json()
    assert (
        client.patch(
            f"/api/v1/deployments/{deployment.pk}/", {"weight": 5}, format="json"
        ).status_code
        == 403
    )
    reader = grant(user_factory(username="reader"), "providers.view_modeldeployment")
    refused = client_for(reader).post(url, {"input_price": "0"}, format="json")
    assert refused.status_code == 403
    deployment.refresh_from_db()
    assert str(deployment.input_price) == "1.000000"
