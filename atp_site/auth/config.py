"""Sign-in settings read from the environment, checked when settings load (no network here)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from atp_site.auth.claims import ClaimMapping, parse_role_mapping, parse_tenant_mapping
from atp_site.lib.env import env_bool, env_float, env_secret, env_str


@dataclass(frozen=True)
class OidcConfig:
    """One OpenID provider, as configured; its endpoints come from discovery."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    name: str
    username_claim: str
    mapping: ClaimMapping
    timeout: float
    # False: sign-ins leave roles and memberships alone (they are given in the console).
    roles_from_claims: bool = True

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


def oidc_from_env() -> OidcConfig | None:
    """The configured OpenID provider, or None when ATP_OIDC_ISSUER is unset."""
    issuer = env_str("ATP_OIDC_ISSUER").strip().rstrip("/")
    if not issuer:
        return None
    if not issuer.startswith(("https://", "http://")):
        raise ImproperlyConfigured(
            f"ATP_OIDC_ISSUER must be the provider's issuer URL (https://...), not {issuer!r}."
        )
    client_id = env_str("ATP_OIDC_CLIENT_ID").strip()
    client_secret = env_secret("ATP_OIDC_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ImproperlyConfigured(
            "ATP_OIDC_ISSUER is set: also set ATP_OIDC_CLIENT_ID and ATP_OIDC_CLIENT_SECRET "
            "(or ATP_OIDC_CLIENT_SECRET_FILE), as registered with the provider."
        )
    scopes = " ".join(env_str("ATP_OIDC_SCOPES", "openid email profile").split())
    if "openid" not in scopes.split():
        raise ImproperlyConfigured(f"ATP_OIDC_SCOPES must include openid, not {scopes!r}.")
    mapping = ClaimMapping(
        roles_claim=env_str("ATP_OIDC_ROLES_CLAIM", "groups").strip() or "groups",
        role_mapping=parse_role_mapping(env_str("ATP_OIDC_ROLE_MAPPING")),
        tenants_claim=env_str("ATP_OIDC_TENANTS_CLAIM", "atp_tenants").strip() or "atp_tenants",
        tenant_mapping=parse_tenant_mapping(env_str("ATP_OIDC_TENANT_MAPPING")),
    )
    return OidcConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        name=env_str("ATP_OIDC_NAME", "single sign-on").strip() or "single sign-on",
        username_claim=env_str("ATP_OIDC_USERNAME_CLAIM", "preferred_username").strip()
        or "preferred_username",
        mapping=mapping,
        timeout=env_float("ATP_OIDC_TIMEOUT_SECONDS", 10.0, minimum=0.5),
        roles_from_claims=env_bool("ATP_OIDC_ROLES_FROM_CLAIMS", True),
    )
