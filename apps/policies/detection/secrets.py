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
from collections import Counter
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
    r"GOCSPX-[A-Za-z0-9_\-]{28}",  # Google OAuth client secret
    r"ya29\.[A-Za-z0-9_\-]{30,}",  # Google OAuth access token
    r"whsec_[A-Za-z0-9+/=]{24,}",  # Stripe and Svix webhook signing secrets
    r"gl(?:sa|c)_[A-Za-z0-9_\-]{32,}",  # Grafana service account and cloud tokens
    r"hv[sb]\.[A-Za-z0-9_\-]{24,}",  # HashiCorp Vault tokens
    r"gsk_[A-Za-z0-9]{40,}",  # Groq
    r"pplx-[A-Za-z0-9]{40,}",  # Perplexity
    r"r8_[A-Za-z0-9]{30,}",  # Replicate
    r"dapi[a-f0-9]{32}(?:-\d)?",  # Databricks
    r"lin_api_[A-Za-z0-9]{40}",  # Linear
    r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}",  # Postman
    r"sbp_[a-f0-9]{40}",  # Supabase
    r"(?:AC|SK)[a-f0-9]{32}",  # Twilio account SID and API key SID
    r"(?<=hooks\.slack\.com/services/)T[A-Z0-9]{8,}/B[A-Z0-9]{8,}/[A-Za-z0-9]{20,}",  # Slack hook
    r"(?<=discord\.com/api/webhooks/)\d{17,20}/[A-Za-z0-9_\-]{60,}",  # Discord webhook
)
# An identifier names a secret when one of its words is one of these ("OPENAI_API_KEY",
# "clientSecret", "x-api-key", "access_token") and none of _NOT_SECRET qualifies it.
_SECRET_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "pw", "passphrase", "passcode", "secret", "secrets",
    "token", "credential", "credentials", "auth", "authorization", "bearer", "apikey",
    "sig", "signature", "secretkey", "accountkey", "sharedaccesskey", "privatekey", "otp",
    "totp", "passwort", "kennwort", "senha", "wachtwoord", "contraseña", "passe",
})  # fmt: skip
# Qualifiers of a key or token that is no secret: public keys, cache and database keys,
# pagination tokens.
_NOT_SECRET = frozenset({
    "public", "pub", "publishable", "cache", "idempotency", "primary", "foreign", "partition",
    "sort", "object", "routing", "dedup", "lookup", "range", "authorized", "known", "page",
    "next", "continuation", "pagination", "cursor", "author",
})  # fmt: skip
# Last words of an identifier that is about a secret but holds none ("token_type",
# "password_reset_url", "key_id", "secret_name").
_NOT_A_SECRET_VALUE = frozenset({
    "id", "ids", "type", "types", "count", "url", "uri", "endpoint", "name", "names",
    "length", "len", "size", "limit", "usage", "expiry", "expires", "expiration", "ttl",
    "file", "path", "dir", "header", "prefix", "suffix", "format", "version", "hint",
    "policy", "reset", "field", "label", "ref", "arn", "param", "rotation", "min", "max",
    "enabled", "required", "hash", "tokens", "fingerprint", "algorithm", "alg", "kid",
})  # fmt: skip
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-zß-ÿ]+|\d+")
_PLACEHOLDER = re.compile(
    r"(?i)x{6,}|\.\.\.|<|>|\$\{|\{\{|your|example_?key|placeholder|redacted|replace_?me|"
    r"dummy|0123456|1234567|abcdefg|\*{4,}|example"
)
_HEXISH = re.compile(r"[0-9a-fA-F\-]+")  # hex digests, UUIDs, hex ids
_TWILIO_ACCOUNT = re.compile(r"AC[a-f0-9]{32}")
_TELEGRAM_BOT = re.compile(r"AA[A-Za-z0-9_\-]{33}(?![A-Za-z0-9_\-])")
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
    r"secretkey|accountkey|sharedaccesskey|kennwort|contraseña|senha|wachtwoord|"
    r"mot de passe)[\w\-]{0,20}"
    # "password for root:", "Passwort für den Admin:", "mot de passe pour le compte :"
    r"(?:\s+(?:for|of|für|von|pour|de|du|para|per|del|do|da)(?:\s+(?:the|den|die|der|das|le|la"
    r"|les|el|il|o|a))?(?:\s+[\w.@\-]{1,30}){1,3}(?=\s*[:=]))?"
    r"[\"']?(?:\s*(?:=|:|=>)\s*|\s+(?:is|ist|est|es|è|é)\s+|"
    r"[ \t]+(?=[^\s\"']*\d))"
    r"(?:\"([^\"\s]{4,200})\"|'([^'\s]{4,200})'|([^\s;,\"'&<>{}()\[\]]{4,200}))"
)
# curl and wget credentials: `-u user:password`, `--user=user:password`.
_CLI_USER = re.compile(r"(?<=\s)(?:-u|--user)[ =][\"']?[^\s:\"'/]+:([^\s\"'@]{4,200})")
# `<password>...</password>` (Maven settings, XML configuration).
_XML_VALUE = re.compile(r"[\w\-]*>([^<\s]{4,200})</")
# Database client flags: `mysql -pSECRET` (attached), `sshpass -p SECRET`, `docker login -p
# SECRET`; elsewhere `-p` is a port or a path.
_CLI_PASSWORD = re.compile(
    r"(?m)^[ \t$>#]*(?:(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n|;&]*?\s-p(?=[^\s-])"
    r"|(?:sshpass|(?:docker|podman|nerdctl|helm registry) login)\b[^\n|;&]*?\s-p\s+)"
    r"[\"']?([^\s\"']{4,200})"
)
# Go's MySQL driver: "user:password@tcp(host:3306)/db".
_GO_DSN = re.compile(r"[\"'\s]([\w.\-]{1,64}):([^\s/@\"'<>]{4,200})@(?:tcp|unix)\(")
# Azure shared access signatures and other signed URLs: "&sig=..." (URL-encoded base64).
_URL_SIGNATURE = re.compile(r"[?&]sig=([A-Za-z0-9%+/=_\-]{20,200})")
_URL_REST = re.compile(r"[^\s\"'<>]{0,2000}")
_NAME_KEY = re.compile(r"\bname[\"']?\s*[:=]\s*[\"']?$")
_NAME_VALUE = re.compile(
    r"(?i)[\w\-]{0,30}[\"']?,?\s{1,40}[\"']?value[\"']?\s*[:=]\s*"
    r"(?:\"([^\"\s]{4,200})\"|'([^'\s]{4,200})'|([^\s;,\"'&<>{}()\[\]]{4,200}))"
)
_ASSIGNMENT_WORDS = (
    b"pass", b"pwd", b"secret", b"accountkey", b"sharedaccesskey", b"kennwort", b"contrase",
    b"senha", b"wachtwoord",
)  # fmt: skip
_NOT_A_VALUE = re.compile(
    r"\*{3,}|\$|%\(|%s(?![A-Za-z0-9])|\{|<|\(|^(?i:null|none|true|false|required|optional|string|env|str|"
    r"int|bytes)$|^(?i:os\.|process\.env|getenv|settings\.|config\.|self\.|args\.)|"
    # Names of constants and variables ("DB_PASSWORD", "SECRET"), not values.
    r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]+$|\.get$"
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
    # Every substring search costs about 1 ns per character of the prompt, so the rarer
    # forms are looked for only where a search that is made anyway has found something.
    at = text.find("@")
    while at >= 0:
        if text.startswith(("tcp(", "unix("), at + 1):  # "user:password@tcp(host:3306)/db"
            m = _GO_DSN.search(text, max(0, at - 270), at + 6)
            if m is not None:
                _value(m, 2, out)
        at = text.find("@", at + 1)
    if " -u " in text or "--user" in text:
        for m in _CLI_USER.finditer(text):
            if not _NOT_A_VALUE.search(m.group(1)) and not _PLACEHOLDER.search(m.group(1)):
                out.append((m.start(1), m.end(1), "SECRET", 1.0))
        # "mysql -u root -pSECRET", "docker login -u ci -p SECRET"
        for m in _CLI_PASSWORD.finditer(text):
            _value(m, 1, out)
    low = raw.lower()
    for word in _ASSIGNMENT_WORDS:
        at = low.find(word)
        while at >= 0:
            if word == b"pass" and low.endswith(b"ssh", 0, at):  # "sshpass -p SECRET ssh ..."
                m = _CLI_PASSWORD.match(text, low.rfind(b"\n", 0, at) + 1)
                if m is not None:
                    _value(m, 1, out)
            _assignment(text, at, out)
            at = low.find(word, at + len(word))
    if runs and "-----BEGIN" in text:
        # Certificates and public keys are random-looking by design and no secret.
        public = [m.span() for m in _PUBLIC_BLOCK.finditer(text)]
        runs = [r for r in runs if not any(s <= r[0] < e for s, e in public)]
    memo: dict = {}  # table headers, shared by the runs of this text
    for start, end in runs:
        _token_run(text, start, end, out, memo)


def _value(m: re.Match, group: int, out: Raw) -> None:
    value = m.group(group)
    if not _NOT_A_VALUE.search(value) and not _PLACEHOLDER.search(value):
        out.append((m.start(group), m.end(group), "SECRET", 1.0))


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
        end = _URL_REST.match(text, at + 3).end()
        sig = text.find("sig=", at, end)  # a shared access signature: "...&sig=..."
        if sig > 0:
            m = _URL_SIGNATURE.match(text, sig - 1)
            if m is not None and _entropy(m.group(1)) >= 3.0:
                out.append((m.start(1), m.end(1), "SECRET", 1.0))
        at = text.find("://", at + 3)


def _assignment(text: str, at: int, out: Raw) -> None:
    begin = at
    while begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_-."):
        begin -= 1
    m = _ASSIGNMENT.match(text, at)
    if m is None and _NAME_KEY.search(text, max(0, begin - 12), begin):
        # Kubernetes, ECS and CI environments: `- name: DB_PASSWORD` then `value: ...`.
        m = _NAME_VALUE.match(text, at)
    if m is None and begin and text[begin - 1] == "<":
        m = _XML_VALUE.match(text, at)
    if m is None:
        return
    name_end = at
    while name_end < len(text) and (text[name_end].isalnum() or text[name_end] in "_-"):
        name_end += 1
    if not names_secret(text[begin:name_end]):
        return
    group = 1 if m.group(1) is not None else 2 if m.group(2) is not None else 3
    value = m.group(group)
    end = m.end(group)
    if group == 3 and value[-1] in ".,":
        value = value[:-1]  # the end of a sentence ("the password is hunter2.")
        end -= 1
    if _NOT_A_VALUE.search(value) or _PLACEHOLDER.search(value) or len(value) < 6:
        return
    if "://" in value:
        return  # a URL (its password, if any, is found as such)
    if "=" in value and "\n" in text[name_end : m.start(group)]:
        return  # "DB_PASSWORD=" left empty: the next line's assignment is no value
    if group == 3 and value.isalpha() and value.islower() and len(value) < 12:
        return  # "password: required", "secret sauce"
    out.append((m.start(group), end, "SECRET", 1.0))


def _token_run(text: str, start: int, end: int, out: Raw, memo: dict) -> None:
    run = text[start:end]
    if _HEXISH.fullmatch(run):
        # Digests, UUIDs, hex ids: secrets only when named as one ("api_key": "9f86d0..."),
        # or a Twilio account SID ("AC" and 32 hex digits, all of them hex characters).
        if run.startswith("AC") and _TWILIO_ACCOUNT.fullmatch(run):
            out.append((start, end, "SECRET", 1.0))
        elif _named(text, start, memo):
            for m in _PARTS.finditer(run):
                if _random(m.group()):
                    out.append((start + m.start(), start + m.end(), "SECRET", 0.8))
        return
    if start > 1 and text[start - 1] == ":" and text[start - 2].isdigit() and run[:2] == "AA":
        m = _TELEGRAM_BOT.match(run)  # "bot123456789:AA..." (the bot id before the colon)
        if m is not None and _entropy(m.group()) >= 3.5:
            out.append((start, start + m.end(), "SECRET", 1.0))
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
    # Anything else random-looking is a secret only where it is assigned to a name that
    # says so: object ids, build ids, integrity hashes, public keys and minified code are
    # random-looking too.
    for m in _PARTS.finditer(run):
        value = m.group()
        if _named(text, start + m.start(), memo) and _random(value):
            out.append((start + m.start(), start + m.end(), "SECRET", 0.8))


def _named(text: str, start: int, memo: dict) -> bool:
    """Whether the value at `start` is assigned to an identifier that names a secret, or
    stands in a table column whose header does ("Secret access key"; `memo` caches table
    headers)."""
    if start and text[start - 1] in ",;\t|":
        from apps.policies.detection.numbers import column_header

        header = column_header(text, start, memo)
        if header:
            return names_secret(header)
    window = text[max(0, start - 40) : start].lower()
    for word in _HINT_WORDS:
        if word in window:
            break
    else:
        return False  # most runs (ids, digests in JSON) end here, without parsing
    name, at = _name_before(text, start)
    if name.lower() == "value":
        # `- name: API_TOKEN` then `value: ...`
        before = _NAME_ON_LINE_BEFORE.search(text, max(0, at - 80), at)
        if before is not None:
            name = before.group(1)
    return bool(name) and names_secret(name)


# Every secret word above contains one of these.
_HINT_WORDS = ("key", "tok", "secret", "pass", "pw", "auth", "bearer", "sig", "cred", "otp",
               "kennwort", "senha", "wachtwoord", "contrase", "value")  # fmt: skip
_VERBS = (" is", " ist", " est", " es", " to")  # "... is ...", "set `api_token` to ..."


def _name_before(text: str, start: int) -> tuple[str, int]:
    """The identifier a value is assigned to, read backwards from the value: `name = "`,
    `"name": "`, `name: `, `--name `, `?name=`, `Authorization: Bearer `, `token is `.
    A backward scan of a few characters: a regular expression anchored at the value's end
    would be tried from every position before it."""
    floor = max(0, start - 64)
    i = start
    if i > floor and text[i - 1] in "\"'`":
        i -= 1
        if i - 1 > floor and text[i - 1] in "bBrRuU" and text[i - 2] in " =(:,[":
            i -= 1  # a string prefix: b"...", r"..."
    for scheme in ("bearer ", "basic ", "token ", "base64:"):  # Laravel's APP_KEY=base64:...
        if text[max(floor, i - len(scheme)) : i].lower() == scheme:
            i -= len(scheme)
            if i > floor and text[i - 1] in "\"'`":
                i -= 1
            break
    j = i
    while j > floor and text[j - 1] in " \t":
        j -= 1
    spaced = j < i
    operator = True
    if text[max(floor, j - 2) : j] in ("=>", ":=", "->"):
        j -= 2
    elif j > floor and text[j - 1] in ":=→":
        j -= 1
    elif spaced:
        operator = False
        for verb in _VERBS:
            if text[max(floor, j - len(verb)) : j].lower() == verb:
                j -= len(verb)
                operator = True
                break
    while j > floor and text[j - 1] in " \t":
        j -= 1
    if j > floor and text[j - 1] == "]":  # headers["Authorization"] = ...
        j -= 1
    if j > floor and text[j - 1] in "\"'`":
        j -= 1
    k = j
    while k > floor and (text[k - 1].isalnum() or text[k - 1] in "_.-"):
        k -= 1
    while k < j and not text[k].isalpha():
        k += 1
    name = text[k:j]
    if not operator and any(c.isdigit() for c in name):
        return "", k  # "watch?v=dQw4w9WgXcQ src/...": a value before a value, not a name
    if operator and k > floor and text[k - 1] == " " and not names_secret(name):
        # A secret word a few words back: "the token for prod: ...", "key I use is: ..."
        phrase = _PHRASE.search(text, max(floor, k - 40), j)
        if phrase is not None and names_secret(phrase.group(1)):
            return phrase.group(1), k
    return name, k


# A secret word followed by at most four plain words before the operator.
_PHRASE = re.compile(r"(?i)\b(api[ _-]?key|key|token|secret|password|passwd)(?: [a-z]{1,12}){1,4}$")


# `name: API_TOKEN` then `value: ...`; `<add key="ApiKey" value="...">`.
_NAME_ON_LINE_BEFORE = re.compile(r"[\"']?(?:name|key)[\"']?\s*[:=]\s*[\"']?([\w.\-]+)[\"']?,?\s*$")


def names_secret(name: str) -> bool:
    """Whether an identifier ("OPENAI_API_KEY", "clientSecret", "x-api-key") names a secret."""
    words = [w.lower() for w in _CAMEL.findall(name)]
    if not words or words[-1] in _NOT_A_SECRET_VALUE:
        return False
    if any(w in _NOT_SECRET for w in words):
        return False
    return (
        words[-1] in ("key", "keys")
        or any(w in _SECRET_WORDS for w in words)
        # Run together: "PGPASSWORD", "dbpassword", "authtoken", "appsecret"
        or any(w.endswith(_SECRET_ENDINGS) for w in words)
    )


_SECRET_ENDINGS = ("password", "passwd", "secret", "token", "apikey")


def _random(value: str) -> bool:
    """Whether a named value reads as a generated secret rather than a word, path or
    placeholder."""
    n = len(value)
    if _PLACEHOLDER.search(value):
        return False
    body = value.rstrip("=")
    if _HEXISH.fullmatch(body):
        return n >= 16 and _entropy(body) >= 3.0
    if sum(c.isdigit() for c in body) < 1:
        return False
    letters = sum(c.isalpha() for c in body)
    return n >= 16 and letters >= 4 and _entropy(body) >= 3.5


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character over detect-secrets' base64 alphabet (its
    Base64HighEntropyString plugin's measure; URL-safe base64's '-' and '_' included).

    The plugin's own `calculate_shannon_entropy` counts each of its 64 characters with a
    separate scan of the value (35 µs for a 20-character key); counting the value's
    characters once gives the same number."""
    n = len(value)
    if not n:
        return 0.0
    alphabet = _base64_alphabet()
    total = 0.0
    for ch, count in Counter(value).items():
        if ch in alphabet:
            p = count / n
            total -= p * math.log2(p)
    return total


@cache
def _base64_alphabet() -> frozenset[str]:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return frozenset(Base64HighEntropyString().charset)


def _jwt_valid(token: str) -> bool:
    from detect_secrets.plugins.jwt import JwtTokenDetector

    return JwtTokenDetector.is_formally_valid(token)
