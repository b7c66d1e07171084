"""Symmetric encryption at rest for secrets and stored bodies (Fernet, rotatable keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet_key(material: str) -> bytes:
    """Accept a Fernet key as it is; derive one from any other passphrase."""
    raw = material.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def _current() -> MultiFernet:
    return _cipher(tuple(settings.ATP_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _current().encrypt(plaintext.encode()).decode()


class DecryptionError(Exception):
    """The value was encrypted with a key this deployment no longer has."""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with ATP_ENCRYPTION_KEY(S); "
            "add the old key to ATP_ENCRYPTION_KEYS."
        ) from None


def rotate(token: str) -> str:
    """`token` encrypted again with the first configured key (its timestamp kept); raises
    DecryptionError when no configured key decrypts it."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with ATP_ENCRYPTION_KEY(S); "
            "add the old key to ATP_ENCRYPTION_KEYS."
        ) from None


def encrypt_bytes(plaintext: bytes) -> bytes:
    """A Fernet token (URL-safe base64, never a newline) for `plaintext`."""
    return _current().encrypt(plaintext)


def decrypt_bytes(token: bytes) -> bytes:
    try:
        return _current().decrypt(token)
    except InvalidToken:
        raise DecryptionError(
            "A value cannot be decrypted with ATP_ENCRYPTION_KEY(S); "
            "add the old key to ATP_ENCRYPTION_KEYS."
        ) from None


# --- key ids: naming a key without revealing it ---------------------------------------------
# A key id is the first 16 hex digits of SHA-256 over a label and the Fernet key; backups
# record which ids encrypted their rows, so a restore can say which key it is missing.


def key_id(material: str) -> str:
    """The id of one ATP_ENCRYPTION_KEYS entry."""
    return hashlib.sha256(b"atp encryption key id v1\0" + _fernet_key(material)).hexdigest()[:16]


def key_ids() -> list[str]:
    """The ids of the configured keys, the one that encrypts first."""
    return [key_id(k) for k in settings.ATP_ENCRYPTION_KEYS]


@lru_cache(maxsize=4)
def _signing_keys(keys: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    # A Fernet key is a 16-byte HMAC key followed by a 16-byte AES key.
    return tuple((key_id(k), base64.urlsafe_b64decode(_fernet_key(k))[:16]) for k in keys)


def key_id_of(token: str | bytes) -> str | None:
    """The id of the configured key that made `token`, or None (no key of ours, or not a
    token). Checks the token's HMAC only, which is cheaper than decrypting it."""
    raw = token.encode() if isinstance(token, str) else token
    try:
        data = base64.urlsafe_b64decode(raw)
    except (ValueError, TypeError):
        return None
    if len(data) < 57:  # version, time, IV, one AES block, HMAC
        return None
    signed, tag = data[:-32], data[-32:]
    for ident, signing_key in _signing_keys(tuple(settings.ATP_ENCRYPTION_KEYS)):
        if hmac.compare_digest(hmac.new(signing_key, signed, hashlib.sha256).digest(), tag):
            return ident
    return None
