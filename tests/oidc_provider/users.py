"""The provider's accounts and their claims, read from a JSON directory file the tests edit.

`directory.json`: {"alice": {"password": "...", "email": "...", "groups": [...],
"atp_tenants": [...]}}. It is read at every sign-in and every token, so a test changes a
user's groups at the provider by rewriting it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from oauth2_provider.oauth2_validators import OAuth2Validator

CLAIMS = ("email", "email_verified", "name", "given_name", "family_name", "groups", "atp_tenants")


def directory() -> dict[str, dict[str, Any]]:
    path = settings.DATA / "directory.json"
    return json.loads(path.read_text()) if path.exists() else {}


class DirectoryBackend(ModelBackend):
    """Password sign-in against the directory file; users are created as they appear."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        entry = directory().get(username or "")
        if entry is None or entry.get("password") != password:
            return None
        user, _ = get_user_model().objects.get_or_create(username=username)
        return user if self.user_can_authenticate(user) else None


class ClaimsValidator(OAuth2Validator):
    """Every claim of the directory entry goes into the ID token and userinfo."""

    oidc_claim_scope = None

    def get_additional_claims(self, request):
        entry = directory().get(request.user.username, {})
        claims = {"preferred_username": request.user.username}
        claims.update({k: entry[k] for k in CLAIMS if k in entry})
        return claims
