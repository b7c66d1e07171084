"""Secrets: API keys with a provider prefix, JWTs, private-key blocks, credentials in URLs
and connection strings, passwords in assignments, and random-looking tokens.

Candidates come from cheap searches (`find`): runs of twenty or more token characters,
`-----BEGIN`, `://` and a few keywords. Each is validated with detect-secrets' plugins
where one covers it (the provider patterns of its AWS, GitHub, Slack, Stripe, OpenAI...
detectors, its JWT decoder, its private-key headers, its Shannon entropy) and with a few
provider formats it does not know (Anthropic, Google, Hugging Face, GitLab...).

What is never a secret by itself: hex strings (git SHAs, sha256 digests), UUIDs, paths,
identifiers. Those count only right after a word such as `api_key`, `token` or `secret`.
"""

from __future__ import annotations

import math
import re
from functools import cache

Raw = list[tuple[int, int, str, float]]


def _token_table() -> bytes:
    table = bytearray(b" " * 256)
    for c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_+/=.-":
        table[c] = 0x78
    return bytes(table)


_TOKEN_CHARS = _token_table()
_RUN = b"x" * 20
_RUN_END = re.compile(rb"x*")

# Provider formats detect-secrets has no plugin for (theirs are added in _prefixed()).
_OWN_PATTERNS = (
    r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,}",  # Anthropic
    r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",  # OpenAI, any generation
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"github_pat_[A-Za-z0-9_]{60,}",  # GitHub fine-grained token
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack (any token shape)
    r"xapp-\d-[A-Za-z0-9\-]{20,}",  # Slack app-level token
    r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,}",  # Stripe secret and restricted keys
    r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",  # AWS access key ids
    r"dop_v1_[a-f0-9]{64}",  # DigitalOcean
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",  # PyPI
    r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",  # SendGrid
    r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",  # JWT
)
_KEYWORDS = (
    "key", "token", "secret", "passw", "pwd", "auth", "credential", "bearer", "api", "sig",
)  # fmt: skip
_PLACEHOLDER = re.compile(r"(?i)x{6,}|\.\.\.|<|>|\$\{|\{\{|your|example_?key|placeholder|redacted")
_HEXISH = re.compile(r"[0-9a-fA-F\-]+")  # hex digests, UUIDs, hex ids
_PARTS = re.compile(r"[A-Za-z0-9_\-+/]{16,}={0,2}")

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:[\s\S]{0,16000}?-----END \1-----|(?:\\[nr]|[A-Za-z0-9+/=\s:,\-.])*)"
)
_PUBLIC_BLOCK = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*(?:CERTIFICATE|PUBLIC KEY)(?: REQUEST| BLOCK)?)-----"
    r"[\s\S]{0,16000}?-----END \1-----"
)
_URL_USERINFO = re.compile(r"://([^\s/?#@:\"'<>]*):([^\s/@\"'<>]+)@[\w\-\[]")
_ASSIGNMENT = re.compile(
    r"(?i)(?:passwd|password|passphrase|pass|pwd|secret|client_secret|secret_key|"
    r"secretkey|accountkey|sharedaccesskey)[\w\-]{0,20}[\"']?\s*(?:=|:|=>)\s*"
    r"(?:\"([^\"\s]{4,200})\"|'([^'\s]{4,200})'|([^\s;,\"'&<>{}()\[\]]{4,200}))"
)
_ASSIGNMENT_WORDS = (b"pass", b"pwd", b"secret", b"accountkey", b"sharedaccesskey")
_NOT_A_VALUE = re.compile(
    r"\*{3,}|\$|%\(|%s|\{|<|\(|^(?i:null|none|true|false|required|optional|string|env|str|"
    r"int|bytes)$|^(?i:os\.|process\.env|getenv|settings\.|config\.|self\.|args\.)|"
    r"^[A-Z][A-Z0-9_]+$|\.get$"
)


@cache
def _prefixed() -> re.Pattern[str]:
    """Every provider pattern in one alternation, detect-secrets' plugins first."""
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.stripe import StripeDetector

    plugin_patterns = [
        AWSKeyDetector.denylist[0].pattern,
        *(p.pattern for p in GitHubTokenDetector.denylist),
        *(p.pattern for p in GitLabTokenDetector.denylist),
        *(p.pattern for p in OpenAIDetector.denylist),
        SlackDetector.denylist[0].pattern,
        *(p.pattern for p in StripeDetector.denylist),
    ]
    # Slack's pattern is case-insensitive in the plugin; spelled out here.
    plugin_patterns = [
        p.replace("xox(?:a|b|p|o|s|r)", "[xX][oO][xX](?:a|b|p|o|s|r)") for p in plugin_patterns
    ]
    alternatives = "|".join(f"(?:{p})" for p in (*plugin_patterns, *_OWN_PATTERNS))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def token_runs(raw: bytes) -> list[tuple[int, int]]:
    """Where `raw` has twenty or more token characters in a row."""
    tokens = raw.translate(_TOKEN_CHARS)
    runs = []
    at = tokens.find(_RUN)
    while at >= 0:
        end = _RUN_END.match(tokens, at).end()
        runs.append((at, end))
        at = tokens.find(_RUN, end)
    return runs


def find(text: str, raw: bytes, runs: list[tuple[int, int]], out: Raw) -> None:
    """Append every secret in `text` (`raw` is its one-byte-per-character encoding, `runs`
    its token runs)."""
    if "-----BEGIN" in text:
        _pem(text, out)
    if "://" in text:
        _urls(text, out)
    low = raw.lower()
    for word in _ASSIGNMENT_WORDS:
        at = low.find(word)
        while at >= 0:
            _assignment(text, at, out)
            at = low.find(word, at + len(word))
    if runs and "-----BEGIN" in text:
        # Certificates and public keys are random-looking by design and no secret.
        public = [m.span() for m in _PUBLIC_BLOCK.finditer(text)]
        runs = [r for r in runs if not any(s <= r[0] < e for s, e in public)]
    for start, end in runs:
        _token_run(text, start, end, out)


def _pem(text: str, out: Raw) -> None:
    from detect_secrets.plugins.private_key import PrivateKeyDetector

    headers = PrivateKeyDetector.denylist
    at = text.find("-----BEGIN")
    while at >= 0:
        m = _PEM.match(text, at)
        if m is not None and (
            m.group(1).startswith("ENCRYPTED")
            or any(h.search("BEGIN " + m.group(1)) for h in headers)
        ):
            end = m.end()
            while end > at and text[end - 1] in " \t\r\n":
                end -= 1
            out.append((at, end, "SECRET", 1.0))
            at = text.find("-----BEGIN", end)
        else:
            at = text.find("-----BEGIN", at + 10)


def _urls(text: str, out: Raw) -> None:
    at = text.find("://")
    while at >= 0:
        m = _URL_USERINFO.match(text, at)
        if m is not None:
            password = m.group(2)
            if not _NOT_A_VALUE.search(password) and not _PLACEHOLDER.search(password):
                out.append((m.start(2), m.end(2), "SECRET", 1.0))
        at = text.find("://", at + 3)


def _assignment(text: str, at: int, out: Raw) -> None:
    m = _ASSIGNMENT.match(text, at)
    if m is None:
        return
    group = 1 if m.group(1) is not None else 2 if m.group(2) is not None else 3
    value = m.group(group)
    if _NOT_A_VALUE.search(value) or _PLACEHOLDER.search(value) or len(value) < 6:
        return
    if group == 3 and value.isalpha() and value.islower() and len(value) < 12:
        return  # "password: required", "secret sauce"
    out.append((m.start(group), m.end(group), "SECRET", 1.0))


def _token_run(text: str, start: int, end: int, out: Raw) -> None:
    run = text[start:end]
    if _HEXISH.fullmatch(run):
        # Digests, UUIDs, hex ids: secrets only when named as one ("api_key": "9f86d0...").
        if _after_keyword(text, start):
            for m in _PARTS.finditer(run):
                if _random(m.group(), True):
                    out.append((start + m.start(), start + m.end(), "SECRET", 0.8))
        return
    found = False
    for m in _prefixed().finditer(run):
        value = m.group()
        if value.startswith("eyJ") and not _jwt_valid(value):
            continue
        tail = value[-20:]
        if _PLACEHOLDER.search(value) or _entropy(tail) < 2.5:
            continue
        out.append((start + m.start(), start + m.end(), "SECRET", 1.0))
        found = True
    if found:
        return
    keyword = None
    for m in _PARTS.finditer(run):
        value = m.group()
        if keyword is None:
            keyword = _after_keyword(text, start)
        if _random(value, keyword):
            out.append((start + m.start(), start + m.end(), "SECRET", 0.8))


def _after_keyword(text: str, start: int) -> bool:
    before = text[max(0, start - 24) : start].lower()
    return any(w in before for w in _KEYWORDS)


def _random(value: str, keyword: bool) -> bool:
    """Whether `value` reads as a generated secret rather than a word, path or digest."""
    n = len(value)
    if n > 100 and not keyword:
        return False  # an embedded file or certificate, not a key
    if _PLACEHOLDER.search(value):
        return False
    body = value.rstrip("=")
    if _HEXISH.fullmatch(body):
        return keyword and n >= 16 and _entropy(body) >= 3.0
    digits = sum(c.isdigit() for c in body)
    if digits < (1 if keyword else 2):
        return False
    upper = sum(c.isupper() for c in body)
    lower = sum(c.islower() for c in body)
    if keyword:
        return n >= 16 and (upper + lower) >= 4 and _entropy(body) >= 3.5
    if n < 20 or upper < 2 or lower < 2:
        return False
    # Identifiers ("getUserAccountSettingsV2") change character class rarely; generated
    # tokens change it at about every other character.
    changes = sum(_kind(a) != _kind(b) for a, b in zip(body, body[1:], strict=False))
    return changes >= 0.3 * n and _entropy(body) >= min(4.0, 0.8 * math.log2(n))


def _kind(c: str) -> int:
    return 0 if c.isdigit() else 1 if c.isupper() else 2 if c.islower() else 3


def _entropy(value: str) -> float:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return _plugin_entropy(Base64HighEntropyString, value)


@cache
def _entropy_plugin(cls: type):
    return cls()


def _plugin_entropy(cls: type, value: str) -> float:
    plugin = _entropy_plugin(cls)
    # The plugin counts only its own alphabet; '-' and '_' (URL-safe base64) are added.
    extra = value.count("-") + value.count("_")
    base = plugin.calculate_shannon_entropy(value)
    if extra:
        for ch in "-_":
            p = value.count(ch) / len(value)
            if p:
                base -= p * math.log2(p)
    return base


def _jwt_valid(token: str) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    return JwtTokenDetector.is_formally_valid(token)
