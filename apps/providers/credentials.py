"""Provider credentials: which environment variables a provider may read its key from.

A provider's `api_key_env` names a variable of the server's environment, which holds the
server's own secrets too. Whoever can point a provider at a variable and at a URL could
make the gateway (or its health probe) send that variable to the URL, so only names on an
allow-list may be used: by default `*_API_KEY` and `ATP_PROVIDER_*`, extended by the
ATP_PROVIDER_ENV_ALLOW setting. The server's own settings (`ATP_*` other than
`ATP_PROVIDER_*`, DATABASE_URL, REDIS_URL, libpq's PG*, Django's and Celery's) are refused
whatever a pattern says. The check runs on every write (API, admin, configuration file)
and again when the key is read, so a row written before the check existed cannot leak.
"""

from __future__ import annotations

import logging
import os
from fnmatch import fnmatchcase

from django.conf import settings

from atp_site.lib import crypto

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED = ("*_API_KEY", "ATP_PROVIDER_*")
# Never readable, even when an operator's pattern matches.
FORBIDDEN = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DJANGO_*",
    "CELERY_*",
    "PG*",
    "ATP_PROVIDER_ENV_ALLOW",
)


def allowed_patterns() -> tuple[str, ...]:
    return DEFAULT_ALLOWED + tuple(getattr(settings, "ATP_PROVIDER_ENV_ALLOW", ()) or ())


def _forbidden(name: str) -> bool:
    if name.startswith("ATP_") and not name.startswith("ATP_PROVIDER_"):
        return True
    return any(fnmatchcase(name, pattern) for pattern in FORBIDDEN)


def env_reference_error(name: str) -> str | None:
    """Why a provider may not read its key from variable `name`, or None when it may."""
    if not _forbidden(name) and any(fnmatchcase(name, p) for p in allowed_patterns()):
        return None
    return (
        f"{name} may not hold a provider key: use a variable matching "
        f"{', '.join(allowed_patterns())} (ATP_PROVIDER_ENV_ALLOW adds patterns); the "
        "server's own settings are never readable."
    )


def server_secret_error(name: str) -> str | None:
    """Why variable `name` may not be read by configuration at all (the server's secrets)."""
    if _forbidden(name):
        return f"{name} is one of the server's own settings and cannot be referenced."
    return None


def provider_env_value(name: str, *, provider: str = "") -> str:
    """The value of an allowed variable; "" (and an error logged) for a refused name."""
    if env_reference_error(name) is not None:
        logger.error(
            "provider %s: api_key_env %s is not on the allow-list; no key is sent",
            provider,
            name,
        )
        return ""
    return os.environ.get(name, "")


def provider_api_key(provider) -> str:
    """The key a provider's upstream calls carry: its env variable's or its stored one."""
    if provider.api_key_env:
        return provider_env_value(provider.api_key_env, provider=provider.name)
    try:
        return crypto.decrypt(provider.api_key_encrypted)
    except crypto.DecryptionError:
        logger.error("provider %s: stored credential cannot be decrypted", provider.name)
        return ""
