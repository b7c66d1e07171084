"""Tenant, API key and admin token services: validation, hashing, rotation, version bumps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.tenants import services
from apps.tenants.keys import hash_key
from apps.tenants.models import AdminToken, ApiKey, Tenant
from atp_site.lib import config_version

pytestmark = pytest.mark.django_db


def test_tenant_create_validates_the_slug():
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(slug="not a slug", name="X")
    assert "slug" in exc.value.message_dict
    assert not Tenant.objects.exists()


def test_tenant_slug_is_unique(tenant_factory):
    tenant_factory(slug="acme")
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(slug="acme", name="Other")
    assert "slug" in exc.value.message_dict


def test_tenant_update_changes_fields_and_rejects_unknown_ones(tenant_factory):
    tenant = tenant_factory()
    services.tenant_update(tenant=tenant, name="New", is_active=False)
    tenant.refresh_from_db()
    assert (tenant.name, tenant.is_active) == ("New", False)
    with pytest.raises(TypeError):
        services.tenant_update(tenant=tenant, id="x")


def test_tenant_delete_removes_its_keys(api_key_factory):
    key, _ = api_key_factory()
    services.tenant_delete(tenant=key.tenant)
    assert not ApiKey.objects.filter(pk=key.pk).exists()


def test_api_key_plaintext_is_returned_once_and_only_its_hash_is_stored(tenant_factory):
    key, plaintext = services.api_key_create(tenant=tenant_factory(), name="ci")
    key.refresh_from_db()
    assert plaintext.startswith("atp_") and len(plaintext) > 40
    assert key.key_hash == hash_key(plaintext)
    assert plaintext.startswith(key.prefix) and len(key.prefix) < len(plaintext) / 2
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values())
    assert plaintext not in stored


def test_api_key_given_plaintext_is_used_as_is(tenant_factory):
    key, plaintext = services.api_key_create(
        tenant=tenant_factory(), name="ci", plaintext="known-key-7f3a9c1e5b2d8046ab93e1c7"
    )
    assert plaintext == "known-key-7f3a9c1e5b2d8046ab93e1c7"
    assert key.key_hash == hash_key(plaintext)


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        ("short", "at least 32"),
        ("password1234password1234password", "predictable"),
        ("taken-key-4c8e2a6f0b9d1357ce02f8a4", "in use"),
    ],
)
def test_api_key_given_plaintext_must_be_strong_and_unused(tenant_factory, plaintext, reason):
    tenant = tenant_factory()
    services.api_key_create(
        tenant=tenant, name="first", plaintext="taken-key-4c8e2a6f0b9d1357ce02f8a4"
    )
    with pytest.raises(ValidationError) as exc:
        services.api_key_create(tenant=tenant, name="second", plaintext=plaintext)
    assert reason in exc.value.message_dict["key"][0]


def test_api_key_names_are_unique_among_live_keys_only(tenant_factory):
    tenant = tenant_factory()
    key, _ = services.api_key_create(tenant=tenant, name="ci")
    with pytest.raises(ValidationError) as exc:
        services.api_key_create(tenant=tenant, name="ci")
    assert "name" in exc.value.message_dict
    services.api_key_revoke(api_key=key)
    services.api_key_create(tenant=tenant, name="ci")
    assert ApiKey.objects.filter(tenant=tenant, name="ci").count() == 2


def test_api_key_rejects_bad_allowed_models_and_past_expiry(tenant_factory):
    tenant = tenant_factory()
    with pytest.raises(ValidationError) as exc:
        services.api_key_create(tenant=tenant, name="a", allowed_models="gpt-4o")
    assert "allowed_models" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.api_key_create(
            tenant=tenant, name="a", expires_at=timezone.now() - timedelta(days=1)
        )
    assert "expires_at" in exc.value.message_dict


def test_api_key_rotate_revokes_the_old_key_and_keeps_the_settings(api_key_factory):
    expires = timezone.now() + timedelta(days=30)
    old, old_plain = api_key_factory(allowed_models=["gpt-4o-mini"], expires_at=expires)
    new, new_plain = services.api_key_rotate(api_key=old)
    old.refresh_from_db()
    assert old.is_revoked and not new.is_revoked
    assert new_plain != old_plain and new.key_hash == hash_key(new_plain)
    assert (new.tenant, new.name, new.allowed_models, new.expires_at) == (
        old.tenant,
        old.name,
        ["gpt-4o-mini"],
        expires,
    )
    with pytest.raises(ValidationError):
        services.api_key_rotate(api_key=old)


def test_api_key_revoke_is_idempotent(api_key_factory):
    key, _ = api_key_factory()
    services.api_key_revoke(api_key=key)
    first = key.revoked_at
    services.api_key_revoke(api_key=key)
    key.refresh_from_db()
    assert key.revoked_at == first is not None


def test_api_key_update_changes_only_what_is_given_and_not_revoked_keys(api_key_factory):
    key, _ = api_key_factory(allowed_models=["a"])
    services.api_key_update(api_key=key, name="renamed")
    key.refresh_from_db()
    assert (key.name, key.allowed_models) == ("renamed", ["a"])
    services.api_key_revoke(api_key=key)
    with pytest.raises(ValidationError):
        services.api_key_update(api_key=key, name="again")


def test_admin_token_create_and_revoke(staff_user):
    token, plaintext = services.admin_token_create(user=staff_user, name="laptop")
    assert plaintext.startswith("atpadm_")
    assert AdminToken.objects.get(token_hash=hash_key(plaintext)) == token
    services.admin_token_revoke(token=token)
    token.refresh_from_db()
    assert token.revoked_at is not None


# name: (prepare the object, outside the captured block; the write under test)
WRITES = {
    "tenant_create": ("tenant", lambda t: services.tenant_create(slug="new", name="New")),
    "tenant_update": ("tenant", lambda t: services.tenant_update(tenant=t, name="Renamed")),
    "tenant_delete": ("tenant", lambda t: services.tenant_delete(tenant=t)),
    "api_key_create": ("tenant", lambda t: services.api_key_create(tenant=t, name="k")),
    "api_key_update": ("key", lambda k: services.api_key_update(api_key=k, name="other")),
    "api_key_revoke": ("key", lambda k: services.api_key_revoke(api_key=k)),
    "api_key_rotate": ("key", lambda k: services.api_key_rotate(api_key=k)),
}


@pytest.mark.parametrize(("prepare", "write"), WRITES.values(), ids=WRITES.keys())
def test_writes_bump_the_config_version_on_commit(
    prepare, write, tenant_factory, api_key_factory, django_capture_on_commit_callbacks
):
    obj = tenant_factory() if prepare == "tenant" else api_key_factory()[0]
    before = config_version.current()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        write(obj)
        # Not before commit: a snapshot rebuilt now would miss the change.
        assert config_version.current() == before
    assert config_version.bump in callbacks
    assert config_version.current() != before


def test_failed_write_does_not_bump(tenant_factory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationError):
        services.tenant_create(slug="bad slug", name="x")
    assert callbacks == []
