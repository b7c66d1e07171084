"""Authentication for the management API by personal admin token."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.tenants.keys import ADMIN_TOKEN_PREFIX, hash_key
from apps.tenants.models import AdminToken


class AdminTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer atpadm_...` with a personal admin token (stored hashed)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{self.keyword} "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        if not raw.startswith(ADMIN_TOKEN_PREFIX):
            return None
        digest = hash_key(raw)
        token = (
            AdminToken.objects.select_related("user")
            .filter(token_hash=digest, revoked_at__isnull=True)
            .first()
        )
        if token is None or (token.expires_at and token.expires_at <= timezone.now()):
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked admin token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        AdminToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request):
        # A WWW-Authenticate value makes DRF answer 401 rather than 403 to anonymous callers.
        return self.keyword


class AdminTokenScheme(OpenApiAuthenticationExtension):
    """Describes admin-token authentication in the OpenAPI schema."""

    target_class = AdminTokenAuthentication
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal admin token."}
