"""API key and admin token format: generation, hashing and the visible prefix."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "atp_"
ADMIN_TOKEN_PREFIX = "atpadm_"
VISIBLE_CHARS = 12
MIN_KEY_LENGTH = 20


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def generate_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    """SHA-256 hex digest; keys carry 256 random bits, so no salt or stretching is needed."""
    return hashlib.sha256(raw.encode()).hexdigest()


def visible_prefix(raw: str) -> str:
    return raw[:VISIBLE_CHARS]
