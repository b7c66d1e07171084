"""The chain's mathematics: canonical serialisation, hashing and HMAC signatures.

Pure functions over plain values, shared by the appender, the verifier and the offline
verifier (apps.audit.offline_verify), which runs without Django: only the HMAC functions
read Django's settings, and they import them when called.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

# The hash the first event links to.
GENESIS_HASH = "0" * 64

# The fields covered by an event's hash, in the order they are serialised. The sequence
# number is not among them: events are linked by `prev_hash`, and the verifier checks the
# numbering separately, which lets it tell a reordering from an edit.
HASHED_FIELDS = (
    "event_id",
    "event_type",
    "occurred_at",
    "tenant_id",
    "user_id",
    "actor",
    "source",
    "session_id",
    "request_id",
    "ip_address",
    "resource_type",
    "resource_id",
    "action",
    "outcome",
    "data",
    "before",
    "after",
    "classification",
    "retention_days",
    "prev_hash",
)


# The fields _normalise changes; the rest are serialised as they are.
_CONVERTED = ("occurred_at", "event_id", "tenant_id")


def _normalise(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "occurred_at":
        if value.__class__ is datetime and value.tzinfo is UTC and value.year >= 1000:
            # The common case, quicker: "...T00:15:03.638007+00:00" ends in "Z" instead.
            return value.isoformat(timespec="microseconds")[:-6] + "Z"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name in ("event_id", "tenant_id"):
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    return value


def canonical(fields: dict[str, Any]) -> bytes:
    """A byte-exact serialisation: fixed field order, sorted object keys, UTC times."""
    get = fields.get
    payload = {name: get(name) for name in HASHED_FIELDS}
    for name in _CONVERTED:
        payload[name] = _normalise(name, payload[name])
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def event_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


class SigningKeyError(Exception):
    """An event names a signing key this deployment does not have."""


@lru_cache(maxsize=8)
def _keys(raw: tuple[str, ...]) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    first = ""
    for entry in raw:
        key_id, sep, secret = entry.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError("ATP_AUDIT_SIGNING_KEYS entries must look like KEY_ID:SECRET.")
        if len(key_id) > 32:  # the key_id column's width: a cut id would name no key
            raise ValueError("ATP_AUDIT_SIGNING_KEYS key ids must be at most 32 characters.")
        keys[key_id] = secret.encode()
        first = first or key_id
    return first, keys


def signing_keys() -> tuple[str, dict[str, bytes]]:
    """(current key id, every known key by id); the first configured key signs."""
    from django.conf import settings

    return _keys(tuple(settings.ATP_AUDIT_SIGNING_KEYS))


def sign(digest: str, key_id: str | None = None) -> tuple[str, str]:
    current, keys = signing_keys()
    key_id = key_id or current
    return key_id, hmac.new(keys[key_id], digest.encode(), hashlib.sha256).hexdigest()


def signature_valid(digest: str, key_id: str, signature: str) -> bool:
    _, keys = signing_keys()
    key = keys.get(key_id)
    if key is None:
        raise SigningKeyError(key_id)
    expected = hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
