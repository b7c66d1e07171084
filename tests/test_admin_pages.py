"""Django admin pages render for every model, write through services and never show secrets."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.providers.models import Provider
from apps.routing.models import RequestLog
from apps.tenants.keys import hash_key
from apps.tenants.models import AdminToken, ApiKey
from apps.tenants.services import admin_token_create
from atp_site.lib import crypto

pytestmark = pytest.mark.django_db

MODELS = {
    "tenant": ("tenants", "tenant"),
    "apikey": ("tenants", "apikey"),
    "admintoken": ("tenants", "admintoken"),
    "provider": ("providers", "provider"),
    "deployment": ("providers", "modeldeployment"),
    "requestlog": ("routing", "requestlog"),
}


@pytest.fixture
def populated(api_key_factory, deployment_factory, admin_user):
    """One of everything, with secrets in every place they could leak from."""
    key, key_plain = api_key_factory(name="ci")
    token, token_plain = admin_token_create(user=admin_user, name="laptop")
    deployment = deployment_factory()
    provider = deployment.provider
    provider.set_api_key("sk-provider-secret-123")
    provider.save()
    RequestLog.objects.create(
        request_id="req-1",
        endpoint="chat.completions",
        tenant=key.tenant,
        api_key=key,
        provider=provider,
        deployment=deployment,
        status=RequestLog.Status.SUCCESS,
        http_status=200,
    )
    objects = {
        "tenant": key.tenant,
        "apikey": key,
        "admintoken": token,
        "provider": provider,
        "deployment": deployment,
        "requestlog": RequestLog.objects.get(),
    }
    secrets = [
        key_plain,
        key.key_hash,
        token_plain,
        token.token_hash,
        "sk-provider-secret-123",
        provider.api_key_encrypted,
    ]
    return objects, secrets


def _assert_no_secrets(response, secrets: list[str]) -> None:
    text = response.content.decode()
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize(("app", "model"), MODELS.values(), ids=MODELS.keys())
def test_changelist_and_change_page_render_without_secrets(admin_client, populated, app, model):
    objects, secrets = populated
    changelist = admin_client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert changelist.status_code == 200
    _assert_no_secrets(changelist, secrets)
    obj = objects[next(k for k, v in MODELS.items() if v == (app, model))]
    change = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
    assert change.status_code == 200
    _assert_no_secrets(change, secrets)


@pytest.mark.parametrize(("app", "model"), MODELS.values(), ids=MODELS.keys())
def test_add_form_renders_except_for_the_request_log(admin_client, app, model):
    response = admin_client.get(reverse(f"admin:{app}_{model}_add"))
    assert response.status_code == (403 if model == "requestlog" else 200)


def test_request_log_is_read_only(admin_client, populated):
    objects, _ = populated
    log = objects["requestlog"]
    response = admin_client.post(
        reverse("admin:routing_requestlog_change", args=[log.pk]), {"status": "error"}
    )
    assert response.status_code == 403
    delete = admin_client.post(reverse("admin:routing_requestlog_delete", args=[log.pk]))
    assert delete.status_code == 403


def test_adding_an_api_key_shows_the_plaintext_once(admin_client, admin_user, tenant_factory):
    tenant = tenant_factory()
    response = admin_client.post(
        reverse("admin:tenants_apikey_add"),
        {"tenant": str(tenant.pk), "name": "ci", "allowed_models": '["gpt-4o-mini"]'},
    )
    assert response.status_code == 302
    key = ApiKey.objects.get(name="ci")
    shown = [m.message for m in get_messages(response.wsgi_request) if "copy it now" in m.message]
    assert len(shown) == 1
    plaintext = next(word for word in shown[0].split() if word.startswith("atp_"))
    assert key.key_hash == hash_key(plaintext)
    assert (key.created_by, key.allowed_models) == (admin_user, ["gpt-4o-mini"])
    # The message is shown on the next page only; the key itself never again.
    change_url = reverse("admin:tenants_apikey_change", args=[key.pk])
    assert admin_client.get(change_url).content.decode().count(plaintext) == 1
    assert plaintext not in admin_client.get(change_url).content.decode()


def test_duplicate_api_key_name_is_a_form_error(admin_client, api_key_factory):
    key, _ = api_key_factory(name="ci")
    response = admin_client.post(
        reverse("admin:tenants_apikey_add"),
        {"tenant": str(key.tenant_id), "name": "ci", "allowed_models": "[]"},
    )
    assert response.status_code == 200
    assert "already has a live key" in response.content.decode()


def test_provider_api_key_is_write_only_in_the_admin(admin_client):
    response = admin_client.post(
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
    assert response.status_code == 302, response.content
    provider = Provider.objects.get(name="openai")
    assert crypto.decrypt(provider.api_key_encrypted) == "sk-typed-into-the-admin"
    page = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk]))
    assert "sk-typed-into-the-admin" not in page.content.decode()
    assert 'type="password"' in page.content.decode()

    # Saving without typing a key keeps it; ticking "remove" removes it.
    form = {
        "name": "openai",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": "",
        "api_key_env": "",
        "options": "{}",
        "enabled": "on",
        "region": "eu",
    }
    change_url = reverse("admin:providers_provider_change", args=[provider.pk])
    assert admin_client.post(change_url, form).status_code == 302
    provider.refresh_from_db()
    assert provider.region == "eu" and provider.has_stored_api_key
    assert admin_client.post(change_url, {**form, "clear_api_key": "on"}).status_code == 302
    provider.refresh_from_db()
    assert not provider.has_stored_api_key


def test_adding_an_admin_token_shows_it_once(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:tenants_admintoken_add"), {"user": str(admin_user.pk), "name": "cli"}
    )
    assert response.status_code == 302
    token = AdminToken.objects.get(name="cli")
    shown = " ".join(m.message for m in get_messages(response.wsgi_request))
    plaintext = next(word for word in shown.split() if word.startswith("atpadm_"))
    assert token.token_hash == hash_key(plaintext)


def test_revoke_action_goes_through_the_service(admin_client, api_key_factory):
    key, _ = api_key_factory()
    response = admin_client.post(
        reverse("admin:tenants_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [str(key.pk)]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_revoked
