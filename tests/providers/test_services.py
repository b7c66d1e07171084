"""Provider and deployment services: validation, encrypted credentials, version bumps."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.providers import services
from apps.providers.models import ModelDeployment, Provider
from atp_site.lib import config_version, crypto

pytestmark = pytest.mark.django_db


def _provider(**kwargs) -> Provider:
    kwargs.setdefault("name", "openai")
    kwargs.setdefault("kind", "openai")
    kwargs.setdefault("base_url", "https://api.openai.com/v1")
    return services.provider_create(**kwargs)


def test_provider_api_key_is_stored_encrypted():
    provider = _provider(api_key="sk-secret-value")
    provider.refresh_from_db()
    assert provider.has_stored_api_key
    assert "sk-secret-value" not in provider.api_key_encrypted
    assert crypto.decrypt(provider.api_key_encrypted) == "sk-secret-value"


def test_provider_needs_a_base_url_unless_simulated():
    with pytest.raises(ValidationError) as exc:
        services.provider_create(name="x", kind="openai")
    assert "base_url" in exc.value.message_dict
    assert services.provider_create(name="sim", kind="simulator").pk


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"options": ["not", "a", "dict"]}, "options"),
        ({"api_key": "k", "api_key_env": "OPENAI_API_KEY"}, "api_key_env"),
    ],
)
def test_provider_create_rejects_invalid_input(kwargs, field):
    with pytest.raises(ValidationError) as exc:
        _provider(**kwargs)
    assert field in exc.value.message_dict
    assert not Provider.objects.exists()


def test_provider_update_keeps_replaces_or_removes_the_key():
    provider = _provider(api_key="first-secret")
    services.provider_update(provider=provider, region="eu")
    assert crypto.decrypt(provider.api_key_encrypted) == "first-secret"
    services.provider_update(provider=provider, api_key="second-secret")
    assert crypto.decrypt(provider.api_key_encrypted) == "second-secret"
    services.provider_update(provider=provider, api_key=None)
    provider.refresh_from_db()
    assert not provider.has_stored_api_key


def test_provider_has_one_credential_source():
    provider = _provider(api_key_env="OPENAI_API_KEY")
    services.provider_update(provider=provider, api_key="stored-secret")
    assert (provider.api_key_env, provider.has_stored_api_key) == ("", True)
    services.provider_update(provider=provider, api_key_env="OTHER_API_KEY")
    assert (provider.api_key_env, provider.has_stored_api_key) == ("OTHER_API_KEY", False)


def test_provider_delete_removes_its_deployments(deployment_factory):
    deployment = deployment_factory()
    services.provider_delete(provider=deployment.provider)
    assert not ModelDeployment.objects.exists()


def test_deployment_create_converts_prices_exactly(provider_factory):
    deployment = services.deployment_create(
        provider=provider_factory(),
        public_name="gpt-4o-mini",
        upstream_model="gpt-4o-mini",
        input_price=0.15,
        output_price="0.6",
        cached_input_price=0.075,
        capabilities=["chat"],
    )
    deployment.refresh_from_db()
    assert deployment.input_price == Decimal("0.15")
    assert deployment.output_price == Decimal("0.6")
    assert deployment.cached_input_price == Decimal("0.075")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_price": -1}, "input_price"),
        ({"output_price": "abc"}, "output_price"),
        ({"quality_score": 1.5}, "quality_score"),
        ({"capabilities": ["telepathy"]}, "capabilities"),
        ({"aliases": [1]}, "aliases"),
        ({"public_name": "taken"}, "public_name"),
    ],
)
def test_deployment_create_rejects_invalid_input(provider_factory, kwargs, field):
    provider = provider_factory()
    services.deployment_create(
        provider=provider, public_name="taken", upstream_model="u", input_price=1, output_price=1
    )
    arguments = {"public_name": "new", "upstream_model": "u", "input_price": 1, "output_price": 1}
    with pytest.raises(ValidationError) as exc:
        services.deployment_create(provider=provider, **{**arguments, **kwargs})
    assert field in exc.value.message_dict
    assert ModelDeployment.objects.count() == 1


def test_deployment_update_changes_fields(deployment_factory):
    deployment = deployment_factory()
    services.deployment_update(deployment=deployment, input_price="3.5", weight=5)
    deployment.refresh_from_db()
    assert (deployment.input_price, deployment.weight) == (Decimal("3.5"), 5)
    with pytest.raises(TypeError):
        services.deployment_update(deployment=deployment, provider=None)


WRITES = {
    "provider_create": ("none", lambda _: _provider()),
    "provider_update": ("provider", lambda p: services.provider_update(provider=p, region="eu")),
    "provider_delete": ("provider", lambda p: services.provider_delete(provider=p)),
    "deployment_create": (
        "provider",
        lambda p: services.deployment_create(
            provider=p, public_name="m", upstream_model="m", input_price=0, output_price=0
        ),
    ),
    "deployment_update": (
        "deployment",
        lambda d: services.deployment_update(deployment=d, enabled=False),
    ),
    "deployment_delete": ("deployment", lambda d: services.deployment_delete(deployment=d)),
}


@pytest.mark.parametrize(("prepare", "write"), WRITES.values(), ids=WRITES.keys())
def test_writes_bump_the_config_version_on_commit(
    prepare, write, provider_factory, deployment_factory, django_capture_on_commit_callbacks
):
    obj = {"none": lambda: None, "provider": provider_factory, "deployment": deployment_factory}[
        prepare
    ]()
    before = config_version.current()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        write(obj)
        assert config_version.current() == before
    assert config_version.bump in callbacks
    assert config_version.current() != before
