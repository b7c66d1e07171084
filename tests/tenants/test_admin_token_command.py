"""`manage.py atp_admin_token` prints a working token once."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.tenants.keys import hash_key
from apps.tenants.models import AdminToken

pytestmark = pytest.mark.django_db


def test_prints_a_token_for_the_user(manager_user, capsys, api_client):
    call_command("atp_admin_token", "--user", manager_user.username, "--name", "ops")
    captured = capsys.readouterr()
    plaintext = captured.out.strip()
    token = AdminToken.objects.get(token_hash=hash_key(plaintext))
    assert (token.user, token.name) == (manager_user, "ops")
    assert captured.err == ""
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api_client.get("/api/v1/tenants/").status_code == 200


def test_warns_when_the_user_holds_no_permission(staff_user, capsys, api_client):
    call_command("atp_admin_token", "--user", staff_user.username)
    captured = capsys.readouterr()
    assert "holds no permission" in captured.err
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {captured.out.strip()}")
    assert api_client.get("/api/v1/tenants/").status_code == 403


def test_unknown_user_is_an_error():
    with pytest.raises(CommandError, match="No user named"):
        call_command("atp_admin_token", "--user", "nobody")
