"""The API key and admin token endpoints: plaintext shown once, revoke, rotate, filters, auth."""

from __future__ import annotations

import json

import pytest

from apps.tenants.keys import hash_key
from apps.tenants.models import AdminToken, ApiKey
from apps.tenants.services import admin_token_create, admin_token_revoke

pytestmark = pytest.mark.django_db

URL = "/api/v1/api-keys/"


def test_create_returns_the_key_once(manager_client, manager_user, tenant_factory):
    tenant = tenant_factory()
    response = manager_client.post(
        URL, {"tenant": str(tenant.pk), "name": "ci", "allowed_models": ["m"]}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    key = ApiKey.objects.get(pk=body["id"])
    assert key.key_hash == hash_key(body["key"])
    assert key.created_by == manager_user
    assert body["prefix"] == body["key"][: len(body["prefix"])]
    for later in (manager_client.get(URL), manager_client.get(f"{URL}{key.pk}/")):
        text = later.content.decode()
        assert body["key"] not in text
        assert key.key_hash not in text
        assert "key_hash" not in text


def test_live_name_clash_is_a_409_naming_name(manager_client, api_key_factory):
    key, _ = api_key_factory(name="ci")
    response = manager_client.post(URL, {"tenant": str(key.tenant_id), "name": "ci"}, format="json")
    assert response.status_code == 409
    assert response.json()["field"] == "name"


def test_tenant_cannot_be_changed(manager_client, api_key_factory, tenant_factory):
    key, _ = api_key_factory()
    other = tenant_factory()
    response = manager_client.patch(
        f"{URL}{key.pk}/", {"tenant": str(other.pk), "name": "moved"}, format="json"
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert (key.tenant_id, key.name) != (other.pk, "moved") and key.name == "moved"


def test_revoke(manager_client, api_key_factory):
    key, _ = api_key_factory()
    response = manager_client.post(f"{URL}{key.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["is_revoked"] is True
    key.refresh_from_db()
    assert key.is_revoked


def test_rotate_returns_the_new_key_once_and_revokes_the_old(manager_client, api_key_factory):
    key, old_plain = api_key_factory(allowed_models=["m"])
    response = manager_client.post(f"{URL}{key.pk}/rotate/")
    assert response.status_code == 201
    body = response.json()
    new = ApiKey.objects.get(pk=body["id"])
    assert new.key_hash == hash_key(body["key"]) and body["key"] != old_plain
    assert (new.name, new.allowed_models) == (key.name, ["m"])
    key.refresh_from_db()
    assert key.is_revoked
    again = manager_client.post(f"{URL}{key.pk}/rotate/")
    assert again.status_code == 400


def test_filter_by_tenant_and_revoked(manager_client, api_key_factory, tenant_factory):
    tenant = tenant_factory()
    live, _ = api_key_factory(tenant=tenant)
    revoked, _ = api_key_factory(tenant=tenant)
    manager_client.post(f"{URL}{revoked.pk}/revoke/")
    api_key_factory()  # another tenant's key

    def ids(**params) -> set[str]:
        return {k["id"] for k in manager_client.get(URL, params).json()["results"]}

    assert ids(tenant=str(tenant.pk)) == {str(live.pk), str(revoked.pk)}
    assert ids(tenant=str(tenant.pk), revoked="false") == {str(live.pk)}
    assert ids(tenant=str(tenant.pk), revoked="true") == {str(revoked.pk)}


def test_admin_tokens_are_personal(manager_client, manager_user, user_factory):
    other = user_factory(is_staff=True)
    theirs, _ = admin_token_create(user=other, name="theirs")
    mine, _ = admin_token_create(user=manager_user, name="mine")
    listed = {t["id"] for t in manager_client.get("/api/v1/admin-tokens/").json()["results"]}
    assert listed == {str(mine.pk)}
    assert manager_client.get(f"/api/v1/admin-tokens/{theirs.pk}/").status_code == 404
    assert manager_client.post(f"/api/v1/admin-tokens/{theirs.pk}/revoke/").status_code == 404


def test_admin_token_create_shows_it_once_and_it_works(manager_client, api_client):
    response = manager_client.post("/api/v1/admin-tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 201
    plaintext = response.json()["token"]
    token = AdminToken.objects.get(pk=response.json()["id"])
    assert token.token_hash == hash_key(plaintext)
    listing = manager_client.get("/api/v1/admin-tokens/").content.decode()
    assert plaintext not in listing and token.token_hash not in listing
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/tenants/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_admin_token_gets_401(token_client, admin_token, manager_client):
    token = AdminToken.objects.get(token_hash=hash_key(admin_token))
    assert token_client.get("/api/v1/tenants/").status_code == 200
    response = manager_client.post(f"/api/v1/admin-tokens/{token.pk}/revoke/")
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert token_client.get("/api/v1/tenants/").status_code == 401


def test_unknown_admin_token_gets_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer atpadm_not-a-real-token")
    response = api_client.get("/api/v1/tenants/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_token_of_a_user_without_permissions_gets_403(api_client, plain_user):
    _, plaintext = admin_token_create(user=plain_user, name="x")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/tenants/").status_code == 403


def test_revoking_the_token_in_use_still_answers(token_client, admin_token):
    token = AdminToken.objects.get(token_hash=hash_key(admin_token))
    admin_token_revoke(token=token)
    body = token_client.get("/api/v1/admin-tokens/")
    assert body.status_code == 401
    assert "detail" in json.loads(body.content)
