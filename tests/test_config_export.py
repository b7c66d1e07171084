"""Exporting configuration: the same format back, secrets only as env: references."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command

from apps.providers.services import provider_create
from apps.tenants.services import api_key_create, api_key_revoke
from atp_site.lib.config_file import apply_config, export_config, export_config_yaml

pytestmark = pytest.mark.django_db

DOCUMENT = """
version: 1
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: env:OPENAI_API_KEY
    timeouts: {connect: 5}
    options: {organization: org-1}
    models:
      - name: gpt-4o-mini
        aliases: [fast]
        prices: {input: 0.15, output: 0.6, cached_input: 0.075, reasoning: 1}
        max_output_tokens: 16384
        capabilities: [chat, streaming]
        quality: 0.7
        weight: 50
  - name: ollama
    kind: ollama
    base_url: http://127.0.0.1:11434
    enabled: false
tenants:
  - slug: acme
    name: Acme Corp
    api_keys:
      - name: ci
        key: atp_a-literal-ci-key-5Nw8Hq2Zt6Yc
        allowed_models: [gpt-4o-mini]
        expires_at: 2099-01-01T00:00:00Z
      - name: dev
  - slug: idle
    name: Idle Inc
    active: false
"""


def test_export_round_trip_changes_nothing():
    apply_config(yaml.safe_load(DOCUMENT))
    exported = export_config()

    report = apply_config(exported, prune=True)

    assert not report.changed, report.lines()
    assert export_config() == exported
    # Through YAML text too, as the command writes it.
    assert not apply_config(yaml.safe_load(export_config_yaml()), prune=True).changed


def test_export_writes_env_references_and_no_secrets(tenant_factory):
    provider_create(
        name="anthropic",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        api_key="sk-ant-stored-secret",
    )
    provider_create(
        name="openai", kind="openai", base_url="https://x.test", api_key_env="OAI_API_KEY"
    )
    key, plaintext = api_key_create(tenant=tenant_factory(slug="acme"), name="ci")

    text = export_config_yaml()
    data = yaml.safe_load(text)

    keys = {p["name"]: p["api_key"] for p in data["providers"]}
    assert keys == {"anthropic": "env:ATP_PROVIDER_ANTHROPIC_API_KEY", "openai": "env:OAI_API_KEY"}
    assert "set ATP_PROVIDER_ANTHROPIC_API_KEY before applying" in text
    assert data["tenants"][0]["api_keys"] == [{"name": "ci", "prefix": key.prefix}]
    for secret in ("sk-ant-stored-secret", plaintext, key.key_hash):
        assert secret not in text


def test_revoked_keys_are_not_exported(api_key_factory):
    key, _ = api_key_factory(name="old")
    api_key_revoke(api_key=key)
    assert export_config()["tenants"][0]["api_keys"] == []


def test_export_command_writes_stdout_or_a_file(tmp_path, capsys, tenant_factory):
    tenant_factory(slug="acme")
    call_command("atp_export")
    assert yaml.safe_load(capsys.readouterr().out)["tenants"][0]["slug"] == "acme"
    target = tmp_path / "out.yaml"
    call_command("atp_export", "-o", str(target))
    assert yaml.safe_load(target.read_text())["version"] == 1


ROUTES_DOCUMENT = """
version: 1
tenants:
  - slug: acme
    store_bodies: true
    cost_mode: quality_first
    preferred_regions: [eu, us-east]
routes:
  - name: team/coding
    strategy: learned
    tier: high
    candidates: [code-model]
    candidate_filter: {regions: [eu], max_input_price: 5}
    retry: {max_attempts: 3, jitter: 0.1}
    timeouts: {first_byte: 10.5}
    challenger: new-model
    challenger_share: 0.25
  - name: auto
    description: Overrides the built-in
    exploration: false
retention:
  - days: 400
  - tenant: acme
    classification: bodies
    days: 7
"""


def test_routes_retention_and_tenant_settings_round_trip():
    from apps.audit.models import RetentionPolicy
    from apps.tenants.models import Tenant

    apply_config(yaml.safe_load(ROUTES_DOCUMENT))
    # A policy of a tenant that no longer exists is exported by the tenant's id.
    gone = Tenant.objects.create(slug="gone", name="Gone")
    RetentionPolicy.objects.create(tenant_id=gone.pk, classification="requests", days=5)
    Tenant.objects.filter(pk=gone.pk).delete()

    exported = export_config()

    assert [r["name"] for r in exported["routes"]] == ["auto", "team/coding"]
    coding = exported["routes"][1]
    assert coding["retry"] == {"max_attempts": 3, "jitter": 0.1}
    assert coding["challenger"] == "new-model"
    retention = exported["retention"]
    assert {"tenant": "acme", "classification": "bodies", "days": 7} in retention
    assert {"tenant": str(gone.pk), "classification": "requests", "days": 5} in retention
    acme = exported["tenants"][0]
    assert (acme["store_bodies"], acme["cost_mode"]) == (True, "quality_first")
    assert acme["preferred_regions"] == ["eu", "us-east"]

    assert not apply_config(exported, prune=True).changed
    assert not apply_config(yaml.safe_load(export_config_yaml()), prune=True).changed
    assert export_config() == exported
