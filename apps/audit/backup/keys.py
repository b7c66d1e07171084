"""Which keys a backup's data needs, named by id: never the keys, unless asked.

Encryption keys (ATP_ENCRYPTION_KEYS) are named by atp_site.lib.crypto.key_id, and listed
with what each encrypted; audit signing keys by their id and a fingerprint of their secret;
the head key by its fingerprint. A restore compares these with the server's own keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

from apps.audit import chain, heads
from apps.audit.models import AuditEvent, StoredExchange
from apps.audit.sealing import head_key
from atp_site.lib import crypto


def signing_key_fingerprint(secret: bytes) -> str:
    """Names an audit signing key's secret (its id alone could name another secret)."""
    return hashlib.sha256(b"atp audit signing key id v1\0" + secret).hexdigest()[:16]


def _encryption_use() -> tuple[dict[str, dict[str, int]], int]:
    """Per key id, how many stored values each kind of data holds under it; and how many
    no configured key made."""
    from apps.providers.selectors import provider_encrypted_credentials

    used: dict[str, dict[str, int]] = {}
    unknown = 0

    def count(token: str, what: str) -> None:
        nonlocal unknown
        if not token:
            return
        ident = crypto.key_id_of(token)
        if ident is None:
            unknown += 1
        else:
            kinds = used.setdefault(ident, {})
            kinds[what] = kinds.get(what, 0) + 1

    for token in provider_encrypted_credentials():
        count(token, "provider_credentials")
    bodies = StoredExchange.objects.values_list("request_encrypted", "response_encrypted")
    for request, response in bodies.iterator(chunk_size=500):
        count(request, "stored_bodies")
        count(response, "stored_bodies")
    return used, unknown


def key_inventory() -> dict[str, Any]:
    """The key ids the database's contents need, never the keys: encryption keys by the
    data they encrypted, audit signing keys by id and fingerprint, the head key by its
    fingerprint. The keys that write new data are listed even when nothing uses them yet
    (rows written while the backup runs use them)."""
    used, unknown = _encryption_use()
    current_encryption = crypto.key_ids()[0]
    used.setdefault(current_encryption, {})
    current_signing, signing = chain.signing_keys()
    signing_ids = set(AuditEvent.objects.values_list("key_id", flat=True).distinct())
    signing_ids.add(current_signing)
    return {
        "encryption": {
            "current": current_encryption,
            "used": dict(sorted(used.items())),
            "unknown_values": unknown,
        },
        "audit_signing": {
            "current": current_signing,
            "used": {
                ident: signing_key_fingerprint(signing[ident]) if ident in signing else None
                for ident in sorted(signing_ids)
            },
        },
        "audit_head": heads.fingerprint(head_key()),
    }


def keys_missing(inventory: dict[str, Any]) -> list[str]:
    """What this server lacks of the keys a backup needs, one phrase per key."""
    missing = []
    have = set(crypto.key_ids())
    for ident, kinds in inventory["encryption"]["used"].items():
        if ident not in have:
            what = ", ".join(k.replace("_", " ") for k in sorted(kinds)) or "new data"
            missing.append(f"encryption key id {ident} ({what})")
    _, signing = chain.signing_keys()
    for ident, fingerprint in inventory["audit_signing"]["used"].items():
        if fingerprint is None:
            continue  # the source did not hold it either; verification reports it
        if ident not in signing:
            missing.append(f"audit signing key {ident} (fingerprint {fingerprint})")
        elif signing_key_fingerprint(signing[ident]) != fingerprint:
            missing.append(f"audit signing key {ident} (this server's {ident} is another key)")
    if inventory["audit_head"] != heads.fingerprint(head_key()):
        missing.append(f"audit head key {inventory['audit_head']}")
    return missing


def server_secrets() -> dict[str, Any]:
    """The keys themselves (--include-keys), as the settings that take them."""
    return {
        "ATP_ENCRYPTION_KEYS": list(settings.ATP_ENCRYPTION_KEYS),
        "ATP_AUDIT_SIGNING_KEYS": list(settings.ATP_AUDIT_SIGNING_KEYS),
        "ATP_AUDIT_HEAD_KEY": settings.ATP_AUDIT_HEAD_KEY,
    }
