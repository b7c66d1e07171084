"""OpenID Connect with mozilla-django-oidc: endpoints from discovery, ATP's own user matching.

mozilla-django-oidc checks the state, the nonce, PKCE and the ID token's signature (RS256,
the key taken from the provider's JWKS); this module adds the issuer, audience and expiry
checks and signs the subject in through `oidc_user_sign_in`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from atp_site.auth import discovery
from atp_site.auth.services import SignInRefused, oidc_user_sign_in

logger = logging.getLogger(__name__)

SESSION_METHOD = "atp_auth_method"
ID_TOKEN_SESSION_KEY = "oidc_id_token"


class OidcBackend(OIDCAuthenticationBackend):
    """Authenticates the authorization-code callback of the configured provider."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.config = settings.ATP_OIDC
        meta = discovery.metadata()
        self.OIDC_OP_TOKEN_ENDPOINT = meta.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = meta.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = meta.jwks_uri
        self.OIDC_RP_CLIENT_ID = self.config.client_id
        self.OIDC_RP_CLIENT_SECRET = self.config.client_secret
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.issuer = meta.issuer
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any):
        # Only the callback carries a nonce; password sign-ins pass by.
        if request is None or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, jwt.InvalidTokenError, SuspiciousOperation) as exc:
            logger.warning("OIDC sign-in refused: %s: %s", exc.__class__.__name__, exc)
            return None

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != "RS256":
            raise SuspiciousOperation("The ID token is not signed with RS256.")
        return jwt.decode(
            payload,
            key,
            algorithms=["RS256"],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=30,
        )

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]):
        """The ID token's claims; the userinfo endpoint only fills in claims it lacks.

        Roles and tenants are read from what the provider signed. Userinfo about another
        subject is ignored, as OpenID Connect Core 5.3.2 requires.
        """
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            try:
                info = super().get_userinfo(access_token, id_token, payload)
            except requests.RequestException as exc:
                logger.warning("OIDC userinfo not read: %s", exc)
                info = {}
            if isinstance(info, dict) and info.get("sub") == payload.get("sub"):
                for key, value in info.items():
                    claims.setdefault(key, value)
        return claims

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]):
        claims = self.get_userinfo(access_token, id_token, payload)
        try:
            return oidc_user_sign_in(
                issuer=self.issuer,
                claims=claims,
                mapping=self.config.mapping,
                username_claim=self.config.username_claim,
                roles_from_claims=self.config.roles_from_claims,
            )
        except SignInRefused as exc:
            messages.error(self.request, str(exc))
            return None

    def store_tokens(self, access_token: str, id_token: str) -> None:
        # The ID token is kept for the provider's end-session endpoint (id_token_hint);
        # sessions live server-side, never in a cookie.
        self.request.session[ID_TOKEN_SESSION_KEY] = id_token


class OidcStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorization endpoint."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_OP_AUTH_ENDPOINT = discovery.metadata().authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.ATP_OIDC.client_id


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """Receives the provider's answer; the session is marked as signed in through OIDC."""

    def login_success(self):
        response = super().login_success()
        self.request.session[SESSION_METHOD] = "oidc"
        return response

    def login_failure(self):
        if not messages.get_messages(self.request):
            messages.error(self.request, "Single sign-on did not complete. Try again.")
        return super().login_failure()


def end_session_url(request: HttpRequest, id_token: str | None) -> str | None:
    """The provider's end-session URL for this session, or None when it has none."""
    if settings.ATP_OIDC is None or not id_token:
        return None
    endpoint = discovery.metadata().end_session_endpoint
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.ATP_OIDC.client_id,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("auth:login")),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
