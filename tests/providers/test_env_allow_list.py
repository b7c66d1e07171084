"""A provider's key may come only from an allowed environment variable, never the server's own.

Pointing a provider at DATABASE_URL used to make the health probe send the database
password to the provider's URL. The allow-list is enforced on every write (service, API,
configuration file, Django admin) and again when the key is read (snapshot, health probe),
so a row written before the check existed cannot leak.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from django.core.exceptions import ValidationError

from apps.providers.credentials import env_reference_error, provider_api_key
from apps.providers.health import health_check_run
from apps.providers.models import ModelDeployment, Provider
from apps.providers.services import provider_create, provider_update
from apps.routing.snapshot import build_snapshot
from atp_site.lib.config_file import ConfigError, apply_config
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

DB_SECRET = "hunter2-database-password"


@pytest.mark.parametrize(
    "name", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ATP_PROVIDER_MISTRAL", "TEAM_X_API_KEY"]
)
def test_the_default_allow_list(name):
    assert env_reference_error(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_URL",
        "REDIS_URL",
        "ATP_SECRET_KEY",
        "ATP_ENCRYPTION_KEY",
        "ATP_AUDIT_SIGNING_KEY",
        "ATP_METRICS_TOKEN",
        "ATP_ADMIN_API_KEY",  # ATP_* but not ATP_PROVIDER_*: ours, whatever its suffix
        "PGPASSWORD",
        "HOME",
        "OPENAI_KEY",
        "openai_api_key",
    ],
)
def test_other_names_are_refused(name):
    problem = env_reference_error(name)
    assert problem and name in problem and "_API_KEY" in problem


def test_the_setting_extends_the_list_but_never_to_the_servers_secrets(settings):
    assert env_reference_error("VAULT_OPENAI") is not None
    settings.ATP_PROVIDER_ENV_ALLOW = ["VAULT_*", "*"]
    assert env_reference_error("VAULT_OPENAI") is None
    assert env_reference_error("HOME") is None  # the operator asked for everything...
    for name in ("DATABASE_URL", "REDIS_URL", "ATP_SECRET_KEY", "PGPASSWORD", "DJANGO_X"):
        assert env_reference_error(name) is not None  # ...but not the server's own


def test_the_service_refuses_a_server_variable_naming_the_field():
    with pytest.raises(ValidationError) as exc:
        provider_create(
            name="p", kind="openai", base_url="https://x.test/v1", api_key_env="DATABASE_URL"
        )
    assert "DATABASE_URL" in exc.value.message_dict["api_key_env"][0]
    provider = provider_create(name="p", kind="openai", base_url="https://x.test/v1")
    with pytest.raises(ValidationError) as exc:
        provider_update(provider=provider, api_key_env="REDIS_URL")
    assert "api_key_env" in exc.value.message_dict
    assert Provider.objects.get(pk=provider.pk).api_key_env == ""


def test_the_api_answers_400_naming_the_field(admin_client):
    resp = admin_client.post(
        "/api/v1/providers/",
        {
            "name": "p",
            "kind": "openai",
            "base_url": "https://x.test/v1",
            "api_key_env": "REDIS_URL",
        },
        content_type="application/json",
    )
    assert resp.status_code == 400
    assert "REDIS_URL" in resp.json()["api_key_env"][0]
    assert not Provider.objects.exists()


def test_the_configuration_file_is_refused_with_its_path():
    document = yaml.safe_load(
        """
        version: 1
        providers:
          - name: p
            kind: openai
            base_url: https://x.test/v1
            api_key: env:ATP_SECRET_KEY
        """
    )
    with pytest.raises(ConfigError) as exc:
        apply_config(document)
    assert str(exc.value).startswith("providers[0].api_key: ATP_SECRET_KEY may not hold")
    assert not Provider.objects.exists()


def test_a_tenant_key_cannot_come_from_the_servers_settings(monkeypatch):
    monkeypatch.setenv("ATP_SECRET_KEY", "x7Hq2-server-secret-Lp9Zr4-Wm8Kt3Nv6")
    document = yaml.safe_load(
        """
        version: 1
        tenants:
          - slug: acme
            api_keys:
              - name: ci
                key: env:ATP_SECRET_KEY
        """
    )
    with pytest.raises(ConfigError, match=r"tenants\[0\]\.api_keys\[0\]\.key: ATP_SECRET_KEY"):
        apply_config(document)


def test_the_django_admin_form_refuses_it(admin_client):
    resp = admin_client.post(
        "/admin/providers/provider/add/",
        {
            "name": "p",
            "kind": "openai",
            "base_url": "https://x.test/v1",
            "api_key_env": "DATABASE_URL",
            "options": "{}",
        },
    )
    assert resp.status_code == 200  # the form again, with the error
    assert "DATABASE_URL may not hold a provider key" in resp.content.decode()
    assert not Provider.objects.exists()


# --- a row written before the allow-list existed --------------------------------------------


class Collector(FakeOpenAI):
    """An OpenAI-compatible server that accepts any key and records every model listing."""

    async def list_models(self, request):
        self.record(request, None)
        return await super().list_models(request)


@pytest.fixture
def collector() -> Iterator[FakeOpenAI]:
    fake = Collector(api_key=None, models=["m"])
    fake.start_in_thread()
    yield fake
    fake.stop()


@pytest.fixture
def legacy_provider(collector, monkeypatch) -> Provider:
    monkeypatch.setenv("DATABASE_URL", f"postgres://atp:{DB_SECRET}@db.internal/atp")
    # Saved without full_clean(), as rows were before the check.
    provider = Provider.objects.create(
        name="legacy",
        kind="openai_compatible",
        base_url=collector.base_url,
        api_key_env="DATABASE_URL",
    )
    ModelDeployment.objects.create(
        provider=provider, public_name="m", upstream_model="m", capabilities=["chat"]
    )
    return provider


def test_the_health_probe_does_not_send_a_refused_variable(legacy_provider, collector, caplog):
    health_check_run()
    assert collector.requests, "the probe reached the provider"
    sent = " ".join(str(headers) for _path, headers, _body in collector.requests)
    assert DB_SECRET not in sent
    assert "DATABASE_URL is not on the allow-list" in caplog.text


def test_the_data_plane_snapshot_does_not_read_it(legacy_provider):
    assert provider_api_key(legacy_provider) == ""
    [deployment] = build_snapshot(1).models["m"]
    assert deployment.target.api_key == ""


def test_an_allowed_variable_is_still_read(legacy_provider, monkeypatch):
    monkeypatch.setenv("LEGACY_API_KEY", "sk-from-the-environment")
    Provider.objects.filter(pk=legacy_provider.pk).update(api_key_env="LEGACY_API_KEY")
    [deployment] = build_snapshot(2).models["m"]
    assert deployment.target.api_key == "sk-from-the-environment"
