"""Symmetric encryption at rest for secrets and stored bodies (Fernet, rotatable keys)."""

from __future__ import annotations

import base64
import hashlib
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
