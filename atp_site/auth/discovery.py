"""The OpenID provider's endpoints, from its discovery document, fetched once per process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""


_lock = threading.Lock()
_cached: ProviderMetadata | None = None


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch(issuer: str, *, timeout: float) -> ProviderMetadata:
    """Read and check the discovery document; ImproperlyConfigured says what is wrong."""
    url = discovery_url(issuer)
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ImproperlyConfigured(
            f"ATP_OIDC_ISSUER is set to {issuer!r} but its discovery document {url} could "
            f"not be read ({exc.__class__.__name__}: {exc}). Check the issuer URL and that "
            "this server can reach the provider, or unset ATP_OIDC_ISSUER."
        ) from None
    if not isinstance(document, dict):
        raise ImproperlyConfigured(f"{url} did not return a JSON object.")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ImproperlyConfigured(
            f"{url} names the issuer {document.get('issuer')!r}, not {issuer!r}: set "
            "ATP_OIDC_ISSUER to exactly the issuer the provider announces."
        )
    missing = [
        key
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(document.get(key), str) or not document[key]
    ]
    if missing:
        raise ImproperlyConfigured(f"{url} lacks {', '.join(missing)}.")
    algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    if "RS256" not in algorithms:
        raise ImproperlyConfigured(
            f"The provider at {issuer} does not sign ID tokens with RS256 "
            f"(it offers {', '.join(map(str, algorithms))})."
        )
    return ProviderMetadata(
        issuer=document["issuer"],
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=document.get("userinfo_endpoint") or "",
        end_session_endpoint=document.get("end_session_endpoint") or "",
    )


def metadata() -> ProviderMetadata:
    """The configured provider's endpoints, fetched on first use and then kept."""
    global _cached
    if _cached is not None:
        return _cached
    config = settings.ATP_OIDC
    if config is None:
        raise ImproperlyConfigured("Single sign-on is not configured (ATP_OIDC_ISSUER).")
    with _lock:
        if _cached is None:
            _cached = fetch(config.issuer, timeout=config.timeout)
            logger.info("OpenID provider %s discovered", config.issuer)
    return _cached


def check_at_startup() -> None:
    """Fetch the discovery document now, when single sign-on is configured."""
    if settings.ATP_OIDC is not None:
        metadata()


def forget() -> None:
    """Drop the cached document (tests)."""
    global _cached
    with _lock:
        _cached = None
