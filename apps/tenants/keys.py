"""API key and admin token format: generation, hashing and the visible prefix."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import Counter

API_KEY_PREFIX = "atp_"
ADMIN_TOKEN_PREFIX = "atpadm_"
VISIBLE_CHARS = 12
# What a key supplied from outside (a configuration file) must at least be. Generated keys
# carry 256 random bits; `openssl rand -hex 32` or `atp_` + 43 URL-safe characters pass.
MIN_KEY_LENGTH = 32
MIN_KEY_BITS = 80


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def generate_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _classes(key: str) -> int:
    return sum(
        (
            any(c.islower() for c in key),
            any(c.isupper() for c in key),
            any(c.isdigit() for c in key),
            any(not c.isalnum() for c in key),
        )
    )


def _shannon_bits(key: str) -> float:
    counts, n = Counter(key), len(key)
    return -sum(v * math.log2(v / n) for v in counts.values())


def key_strength_error(key: str) -> str | None:
    """Why `key` is too weak to be an API key, or None.

    A key is hashed with unsalted SHA-256 (so the data plane finds it in one look-up), which
    is only safe for keys nobody can guess: long, mixed, and without repeats or runs. The
    entropy estimate is the string's own character statistics, which a random key passes
    easily and a word, a repeated chunk or a counting run does not.
    """
    if len(key) < MIN_KEY_LENGTH:
        return f"must be at least {MIN_KEY_LENGTH} characters (a random key, e.g. openssl rand -hex 32)"
    if _classes(key) < 2:
        return "must mix at least two of: lower-case letters, upper-case letters, digits, symbols"
    bits = _shannon_bits(key)
    if bits < MIN_KEY_BITS:
        return f"is too predictable (about {bits:.0f} bits; at least {MIN_KEY_BITS} needed)"
    trigrams = [key[i : i + 3] for i in range(len(key) - 2)]
    steps = sum(abs(ord(b) - ord(a)) == 1 for a, b in zip(key, key[1:], strict=False))
    if len(set(trigrams)) < 0.75 * len(trigrams) or steps > 0.5 * (len(key) - 1):
        return "is too predictable (it repeats itself or counts up or down)"
    return None


def hash_key(raw: str) -> str:
    """SHA-256 hex digest; keys carry 256 random bits, so no salt or stretching is needed."""
    return hashlib.sha256(raw.encode()).hexdigest()


def visible_prefix(raw: str) -> str:
    return raw[:VISIBLE_CHARS]
