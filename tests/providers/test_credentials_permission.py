"""Changing where a provider's key goes (base URL) or comes from (key, environment variable)
needs `providers.change_provider_credentials`, which no role has by default."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from apps.providers.models import Provider
from apps.providers.services import provider_create, provider_update
from atp_site.lib import crypto

pytestmark = pytest.mark.django_db

SECRET = "sk-stored-provider-key-0123456789"


@pytest.fixture
def provider() -> Provider:
    return provider_create(
        name="openai", kind="openai", base_url="https://api.openai.example/v1", api_key=SECRET
    )


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://collector.example/v1"},
        {"api_key": "sk-another-key-0123456789"},
        {"api_key": None},
        {"api_key_env": "OPENAI_API_KEY"},
    ],
)
def test_a_credential_change_needs_the_permission(provider, manager_user, grant, change):
    with pytest.raises(PermissionDenied):
        provider_update(provider=provider, by=manager_user, **change)
    provider.refresh_from_db()
    assert provider.base_url == "https://api.openai.example/v1"
    assert crypto.decrypt(provider.api_key_encrypted) == SECRET
    grant(manager_user, "providers.change_provider_credentials")
    provider_update(provider=provider, by=manager_user, **change)


def test_other_fields_and_unchanged_values_need_only_the_model_permission(provider, manager_user):
    provider_update(
        provider=provider, by=manager_user, region="eu", base_url=provider.base_url, api_key_env=""
    )
    assert Provider.objects.get(pk=provider.pk).region == "eu"


def test_reading_the_environment_on_create_needs_it_too(manager_user):
    with pytest.raises(PermissionDenied):
        provider_create(
            name="p",
            kind="openai",
            base_url="https://x.test/v1",
            api_key_env="P_API_KEY",
            by=manager_user,
        )
    provider_create(
        name="p", kind="openai", base_url="https://x.test/v1", api_key="sk-own-key", by=manager_user
    )


def test_operators_apply_configuration_without_it(provider):
    provider_update(provider=provider, base_url="https://elsewhere.example/v1")  # by=None


def test_the_django_admin_shows_but_does_not_edit_them(client, manager_user, provider):
    client.force_login(manager_user)
    page = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    assert 'name="base_url"' not in page and 'name="api_key"' not in page
    assert "https://api.openai.example/v1" in page  # shown read-only
    resp = client.post(
        f"/admin/providers/provider/{provider.pk}/change/",
        {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://collector.example/v1",
            "api_key": "sk-attacker-0123456789",
            "region": "eu",
            "options": "{}",
            "enabled": "on",
        },
    )
    assert resp.status_code == 302
    provider.refresh_from_db()
    assert provider.region == "eu"
    assert provider.base_url == "https://api.openai.example/v1"
    assert crypto.decrypt(provider.api_key_encrypted) == SECRET
