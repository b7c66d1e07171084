"""Who may mint an admin token for whom, and for how long.

A token acts with its user's permissions: a staff user may mint tokens for themselves
only (the Django admin's form used to let them mint one for a superuser), and a token
cannot make a token that outlives it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants.models import AdminToken
from apps.tenants.services import admin_token_create

pytestmark = pytest.mark.django_db

ADD = "/admin/tenants/admintoken/add/"


@pytest.fixture
def token_maker(user_factory, grant):
    """Staff allowed to add admin tokens in the Django admin (not for others)."""
    user = user_factory(username="maker", is_staff=True)
    return grant(user, "tenants.add_admintoken", "tenants.view_admintoken")


def _form(user, **extra) -> dict:
    return {"user": str(user.pk), "name": "laptop", "expires_at_0": "", "expires_at_1": "", **extra}


def test_the_admin_form_refuses_a_token_for_a_superuser(client, token_maker, admin_user):
    client.force_login(token_maker)
    resp = client.post(ADD, _form(admin_user))
    assert resp.status_code == 200
    assert "only for yourself" in resp.content.decode()
    assert not AdminToken.objects.filter(user=admin_user).exists()


def test_the_admin_form_makes_ones_own_token(client, token_maker):
    client.force_login(token_maker)
    resp = client.post(ADD, _form(token_maker))
    assert resp.status_code == 302
    assert AdminToken.objects.filter(user=token_maker, name="laptop").exists()


def test_the_dedicated_permission_allows_tokens_for_others(client, token_maker, admin_user, grant):
    grant(token_maker, "tenants.add_admintoken_for_others")
    client.force_login(token_maker)
    assert client.post(ADD, _form(admin_user)).status_code == 302
    assert AdminToken.objects.filter(user=admin_user).exists()


def test_the_service_refuses_it_whatever_the_caller(token_maker, admin_user):
    with pytest.raises(PermissionDenied):
        admin_token_create(user=admin_user, name="x", by=token_maker)
    # An operator at the command line (no requesting user) may.
    admin_token_create(user=admin_user, name="x")


# --- a token cannot outlive the token that made it ------------------------------------------


def _token_client(user, *, expires_at=None) -> tuple[APIClient, AdminToken]:
    parent, plaintext = admin_token_create(user=user, name="parent", expires_at=expires_at)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client, parent


def test_a_child_token_gets_the_parents_expiry_by_default(manager_user):
    parent_expiry = timezone.now() + timedelta(days=1)
    client, _ = _token_client(manager_user, expires_at=parent_expiry)
    resp = client.post("/api/v1/admin-tokens/", {"name": "child"}, format="json")
    assert resp.status_code == 201
    child = AdminToken.objects.get(pk=resp.json()["id"])
    assert child.expires_at == parent_expiry


def test_a_child_token_may_not_outlive_its_parent(manager_user):
    parent_expiry = timezone.now() + timedelta(days=1)
    client, _ = _token_client(manager_user, expires_at=parent_expiry)
    later = (parent_expiry + timedelta(days=30)).isoformat()
    resp = client.post(
        "/api/v1/admin-tokens/", {"name": "child", "expires_at": later}, format="json"
    )
    assert resp.status_code == 400 and "expires_at" in resp.json()
    assert not AdminToken.objects.filter(name="child").exists()
    sooner = (parent_expiry - timedelta(hours=1)).isoformat()
    resp = client.post(
        "/api/v1/admin-tokens/", {"name": "child", "expires_at": sooner}, format="json"
    )
    assert resp.status_code == 201


def test_a_parent_without_expiry_sets_no_limit(manager_user):
    client, _ = _token_client(manager_user)
    far = (timezone.now() + timedelta(days=3650)).isoformat()
    resp = client.post("/api/v1/admin-tokens/", {"name": "child", "expires_at": far}, format="json")
    assert resp.status_code == 201
    resp = client.post("/api/v1/admin-tokens/", {"name": "forever"}, format="json")
    assert resp.status_code == 201 and resp.json()["expires_at"] is None


def test_a_session_is_not_a_token(manager_client):
    resp = manager_client.post("/api/v1/admin-tokens/", {"name": "forever"}, format="json")
    assert resp.status_code == 201 and resp.json()["expires_at"] is None


def test_the_service_checks_it_too(manager_user):
    parent, _ = admin_token_create(
        user=manager_user, name="p", expires_at=timezone.now() + timedelta(hours=1)
    )
    with pytest.raises(ValidationError) as exc:
        admin_token_create(
            user=manager_user,
            name="c",
            expires_at=timezone.now() + timedelta(days=1),
            parent=parent,
        )
    assert "expires_at" in exc.value.message_dict
