"""Authentication for the management API by personal admin token."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.audit.context import session_digest
from apps.audit.middleware import actor_for, adopt_actor
from apps.audit.services import audit_record
from apps.tenants.keys import ADMIN_TOKEN_PREFIX, hash_key, visible_prefix
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
            self._reject(request, raw, token, "invalid, expired or revoked")
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked admin token.")
        if not token.user.is_active:
            self._reject(request, raw, token, "inactive user")
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        AdminToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        # Token authentication runs inside the view, after the audit middleware: from here
        # on the request acts as the token's user. The session digest names the token.
        adopt_actor(
            actor_for(
                request._request, token.user, session_id=session_digest(f"admin_token:{token.pk}")
            )
        )
        return token.user, token

    @staticmethod
    def _reject(request, raw: str, token: AdminToken | None, reason: str) -> None:
        # Committed on its own (requests are not atomic), so the 401 does not undo it.
        audit_record(
            event_type="auth.token_rejected",
            action="authenticate",
            outcome="denied",
            resource_type="admin_token",
            resource_id=str(token.pk) if token is not None else "",
            data={"prefix": visible_prefix(raw), "reason": reason},
            actor=actor_for(
                request._request, token.user if token is not None else None, session_id=""
            ),
        )

    def authenticate_header(self, request):
        # A WWW-Authenticate value makes DRF answer 401 rather than 403 to anonymous callers.
        return self.keyword


class AdminTokenScheme(OpenApiAuthenticationExtension):
    """Describes admin-token authentication in the OpenAPI schema."""

    target_class = AdminTokenAuthentication
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal admin token (`atpadm_...`), from `manage.py "
            "atp_admin_token --user NAME` or `POST /api/v1/admin-tokens/`; it acts with its "
            "user's permissions.",
        }
