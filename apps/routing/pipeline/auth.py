"""Step: authenticate the caller's API key against the snapshot (no query)."""

from __future__ import annotations

import time

from apps.routing.snapshot import KeyInfo, Snapshot
from apps.tenants.keys import hash_key
from atp_site.lib import tracing
from atp_site.lib.errors import AuthenticationFailed, PermissionDenied


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    if not value:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@tracing.traced("atp.authenticate")
def authenticate(
    snapshot: Snapshot, headers: dict[bytes, bytes], *, allow_x_api_key: bool = False
) -> KeyInfo:
    raw = _bearer(headers)
    if raw is None and allow_x_api_key:
        value = headers.get(b"x-api-key")
        raw = value.decode("latin-1").strip() if value else None
    if not raw:
        where = "an `x-api-key` header or " if allow_x_api_key else ""
        raise AuthenticationFailed(
            f"You didn't provide an API key. Send it in {where}an "
            "`Authorization: Bearer YOUR_KEY` header.",
            code="missing_api_key",
        )
    key = snapshot.keys.get(hash_key(raw))
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    if key.revoked:
        raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
    if key.expires_at is not None and key.expires_at <= time.time():
        if key.rotated:
            raise AuthenticationFailed(
                "This API key was rotated and its grace period has ended; use its replacement.",
                code="revoked_api_key",
            )
        raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
    if not key.tenant_active:
        raise PermissionDenied(
            "The tenant that owns this API key is suspended.", code="tenant_inactive"
        )
    return key
