"""Sign-in, sign-out, failed sign-in and rejected admin tokens are audited."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.audit.verify import verify_chain
from apps.tenants.services import admin_token_create, admin_token_revoke

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(user_factory):
    user = user_factory(username="operator", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("sequence"))


def test_login_and_logout_through_the_admin(operator):
    # The admin's sign-in page sends the browser to the console's (atp_site/auth).
    client = Client(REMOTE_ADDR="192.0.2.10")
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/login/?next=/admin/"
    response = client.post(
        "/login/", {"username": "operator", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    [login] = _events("auth.login")
    assert (login.outcome, login.source, login.action) == ("success", "console", "login")
    assert (login.user_id, login.actor) == (str(operator.pk), "operator")
    assert login.ip_address == "192.0.2.10" and login.session_id
    session_key = client.session.session_key
    assert session_key not in login.session_id

    assert client.post("/admin/logout/").status_code in (200, 302)
    [logout] = _events("auth.logout")
    assert (logout.user_id, logout.actor, logout.session_id) == (
        str(operator.pk),
        "operator",
        login.session_id,
    )
    assert verify_chain().ok


def test_failed_login_keeps_the_name_and_never_the_password(operator):
    response = Client().post("/login/", {"username": "operator", "password": "wrong-password-123"})
    assert response.status_code == 200
    [failed] = _events("auth.login_failed")
    assert (failed.outcome, failed.source, failed.actor) == ("failure", "console", "anonymous")
    assert failed.data == {"username": "operator"}
    stored = str([failed.data, failed.before, failed.after])
    assert "wrong-password-123" not in stored and "****" not in stored
    assert _events("auth.login") == []


def test_revoked_admin_token_is_rejected_and_recorded(api_client, staff_user):
    token, plaintext = admin_token_create(user=staff_user, name="ci")
    admin_token_revoke(token=token)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/tenants/").status_code == 401
    [rejected] = _events("auth.token_rejected")
    assert (rejected.outcome, rejected.source, rejected.action) == ("denied", "api", "authenticate")
    assert rejected.data["prefix"] == token.prefix
    assert plaintext not in str(rejected.data) and token.token_hash not in str(rejected.data)
    assert verify_chain().ok


def test_unknown_admin_token_is_rejected_and_recorded(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer atpadm_not-a-real-token-at-all")
    assert api_client.get("/api/v1/tenants/").status_code == 401
    [rejected] = _events("auth.token_rejected")
    assert rejected.resource_id == "" and rejected.user_id == ""
