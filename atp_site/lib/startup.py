"""Checks run when a server or a Celery process starts, before it serves or works.

Settings are imported by every `manage.py` command and by the test suite, which must keep
working without production secrets, so nothing here runs at import: the ASGI lifespan
(apps.routing.lifecycle) and Celery's worker_init/beat_init signals (atp_site.celery) call
it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from atp_site.lib.env import env_list, env_secret

logger = logging.getLogger(__name__)

# Each secret every instance of a configured deployment must share, as (what it is, the
# variables that give it). In the embedded setup they are generated into ATP_DATA_DIR; with
# DATABASE_URL set, instances generating their own would each encrypt provider credentials
# and sign the audit chain with different keys.
REQUIRED_SECRETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Django's secret key (sessions, CSRF)", ("ATP_SECRET_KEY", "ATP_SECRET_KEY_FILE")),
    (
        "the encryption key (provider credentials, stored bodies)",
        ("ATP_ENCRYPTION_KEY", "ATP_ENCRYPTION_KEY_FILE", "ATP_ENCRYPTION_KEYS"),
    ),
    (
        "the audit chain's signing key",
        ("ATP_AUDIT_SIGNING_KEY", "ATP_AUDIT_SIGNING_KEY_FILE", "ATP_AUDIT_SIGNING_KEYS"),
    ),
    (
        "the audit chain's head-signing key (Ed25519)",
        ("ATP_AUDIT_HEAD_KEY", "ATP_AUDIT_HEAD_KEY_FILE"),
    ),
)


def _given(names: tuple[str, ...]) -> bool:
    for name in names:
        if name.endswith("_FILE"):
            continue  # read through the name without _FILE
        # env_secret raises ImproperlyConfigured, naming the variable, for an unreadable file.
        reader = env_list if name.endswith("_KEYS") else env_secret
        if reader(name):
            return True
    return False


def missing_secrets() -> list[str]:
    """One line per required secret that is not given (empty in the embedded setup)."""
    if not settings.DATABASE_URL:
        return []
    missing = []
    for what, names in REQUIRED_SECRETS:
        if not _given(names):
            missing.append(f"{what}: set {' or '.join(names)}")
    return missing


def check_secrets() -> None:
    """Raise ImproperlyConfigured, naming each missing secret, unless all are given."""
    missing = missing_secrets()
    if missing:
        raise ImproperlyConfigured(
            "ATP will not start: DATABASE_URL is set, so every instance must be given the "
            "same secrets instead of generating its own, and these are missing:\n  - "
            + "\n  - ".join(missing)
            + "\nSee the README's 'Serving in production'."
        )


async def lifespan_startup_refused(send: Any) -> bool:
    """Tell the ASGI server that start-up failed when a check fails; True if it did.

    The server (uvicorn) logs the message and exits with a non-zero status, whatever its
    --lifespan mode, instead of serving with the wrong keys.
    """
    try:
        check_secrets()
        # Single sign-on: the provider's discovery document, fetched once (issue 11).
        from atp_site.auth import discovery

        await asyncio.to_thread(discovery.check_at_startup)
    except ImproperlyConfigured as exc:
        logger.critical("%s", exc)
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return True
    return False


def celery_startup_check(**_: Any) -> None:
    """worker_init / beat_init receiver: exit before consuming or scheduling anything.

    Celery logs and swallows exceptions raised by signal receivers, so this exits with
    SystemExit rather than raising ImproperlyConfigured.
    """
    try:
        check_secrets()
    except ImproperlyConfigured as exc:
        logger.critical("%s", exc)
        raise SystemExit(1) from None
