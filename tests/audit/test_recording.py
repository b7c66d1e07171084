"""Changes through services, the REST API, the admin, config files and commands are audited."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from apps.audit.context import AuditActor, acting_as
from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.providers import services as provider_services
from apps.providers.models import Provider
from apps.tenants import services as tenant_services
from apps.tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def events(event_type: str | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.order_by("sequence")
    return list(qs.filter(event_type=event_type) if event_type else qs)


def only(event_type: str) -> AuditEvent:
    found = events(event_type)
    assert len(found) == 1, [e.event_type for e in events()]
    return found[0]


def assert_chain_ok() -> None:
    result = verify_chain()
    assert result.ok, result.problem


# --- services ------------------------------------------------------------------------------


def test_tenant_lifecycle_records_before_and_after():
    with acting_as(AuditActor(user_id="7", actor="alice", source="console")):
        tenant = tenant_services.tenant_create(slug="acme", name="Acme")
        tenant_services.tenant_update(tenant=tenant, name="Acme Corp")
        tenant_id = tenant.pk
        tenant_services.tenant_delete(tenant=tenant)

    created = only("tenant.created")
    assert (created.action, created.outcome) == ("create", "success")
    assert (created.resource_type, created.resource_id) == ("tenant", str(tenant_id))
    assert created.tenant_id == tenant_id
    assert (created.user_id, created.actor, created.source) == ("7", "alice", "console")
    assert created.before is None and created.after["name"] == "Acme"

    updated = only("tenant.updated")
    assert updated.before["name"] == "Acme" and updated.after["name"] == "Acme Corp"
    assert updated.data == {"changed": ["name"]}

    deleted = only("tenant.deleted")
    assert deleted.before["slug"] == "acme" and deleted.after is None
    assert_chain_ok()


def test_update_that_changes_nothing_records_nothing(tenant_factory):
    tenant = tenant_factory(name="Same")
    tenant_services.tenant_update(tenant=tenant, name="Same")
    assert events("tenant.updated") == []


def test_failed_change_records_nothing(tenant_factory):
    tenant = tenant_factory()
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        tenant_services.tenant_update(tenant=tenant, slug="not a slug!")
    with pytest.raises(ValidationError):
        tenant_services.api_key_create(tenant=tenant, name="k", plaintext="short")
    assert AuditEvent.objects.count() == before


def test_api_key_events_never_hold_the_key_or_its_hash(tenant_factory):
    tenant = tenant_factory()
    key, plaintext = tenant_services.api_key_create(tenant=tenant, name="ci")
    tenant_services.api_key_update(api_key=key, allowed_models=["sim-fast"])
    new_key, new_plaintext = tenant_services.api_key_rotate(api_key=key)
    tenant_services.api_key_revoke(api_key=new_key)
    tenant_services.api_key_revoke(api_key=new_key)  # already revoked: nothing new

    assert [e.event_type for e in events()][-4:] == [
        "api_key.created",
        "api_key.updated",
        "api_key.rotated",
        "api_key.revoked",
    ]
    created = only("api_key.created")
    assert created.tenant_id == tenant.pk and created.after["prefix"] == key.prefix
    updated = only("api_key.updated")
    assert updated.before["allowed_models"] == [] and updated.after["allowed_models"] == [
        "sim-fast"
    ]
    rotated = only("api_key.rotated")
    assert rotated.resource_id == str(key.pk)
    assert rotated.data["replaced_by"] == str(new_key.pk)
    assert rotated.after["id"] == str(new_key.pk)
    revoked = only("api_key.revoked")
    assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"]

    text = "".join(str([e.data, e.before, e.after]) for e in events())
    for secret in (plaintext, new_plaintext, key.key_hash, new_key.key_hash):
        assert secret not in text
    assert_chain_ok()


def test_provider_key_is_masked_and_a_replaced_key_is_a_change():
    provider = provider_services.provider_create(
        name="openai", kind="openai", base_url="https://api.openai.com/v1", api_key="sk-one-1234"
    )
    provider_services.provider_update(provider=provider, api_key="sk-two-5678")
    deployment = provider_services.deployment_create(
        provider=provider,
        public_name="gpt",
        upstream_model="gpt-4o",
        input_price="2.5",
        output_price="10",
    )
    provider_services.deployment_update(deployment=deployment, input_price="2.50")
    provider_services.deployment_update(deployment=deployment, input_price="3")
    provider_services.deployment_delete(deployment=deployment)
    provider_id = provider.pk
    provider_services.provider_delete(provider=provider)

    created = only("provider.created")
    assert created.after["api_key"] == "***"
    assert "api_key_encrypted" not in created.after
    updated = only("provider.updated")
    assert updated.data["changed"] == ["api_key"]
    # 2.5 and 2.50 are one price: only the change to 3 is recorded.
    price_change = only("deployment.updated")
    assert (price_change.before["input_price"], price_change.after["input_price"]) == ("2.5", "3")
    assert only("deployment.deleted").before["public_name"] == "gpt"
    assert only("provider.deleted").resource_id == str(provider_id)
    text = "".join(str([e.data, e.before, e.after]) for e in events())
    assert "sk-one" not in text and "sk-two" not in text
    assert_chain_ok()


def test_admin_token_created_and_revoked(staff_user):
    token, plaintext = tenant_services.admin_token_create(user=staff_user, name="ci")
    tenant_services.admin_token_revoke(token=token)
    created = only("admin_token.created")
    assert created.after["user"] == staff_user.pk and "token_hash" not in created.after
    assert only("admin_token.revoked").after["revoked_at"]
    assert plaintext not in str([e.after for e in events()])


# --- REST API, admin -------------------------------------------------------------------------


def test_rest_api_change_names_the_user(manager_client, manager_user, tenant_factory):
    tenant = tenant_factory()
    response = manager_client.post(
        "/api/v1/api-keys/",
        {"tenant": str(tenant.pk), "name": "ci"},
        format="json",
        HTTP_X_REQUEST_ID="trace-42",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 201
    event = only("api_key.created")
    assert (event.user_id, event.actor, event.source) == (str(manager_user.pk), "manager", "api")
    assert event.request_id == "trace-42" and event.ip_address == "10.1.2.3"
    assert event.session_id and len(event.session_id) == 32
    assert response.json()["key"] not in str(event.after)
    assert_chain_ok()


def test_rest_api_change_by_admin_token_names_the_token_user(token_client, manager_user):
    key_count = ApiKey.objects.count()
    tenant = Tenant.objects.create(slug="t1", name="T1")
    response = token_client.post(
        "/api/v1/api-keys/", {"tenant": str(tenant.pk), "name": "ci"}, format="json"
    )
    assert response.status_code == 201 and ApiKey.objects.count() == key_count + 1
    event = only("api_key.created")
    assert (event.user_id, event.actor, event.source) == (str(manager_user.pk), "manager", "api")
    assert event.session_id


def test_admin_add_and_change_record_the_superuser(admin_client, admin_user):
    add = admin_client.post(
        reverse("admin:providers_provider_add"),
        {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": "sk-typed-into-the-admin",
            "api_key_env": "",
            "options": "{}",
            "enabled": "on",
        },
    )
    assert add.status_code == 302, add.content
    provider = Provider.objects.get(name="openai")
    change = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": "",
            "api_key_env": "",
            "options": "{}",
            "enabled": "on",
            "region": "eu",
        },
    )
    assert change.status_code == 302, change.content

    created = only("provider.created")
    assert (created.user_id, created.actor, created.source) == (
        str(admin_user.pk),
        admin_user.username,
        "admin",
    )
    updated = only("provider.updated")
    assert updated.source == "admin"
    assert (updated.before["region"], updated.after["region"]) == ("", "eu")
    assert updated.data["changed"] == ["region"]
    assert "sk-typed-into-the-admin" not in str([e.data, e.before, e.after] for e in events())
    assert_chain_ok()


# --- config file and commands ----------------------------------------------------------------

CONFIG = """
version: 1
providers:
  - name: sim
    kind: simulator
    models:
      - name: sim-fast
        upstream: sim-fast-1
        prices: {input: 1, output: 2}
tenants:
  - slug: acme
    name: Acme
    api_keys:
      - name: ci
        key: sk-atp-config-file-key-0123456789
"""


def test_atp_apply_records_changes_as_the_config_file(tmp_path: Path):
    path = tmp_path / "atp.yaml"
    path.write_text(CONFIG)
    call_command("atp_apply", str(path), stdout=io.StringIO())

    types = [e.event_type for e in events()]
    assert types == ["provider.created", "deployment.created", "tenant.created", "api_key.created"]
    for event in events():
        assert (event.actor, event.source) == ("config:atp.yaml", "config")
    assert "sk-atp-config-file-key" not in str([e.after for e in events()])

    # Applying the same file again changes nothing and records nothing.
    call_command("atp_apply", str(path), stdout=io.StringIO())
    assert len(events()) == 4

    path.write_text(CONFIG.replace("name: Acme", "name: Acme Corp"))
    call_command("atp_apply", str(path), stdout=io.StringIO())
    assert only("tenant.updated").after["name"] == "Acme Corp"
    assert_chain_ok()


def test_dry_run_records_nothing(tmp_path: Path):
    path = tmp_path / "atp.yaml"
    path.write_text(CONFIG)
    call_command("atp_apply", str(path), "--dry-run", stdout=io.StringIO())
    assert events() == []


def test_cli_commands_are_recorded_as_the_cli(staff_user, tmp_path: Path):
    out = io.StringIO()
    call_command("atp_admin_token", "--user", "staff", "--name", "ops", stdout=out)
    event = only("admin_token.created")
    assert (event.actor, event.source) == ("cli:atp_admin_token", "cli")
    assert out.getvalue().strip() not in str(event.after)

    call_command("atp_export", "-o", str(tmp_path / "export.yaml"), stderr=io.StringIO())
    exported = only("config.exported")
    assert (exported.actor, exported.source, exported.action) == ("cli:atp_export", "cli", "export")
    assert_chain_ok()
