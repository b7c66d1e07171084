"""Builds pii_dev3.jsonl, the third labelled development set of the PII detector.

    .venv/bin/python tests/policies/data/build_pii_dev3.py

The first two sets cover every structured type. This one is aimed at the three types whose
real-world spellings vary most, in the shapes a gateway sees them:

- PHONE: numbers of 27 countries in international (`+`, `00`), national and mixed formats
  (`+44 (0)20 ...`, dots, slashes, dashes, parentheses, extensions), in e-mail signatures,
  vCards, CSV/TSV rows, JSON, Markdown tables, chats, call transcripts, `tel:` links and
  sentences in a dozen languages, right before punctuation and at line ends.
- SSN: dashed, spaced, dotted and unseparated, after many labels in several languages, in
  forms, table columns, JSON keys, HR, payroll, insurance and tax texts, several on a line,
  in parentheses and quotes; only valid ranges.
- SECRET: provider keys (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, Anthropic, Google,
  Twilio, SendGrid, npm, PyPI, Hugging Face, Azure), JWTs, PEM private keys, credentials in
  URLs and DSNs, passwords in `.env`, YAML, JSON, TOML, INI, XML, docker-compose and
  Kubernetes files, CLI flags, HTTP headers, random tokens assigned to secret names.

Every record also carries hard negatives: Luhn-failing card-like numbers, UUIDs, git SHAs,
digests, versions, order, invoice and tracking numbers, dates, timestamps, prices, ISBNs,
postcodes, build ids, invalid SSNs (area 000, 666, 9xx; ITINs, EINs) and placeholders
(`sk-...`, `<your-api-key>`, `${API_KEY}`, `changeme`, `AKIAIOSFODNN7EXAMPLE`).

Labels follow tests/policies/data/README.md and the earlier development sets: a phone span
is the number with its `+`, country code and formatting, without the words around it (an
extension is a word around it); a secret span is the value only (a URL's password, the
token after `Bearer`, an assignment's right-hand side without quotes, a private-key block
from `-----BEGIN` to the closing `-----`). Offsets are computed while the text is
assembled; the builder checks every gold value (phonenumbers, python-stdnum) and every hard
negative before writing. No value is a real credential or a real person's data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import urllib.parse
import uuid
from pathlib import Path

import phonenumbers
from stdnum import ean, isbn, luhn
from stdnum import iban as stdnum_iban
from stdnum.us import ssn as stdnum_ssn

OUT = Path(__file__).with_name("pii_dev3.jsonl")
R = random.Random(20260302)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
PNF = phonenumbers.PhoneNumberFormat
PNT = phonenumbers.PhoneNumberType


class Doc:
    """Text assembled piece by piece, with the spans of the labelled pieces."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.spans: list[list] = []

    def add(self, *pieces) -> Doc:
        for piece in pieces:
            if isinstance(piece, tuple):
                value, kind = piece
                self.spans.append([self.size, self.size + len(value), kind])
                piece = value
            self.parts.append(piece)
            self.size += len(piece)
        return self

    @property
    def text(self) -> str:
        return "".join(self.parts)


def rand(chars: str, n: int) -> str:
    return "".join(R.choice(chars) for _ in range(n))


def pick(*options):
    return R.choice(options)


# --- people (unlabelled here: only the structured types are scored) ---------------------------

GIVEN = ["Aiko", "Bastien", "Chiara", "Dagny", "Emeka", "Freya", "Gonzalo", "Hana", "Ilse",
         "Joaquim", "Kasia", "Lars", "Maëlle", "Nikhil", "Orla", "Pieter", "Quentin", "Rosa",
         "Sven", "Thandiwe", "Ugo", "Vera", "Wiebke", "Xavier", "Yusuf", "Zofia"]  # fmt: skip
FAMILY = ["Abbott", "Bianchi", "Carvalho", "Dubois", "Engström", "Fischer", "García", "Haugen",
          "Iyer", "Jovanović", "Kim", "Larsen", "Mendes", "Nowak", "O'Brien", "Peeters",
          "Quispe", "Rossi", "Schmid", "Tanaka", "Urquhart", "Visser", "Wang", "Zhou"]  # fmt: skip


def person() -> str:
    return f"{R.choice(GIVEN)} {R.choice(FAMILY)}"


def email() -> str:
    g = R.choice(GIVEN).lower().replace("ë", "e")
    f = R.choice(FAMILY).lower().replace("'", "").replace("ö", "o").replace("í", "i").replace("ć", "c")  # fmt: skip
    return f"{pick(g, g[0] + '.' + f, g + '.' + f)}@{pick('example.com', 'example.org', 'example.net')}"


# --- phones -----------------------------------------------------------------------------------

REGIONS = ["US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "PL", "SE", "NO",
           "DK", "IE", "PT", "BR", "MX", "IN", "JP", "KR", "CN", "AU", "NZ", "ZA", "SG"]  # fmt: skip
TRUNK_ZERO = {"GB", "DE", "FR", "IT", "NL", "BE", "CH", "AT", "SE", "IE", "IN", "JP", "KR",
              "CN", "AU", "NZ", "ZA"}  # fmt: skip


def _valid_number(region: str) -> phonenumbers.PhoneNumber:
    kind = pick(PNT.MOBILE, PNT.MOBILE, PNT.FIXED_LINE)
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    nsn = str(example.national_number)
    for _ in range(200):
        keep = R.randint(2, 3)
        candidate = phonenumbers.parse(
            f"+{example.country_code}{nsn[:keep]}{rand(string.digits, len(nsn) - keep)}"
        )
        if phonenumbers.is_valid_number(candidate) and phonenumbers.region_code_for_number(
            candidate
        ) in (region, "US" if region == "CA" else region):
            return candidate
    return example


def phone(region: str, style: str | None = None) -> str:
    """A valid number of `region`, written in one of the ways people write it."""
    number = _valid_number(region)
    intl = phonenumbers.format_number(number, PNF.INTERNATIONAL)
    national = phonenumbers.format_number(number, PNF.NATIONAL)
    e164 = phonenumbers.format_number(number, PNF.E164)
    cc, rest = intl.split(" ", 1)
    if region in ("US", "CA"):
        d = str(number.national_number)
        a, b, c = d[:3], d[3:6], d[6:]
        forms = [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 ({a}) {b}-{c}",
                 f"+1 {a}-{b}-{c}", f"+1 {a} {b} {c}", f"1-{a}-{b}-{c}", f"+1.{a}.{b}.{c}",
                 f"001 {a} {b} {c}", f"+1{d}", f"1 ({a}) {b}-{c}", f"({a}){b}-{c}"]  # fmt: skip
        return R.choice(forms) if style is None else forms[0]
    forms = {
        "intl": intl,
        "e164": e164,
        "00": "00" + intl[1:],
        "national": national,
        "intl_dash": cc + "-" + rest.replace(" ", "-"),
        "intl_dot": cc + " " + rest.replace(" ", ".").replace("-", "."),
        "intl_compact_rest": cc + " " + rest.replace(" ", "").replace("-", ""),
        "paren_cc": f"({cc}) {rest}",
    }
    if " " in rest and region in ("BR", "MX", "IN", "CN", "DE", "IT", "ES", "JP", "KR"):
        area, tail = rest.replace("-", " ", 1).split(" ", 1)
        forms["intl_paren_area"] = f"{cc} ({area}) {tail}"
    if region in TRUNK_ZERO and national.startswith(("0", "(0")):
        forms["trunk"] = f"{cc} (0){rest}"
        forms["trunk_spaced"] = f"{cc} (0) {rest}"
        forms["national_dash"] = national.replace(" ", "-")
        if region in ("DE", "AT", "CH") and " " in national:
            head, tail = national.split(" ", 1)
            forms["slash"] = f"{head}/{tail.replace(' ', '')}"
            forms["paren_area"] = f"({head}) {tail}"
        if region == "FR":
            forms["national_dot"] = national.replace(" ", ".")
        if region in ("GB", "AU", "NZ", "IE") and " " in national:
            head, tail = national.lstrip("(").replace(")", "").split(" ", 1)
            forms["paren_area"] = f"({head}) {tail}"
    if style in forms:
        return forms[style]
    weights = {"intl": 4, "e164": 2, "00": 2, "national": 4}
    keys = list(forms)
    return forms[R.choices(keys, [weights.get(k, 1) for k in keys])[0]]


def region_for(lang: str) -> str:
    home = {"en": pick("US", "GB", "CA", "AU", "IE", "NZ", "ZA", "SG", "IN"), "de": pick("DE", "AT", "CH"),
            "fr": pick("FR", "BE", "CH"), "es": pick("ES", "MX"), "it": "IT", "nl": pick("NL", "BE"),
            "pt": pick("PT", "BR"), "pl": "PL", "sv": "SE", "no": "NO", "da": "DK", "ja": "JP",
            "ko": "KR", "zh": "CN"}[lang]  # fmt: skip
    return home if R.random() < 0.75 else R.choice(REGIONS)


def extension() -> str:
    n = R.randint(100, 9999)
    return pick(f" ext. {n}", f" x{n}", f" ext {n}", f", ext. {n}", f" (ext. {n})", f" Durchwahl {n}", f" poste {n}")  # fmt: skip


# --- SSNs -------------------------------------------------------------------------------------


def ssn_digits() -> str:
    while True:
        area = R.choice([R.randint(1, 665), R.randint(667, 899)])
        value = f"{area:03d}{R.randint(1, 99):02d}{R.randint(1, 9999):04d}"
        if stdnum_ssn.is_valid(value):
            return value


def ssn(style: str | None = None) -> str:
    d = ssn_digits()
    style = style or pick("dash", "dash", "dash", "space", "plain", "dot")
    sep = {"dash": "-", "space": " ", "dot": ".", "plain": ""}[style]
    return f"{d[:3]}{sep}{d[3:5]}{sep}{d[5:]}"


def bad_ssn() -> str:
    """SSN-shaped numbers that are no SSN: area 000, 666 or 9xx (ITINs), group 00, serial
    0000."""
    way = pick("area", "area", "area", "group", "serial")
    area = (
        pick("000", "666", f"9{R.randint(0, 99):02d}")
        if way == "area"
        else f"{R.randint(1, 665):03d}"
    )
    group = "00" if way == "group" else f"{R.randint(1, 99):02d}"
    serial = "0000" if way == "serial" else f"{R.randint(1, 9999):04d}"
    value = f"{area}-{group}-{serial}"
    assert not stdnum_ssn.is_valid(value.replace("-", ""))
    return value


# --- cards (positives are rare here; their look-alikes are the point) -------------------------


def card() -> str:
    prefix = pick("4", "4", "51", "55", "2221", "34", "37", "6011")
    length = 15 if prefix in ("34", "37") else 16
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    digits = body + luhn.calc_check_digit(body)
    sep = pick(" ", "-", "")
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def iban() -> str:
    country, size = R.choice(
        [("DE", 18), ("FR", 23), ("ES", 20), ("IT", 23), ("NL", 14), ("BE", 12), ("PT", 21)]
    )
    while True:
        bban = rand(string.digits, size)
        if country == "NL":
            bban = rand(string.ascii_uppercase, 4) + rand(string.digits, 10)
        if country == "IT":
            bban = rand(string.ascii_uppercase, 1) + rand(string.digits, 22)
        value = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
        if stdnum_iban.is_valid(value):
            return (
                value
                if R.random() < 0.5
                else " ".join(value[i : i + 4] for i in range(0, len(value), 4))
            )


def ipv4() -> str:
    return f"{R.randint(23, 212)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def card_negative() -> str:
    """A 16-digit payment-looking number failing Luhn."""
    body = pick("4", "5", "37", "6011") + rand(string.digits, 15)
    body = body[:16]
    if luhn.is_valid(body):
        body = body[:-1] + str((int(body[-1]) + 1) % 10)
    assert not luhn.is_valid(body)
    return pick(" ".join(body[i : i + 4] for i in range(0, 16, 4)), body, "-".join(body[i : i + 4] for i in range(0, 16, 4)))  # fmt: skip


# --- secrets ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    header = b64url(json.dumps({"alg": pick("HS256", "RS256", "ES256"), "typ": "JWT"}).encode())
    claims = {"sub": str(R.randint(10**6, 10**9)), "iat": R.randint(1_700_000_000, 1_760_000_000),
              "scope": pick("read", "read write", "admin")}  # fmt: skip
    return (
        f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(R.randbytes(pick(32, 64, 256)))}"
    )


def mixed(chars: str, n: int) -> str:
    """Random characters of `chars` with digits, capitals and small letters among them."""
    least = min(3, n // 4)
    while True:
        value = rand(chars, n)
        if (
            sum(c.isdigit() for c in value) >= least
            and sum(c.isupper() for c in value) >= least
            and sum(c.islower() for c in value) >= least
        ):
            return value


def aws_key_id() -> str:
    return pick("AKIA", "AKIA", "ASIA") + rand(string.ascii_uppercase + "234567", 16)


def aws_secret() -> str:
    return mixed(ALNUM + "+/", 40)


def azure_account_key() -> str:
    return base64.b64encode(R.randbytes(64)).decode()


def sas_sig() -> str:
    return urllib.parse.quote(base64.b64encode(R.randbytes(32)).decode(), safe="")


PROVIDERS = {
    "aws": aws_key_id,
    "github_classic": lambda: "ghp_" + mixed(ALNUM, 36),
    "github_oauth": lambda: "gho_" + mixed(ALNUM, 36),
    "github_app": lambda: pick("ghs_", "ghu_") + mixed(ALNUM, 36),
    "github_pat": lambda: "github_pat_" + mixed(ALNUM, 22) + "_" + mixed(ALNUM, 59),
    "gitlab": lambda: "glpat-" + mixed(ALNUM + "_-", 20),
    "slack_bot": lambda: (
        f"xoxb-{R.randint(10**10, 10**12)}-{R.randint(10**10, 10**12)}-" + mixed(ALNUM, 24)
    ),  # fmt: skip
    "slack_user": lambda: (
        f"xoxp-{R.randint(10**10, 10**12)}-{R.randint(10**10, 10**12)}-{R.randint(10**10, 10**12)}-"
        + rand(HEX, 32)
    ),  # fmt: skip
    "slack_app": lambda: (
        f"xapp-1-A{rand(string.ascii_uppercase + string.digits, 10)}-{R.randint(10**12, 10**13)}-"
        + rand(HEX, 64)
    ),  # fmt: skip
    "stripe_secret": lambda: "sk_live_" + mixed(ALNUM, pick(24, 99)),
    "stripe_restricted": lambda: "rk_live_" + mixed(ALNUM, pick(24, 99)),
    "openai_legacy": lambda: "sk-" + mixed(ALNUM, 20) + "T3BlbkFJ" + mixed(ALNUM, 20),
    "openai_proj": lambda: (
        "sk-proj-" + mixed(ALNUM + "_-", 74) + "T3BlbkFJ" + mixed(ALNUM + "_-", 74)
    ),  # fmt: skip
    "openai_svc": lambda: (
        "sk-svcacct-" + mixed(ALNUM + "_-", 74) + "T3BlbkFJ" + mixed(ALNUM + "_-", 74)
    ),  # fmt: skip
    "anthropic": lambda: "sk-ant-api03-" + mixed(ALNUM + "_-", 93) + "AA",
    "google": lambda: "AIza" + mixed(ALNUM + "_-", 35),
    "twilio_key": lambda: "SK" + rand(HEX, 32),
    "twilio_account": lambda: "AC" + rand(HEX, 32),
    "sendgrid": lambda: "SG." + mixed(ALNUM + "_-", 22) + "." + mixed(ALNUM + "_-", 43),
    "npm": lambda: "npm_" + mixed(ALNUM, 36),
    "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + mixed(ALNUM + "_-", 120),
    "huggingface": lambda: "hf_" + mixed(ALNUM, 34),
}


def provider_key(kind: str | None = None) -> str:
    return PROVIDERS[kind or R.choice(list(PROVIDERS))]()


def token(n: int | None = None) -> str:
    return mixed(ALNUM + pick("", "", "-_"), n or pick(24, 32, 40, 48, 64))


def hex_token(n: int = 32) -> str:
    return rand(HEX, n)


def password() -> str:
    return pick(
        mixed(ALNUM, 10) + pick("!", "#", "%", "*", "?") + str(R.randint(10, 99)),
        R.choice(GIVEN).replace("ë", "e")
        + pick("-", "_", ".", "!")
        + mixed(ALNUM, 7)
        + str(R.randint(0, 9)),  # fmt: skip
        mixed(ALNUM + "!#%*^~", R.randint(14, 22)),
        mixed(ALNUM, R.randint(16, 28)),
    )


def url_password() -> str:
    """A password as written in a URL (reserved characters left out)."""
    return pick(mixed(ALNUM, R.randint(12, 24)), mixed(ALNUM, 8) + pick("-", "_", "~", ".") + mixed(ALNUM, 6),
                mixed(ALNUM, 9) + "%21" + str(R.randint(10, 99)))  # fmt: skip


def pem(kind: str | None = None, indent: str = "") -> str:
    kind = kind or pick("RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY (encrypted)", "DSA PRIVATE KEY")  # fmt: skip
    headers = ""
    if kind == "RSA PRIVATE KEY (encrypted)":
        kind = "RSA PRIVATE KEY"
        headers = f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,{rand(HEX, 32).upper()}\n\n"
    prefix = {"OPENSSH PRIVATE KEY": b"openssh-key-v1\x00\x00\x00\x00", "PRIVATE KEY": b"0\x82\x04\xbd\x02\x01\x000\r\x06\t*",
              "EC PRIVATE KEY": b"0w\x02\x01\x01\x04 "}.get(kind, b"0\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01")  # fmt: skip
    body = base64.b64encode(prefix + R.randbytes(pick(120, 240, 400))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    block = f"-----BEGIN {kind}-----\n{headers}{lines}\n-----END {kind}-----"
    return block.replace("\n", "\n" + indent) if indent else block


# --- hard negatives ---------------------------------------------------------------------------


def sha(n: int = 40) -> str:
    return hashlib.sha256(R.randbytes(16)).hexdigest()[:n]


def date() -> str:
    y, m, d = R.randint(2019, 2026), R.randint(1, 12), R.randint(1, 28)
    return pick(f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m}/{d}/{y}", f"{d:02d}/{m:02d}/{y}", f"{y}{m:02d}{d:02d}")  # fmt: skip


def timestamp() -> str:
    y, m, d = R.randint(2023, 2026), R.randint(1, 12), R.randint(1, 28)
    h, mi, s = R.randint(0, 23), R.randint(0, 59), R.randint(0, 59)
    return pick(f"{y}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z", f"{y}-{m:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}",
                str(R.randint(1_650_000_000, 1_790_000_000)), str(R.randint(1_650_000_000_000, 1_790_000_000_000)),
                f"{d:02d}/{m:02d}/{y} {h:02d}:{mi:02d}")  # fmt: skip


def price() -> str:
    w = R.randint(1, 99999)
    return pick(f"${w:,}.{R.randint(0, 99):02d}", f"{w:,}".replace(",", ".") + f",{R.randint(0, 99):02d} €",
                f"£{w:,}.{R.randint(0, 99):02d}", f"{w} SEK", f"R$ {w:,}".replace(",", ".") + ",00", f"₹{w:,}")  # fmt: skip


def isbn13() -> str:
    body = "978" + rand(string.digits, 9)
    value = body + ean.calc_check_digit(body)
    assert isbn.is_valid(value)
    return pick(value, f"{value[:3]}-{value[3]}-{value[4:7]}-{value[7:12]}-{value[12]}")


def version() -> str:
    return pick(f"v{R.randint(1, 20)}.{R.randint(0, 40)}.{R.randint(0, 300)}", f"{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(1000, 9999)}",
                f"10.0.{R.randint(19041, 22631)}.{R.randint(1000, 4000)}", f"build {R.randint(2019, 2026)}.{R.randint(1, 12)}.{R.randint(100, 999)}")  # fmt: skip


def number_negative() -> str:
    """Digit runs that are neither phone, SSN nor card."""
    return R.choice([
        lambda: f"order #{R.randint(10**6, 10**9)}",
        lambda: f"invoice INV-{R.randint(2023, 2026)}-{R.randint(10000, 99999)}",
        lambda: f"tracking number {R.randint(10**11, 10**12)}",
        lambda: f"ticket {R.randint(100000, 999999)}",
        lambda: f"ISBN {isbn13()}",
        lambda: f"card ending {card_negative()}",
        lambda: f"ref {card_negative()}",
        lambda: f"EIN {R.randint(10, 99)}-{R.randint(1000000, 9999999)}",
        lambda: f"ITIN {bad_ssn()}",
        lambda: f"ZIP {R.randint(10000, 99999)}-{R.randint(1000, 9999)}",
        lambda: f"postcode {R.randint(1000, 9999)} {rand(string.ascii_uppercase, 2)}",
        lambda: f"PLZ {R.randint(10000, 99999)}",
        lambda: date(), lambda: timestamp(), lambda: price(), lambda: version(),
        lambda: f"build {R.randint(10**5, 10**8)}",
        lambda: f"{R.randint(100, 999)} {R.randint(100, 999)} {R.randint(1000, 9999)} tokens",
        lambda: f"{R.randint(1, 9)},{R.randint(100, 999)},{R.randint(100, 999)} requests",
        lambda: f"policy no. {R.randint(10**8, 10**10)}",
        lambda: f"account {R.randint(10**7, 10**10)}",
        lambda: f"case {R.randint(2020, 2026)}-{R.randint(100000, 999999)}",
    ])()  # fmt: skip


def secret_negative() -> str:
    """Random-looking or secret-looking text that is no secret."""
    return R.choice([
        lambda: str(uuid.UUID(int=R.getrandbits(128), version=4)),
        lambda: sha(40), lambda: sha(64), lambda: "sha256:" + sha(64),
        lambda: f"commit {sha(pick(7, 12, 40))}",
        lambda: "sha512-" + base64.b64encode(R.randbytes(64)).decode(),
        lambda: pick("sk-...", "sk-xxxxxxxxxxxxxxxxxxxxxxxx", "<your-api-key>", "${API_KEY}", "YOUR_API_KEY_HERE",
                     "AKIAIOSFODNN7EXAMPLE", "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "{{ secrets.NPM_TOKEN }}",
                     "sk_live_...", "xoxb-your-token", "<PASSWORD>", "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        lambda: "pk_live_" + rand(ALNUM, 24),
        lambda: f"req_{rand(ALNUM, 14)}", lambda: f"cus_{rand(ALNUM, 14)}",
        lambda: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(R.randbytes(24)).decode().rstrip("=") + " ci@build",
        lambda: f"https://github.com/acme/api/actions/runs/{R.randint(10**9, 10**10)}",
        lambda: f"ami-{rand(HEX, 17)}", lambda: f"i-{rand(HEX, 17)}",
        lambda: "arn:aws:iam::" + str(R.randint(10**11, 10**12 - 1)) + ":role/deploy",
        lambda: f"etag W/\"{rand(HEX, 32)}\"",
    ])()  # fmt: skip


# --- text -------------------------------------------------------------------------------------

PROSE = {
    "en": ["Can you clean this up before I forward it?", "Please summarise the thread below.",
           "Translate this into plain English for the customer.", "What's wrong with this config?",
           "Draft a polite reply to this message."],
    "de": ["Kannst du das zusammenfassen?", "Bitte formuliere eine Antwort an den Kunden.",
           "Was ist an dieser Konfiguration falsch?"],
    "fr": ["Peux-tu résumer ce message ?", "Merci de rédiger une réponse au client."],
    "es": ["¿Puedes resumir este mensaje?", "Redacta una respuesta amable al cliente."],
    "it": ["Puoi riassumere questo messaggio?", "Scrivi una risposta al cliente."],
    "nl": ["Kun je dit samenvatten?", "Schrijf een vriendelijk antwoord aan de klant."],
    "pt": ["Pode resumir esta mensagem?", "Escreva uma resposta ao cliente."],
    "pl": ["Czy możesz to streścić?", "Napisz odpowiedź do klienta."],
    "sv": ["Kan du sammanfatta det här?", "Skriv ett svar till kunden."],
    "no": ["Kan du oppsummere dette?", "Skriv et svar til kunden."],
    "da": ["Kan du opsummere dette?", "Skriv et svar til kunden."],
    "ja": ["この内容を要約してください。", "お客様への返信を書いてください。"],
    "ko": ["이 내용을 요약해 주세요.", "고객에게 보낼 답장을 작성해 주세요."],
    "zh": ["请总结以下内容。", "请给客户写一封回复。"],
}  # fmt: skip
LANGS = list(PROSE)
PHONE_SENTENCE = {
    "en": ["You can reach me on {p}.", "Call me at {p} after 5pm.", "My cell is {p}", "Text me at {p}!",
           "Please ring {p} if it's urgent.", "My number is {p}.", "WhatsApp: {p}", "Best number to reach me: {p}",
           "Our hotline ({p}) is open 24/7.", "Phone {p}; fax {f}.", "Contact number - {p}"],
    "de": ["Sie erreichen mich unter {p}.", "Rufen Sie mich bitte unter {p} zurück.", "Meine Handynummer: {p}",
           "Tel.: {p}, Fax: {f}", "Telefonisch bin ich unter {p} erreichbar."],
    "fr": ["Vous pouvez me joindre au {p}.", "Mon portable : {p}", "Appelez-moi au {p} demain.", "Tél. {p} / Fax {f}"],
    "es": ["Puedes llamarme al {p}.", "Mi móvil es {p}", "Teléfono de contacto: {p}.", "Escríbeme por WhatsApp al {p}"],
    "it": ["Puoi chiamarmi al {p}.", "Il mio cellulare è {p}", "Telefono: {p} (ufficio)"],
    "nl": ["Je kunt me bereiken op {p}.", "Bel me op {p}", "Mijn mobiele nummer is {p}."],
    "pt": ["Pode me ligar no {p}.", "Meu celular: {p}", "Telefone para contato: {p}."],
    "pl": ["Proszę dzwonić pod numer {p}.", "Mój numer telefonu: {p}", "Tel. kom. {p}"],
    "sv": ["Du når mig på {p}.", "Ring mig på {p}", "Mitt mobilnummer är {p}."],
    "no": ["Du kan nå meg på {p}.", "Ring meg på {p}", "Mobilnummeret mitt er {p}."],
    "da": ["Du kan fange mig på {p}.", "Ring til mig på {p}", "Mit mobilnummer er {p}."],
    "ja": ["電話番号は{p}です。", "携帯：{p}", "連絡先 {p} までお電話ください。"],
    "ko": ["제 전화번호는 {p}입니다.", "연락처: {p}", "휴대폰 {p}로 연락 주세요."],
    "zh": ["我的电话是{p}。", "手机：{p}", "联系电话 {p}"],
}  # fmt: skip


def prose(lang: str, n: int = 1) -> str:
    return " ".join(R.choice(PROSE[lang]) for _ in range(n))


def add_template(d: Doc, template: str, values: dict[str, tuple[str, str] | str]) -> Doc:
    """Add a template whose `{name}` fields are values (labelled when given as tuples)."""
    rest = template
    while "{" in rest:
        head, tail = rest.split("{", 1)
        name, rest = tail.split("}", 1)
        d.add(head, values[name])
    return d.add(rest)


# --- record kinds: phones ---------------------------------------------------------------------


def phone_sentence(lang: str) -> Doc:
    d = Doc().add(prose(lang), "\n\n")
    region = region_for(lang)
    template = R.choice(PHONE_SENTENCE[lang])
    values = {"p": (phone(region), "PHONE"), "f": (phone(region, "national" if region in TRUNK_ZERO else None), "PHONE")}  # fmt: skip
    add_template(d, template, values)
    d.add(
        pick("\n", " ", "\n\n"),
        pick(f"({number_negative()})", f"Ref: {number_negative()}", ""),
        "\n",
    )
    return d


def phone_signature(lang: str) -> Doc:
    region = region_for(lang)
    d = Doc().add(prose(lang), "\n\n", pick("Best regards", "Kind regards", "Mit freundlichen Grüßen", "Cordialement",
                                            "Saludos", "Met vriendelijke groet", "Med vänliga hälsningar", "Atenciosamente", "--"), "\n")  # fmt: skip
    d.add(
        person(),
        "\n",
        pick("Account Manager", "Head of Operations", "Customer Success", "CTO"),
        " | Example Ltd\n",
    )
    lines = R.sample(
        [("T", "office"), ("M", "mobile"), ("F", "fax"), ("D", "direct")], R.randint(1, 3)
    )
    for letter, what in lines:
        label = pick(
            f"{letter}: ",
            f"{letter} ",
            f"{what.title()}: ",
            f"{what.title()} ",
            "☎ ",
            "📞 ",
            f"{letter}. ",
        )
        value = phone(region if what != "mobile" or R.random() < 0.7 else R.choice(REGIONS))
        d.add(label, (value, "PHONE"))
        if what in ("office", "direct") and R.random() < 0.3:
            d.add(extension())
        d.add(pick("\n", " | ", "\n"))
    if R.random() < 0.5:
        d.add((email(), "EMAIL"), " | www.example.com\n")
    d.add(pick(f"Company reg. {R.randint(10**6, 10**8)} · VAT {rand(string.ascii_uppercase, 2)}{R.randint(10**8, 10**9)}",
               f"Registered office: {R.randint(1, 200)} Example Road, {pick('SW1A 1AA', '10115 Berlin', '75008 Paris')}",
               "This e-mail is confidential."), "\n")  # fmt: skip
    if R.random() < 0.25:
        d.add("Bank details: IBAN ", (iban(), "IBAN"), "\n")
    return d


def phone_vcard(lang: str) -> Doc:
    region = region_for(lang)
    d = Doc().add(
        pick("Import this contact:", "Why won't my phone read this vCard?"),
        "\n\nBEGIN:VCARD\nVERSION:3.0\n",
    )
    d.add(f"FN:{person()}\nORG:Example Ltd\n")
    for t in R.sample(["CELL", "WORK", "HOME", "FAX"], R.randint(1, 3)):
        d.add(pick(f"TEL;TYPE={t}:", f"TEL;TYPE={t},VOICE:", f"item1.TEL;type={t.lower()}:"), (phone(region, pick("intl", "e164", None)), "PHONE"), "\n")  # fmt: skip
    d.add(f"REV:{timestamp()}\nUID:{uuid.uuid4()}\nEND:VCARD\n")
    return d


def phone_csv(lang: str) -> Doc:
    sep = pick(",", ";", "\t", ",")
    phone_col = pick("phone", "Phone", "mobile", "Telefon", "téléphone", "telefono", "Tel", "phone_number", "MobilePhone", "Handynummer", "contact_no", "celular")  # fmt: skip
    header = ["id", "name", phone_col, "city", "created", "orders", "total"]
    d = Doc().add(
        pick(
            "Dedupe these contacts:",
            "Here is the CRM export:",
            "Normalise the phone column to E.164:",
        ),
        "\n\n",
    )
    d.add(sep.join(header), "\n")
    for _ in range(R.randint(3, 7)):
        region = R.choice(REGIONS) if R.random() < 0.5 else region_for(lang)
        value = phone(region)
        quoted = sep == "," and R.random() < 0.4
        d.add(
            f"{R.randint(1000, 99999)}{sep}{person()}{sep}",
            '"' if quoted else "",
            (value, "PHONE"),
            '"' if quoted else "",
        )
        d.add(f"{sep}{pick('Lisbon', 'Oslo', 'Toronto', 'Osaka', 'Cape Town', 'Pune')}{sep}{date()}{sep}{R.randint(0, 300)}{sep}{R.randint(1, 9999)}.{R.randint(0, 99):02d}\n")  # fmt: skip
    return d


def phone_md_table(lang: str) -> Doc:
    d = Doc().add(
        pick("On-call rota for next week:", "Store directory:", "Escalation contacts"), "\n\n"
    )
    col = pick("Phone", "Mobile", "Tel.", "Contact", "Telefon", "Número")
    d.add(f"| Name | Role | {col} | Since |\n|---|---|---|---|\n")
    for _ in range(R.randint(2, 6)):
        d.add(f"| {person()} | {pick('SRE', 'Manager', 'Support', 'DBA')} | ", (phone(R.choice(REGIONS)), "PHONE"), f" | {date()} |\n")  # fmt: skip
    d.add(f"\nLast updated {timestamp()}, rota id {R.randint(10**5, 10**7)}.\n")
    return d


def phone_json(lang: str) -> Doc:
    region = region_for(lang)
    key = pick(
        "phone",
        "phoneNumber",
        "mobile",
        "telephone",
        "contact_phone",
        "tel",
        "msisdn",
        "cell",
        "whatsapp",
    )
    d = Doc().add(
        pick("Why does the API reject this payload?", "Map this to our schema:"), "\n```json\n{\n"
    )
    d.add(f'  "id": "{uuid.uuid4()}",\n  "name": "{person()}",\n')
    d.add(f'  "{key}": "', (phone(region, pick("e164", "intl", None)), "PHONE"), '",\n')
    if R.random() < 0.5:
        d.add('  "phones": [{"type": "work", "number": "', (phone(region), "PHONE"), '"}],\n')
    d.add(f'  "order_id": {R.randint(10**6, 10**10)},\n  "created_at": "{timestamp()}",\n  "amount": "{price()}"\n}}\n```\n')  # fmt: skip
    return d


def phone_chat(lang: str) -> Doc:
    d = Doc()
    for _ in range(R.randint(3, 6)):
        t = f"[{R.randint(8, 20):02d}:{R.randint(0, 59):02d}]"
        who = pick(R.choice(GIVEN), "customer", "agent")
        roll = R.random()
        d.add(f"{t} {who}: ")
        if roll < 0.35:
            region = region_for(lang)
            add_template(
                d,
                R.choice(PHONE_SENTENCE[lang]),
                {"p": (phone(region), "PHONE"), "f": (phone(region), "PHONE")},
            )
        elif roll < 0.5:
            d.add(pick("sure, it's ", "ok: ", "yes -> ", "it's "), (phone(region_for(lang), pick("intl", "e164", "00")), "PHONE"))  # fmt: skip
        else:
            d.add(prose(lang), " ", number_negative())
        d.add("\n")
    return d


def phone_transcript(lang: str) -> Doc:
    region = region_for("en")
    d = Doc().add(
        f"Call transcript (ticket {R.randint(10**6, 10**8)}, {timestamp()}), summarise it:\n\n"
    )
    d.add(
        "Agent: Thank you for calling, how can I help?\nCaller: Hi, my parcel never arrived, tracking ",
        f"{R.randint(10**11, 10**12)}.\n",
    )
    d.add("Agent: Sorry to hear that. What's the best callback number?\nCaller: ")
    d.add(pick("It's ", "Sure, ", "Yeah, ", ""), (phone(region), "PHONE"), pick(".", ", thanks.", "", " — that's my mobile."), "\n")  # fmt: skip
    if R.random() < 0.5:
        d.add("Agent: And an alternative number?\nCaller: My work phone, ", (phone(region), "PHONE"), extension() if R.random() < 0.5 else "", ".\n")  # fmt: skip
    d.add(
        f"Agent: Thanks. I've opened case {R.randint(10**5, 10**7)}; the refund of {price()} takes 5-7 days.\n"
    )
    return d


def phone_links(lang: str) -> Doc:
    region = region_for(lang)
    d = Doc().add(
        pick("Fix the markup of our contact page:", "The tel: links don't work on iOS:"), "\n\n"
    )
    number = phone(region, "e164")
    shown = phone(region, pick("intl", "national"))
    d.add('<a href="tel:', (number, "PHONE"), '">', (shown, "PHONE"), "</a>\n")
    if R.random() < 0.6:
        d.add("[Call us](tel:", (phone(region, "e164"), "PHONE"), ") or WhatsApp https://wa.me/", (phone(region, "e164")[1:], "PHONE"), "\n")  # fmt: skip
    d.add(
        f'<img src="/img/hero-{rand(HEX, 8)}.webp" width="{R.randint(300, 1920)}" data-build="{R.randint(10**6, 10**9)}">\n'
    )
    return d


def phone_directory(lang: str) -> Doc:
    d = Doc().add(
        pick("Office directory", "Switchboard and extensions", "Standorte / Locations"), "\n\n"
    )
    for _ in range(R.randint(2, 5)):
        region = R.choice(REGIONS)
        d.add(f"{pick('London', 'Berlin', 'Madrid', 'Zürich', 'Warszawa', 'São Paulo', 'Tokyo', 'Seoul', 'Sydney', 'Mumbai', 'Mexico City')} office",
              pick(": ", " - ", " — ", "\t"), (phone(region), "PHONE"))  # fmt: skip
        if R.random() < 0.4:
            d.add(extension())
        d.add(pick("\n", ";\n", ".\n"))
    d.add(f"Opening hours 09:00-17:30, closed {date()}.\n")
    return d


# --- record kinds: SSNs -----------------------------------------------------------------------

SSN_LABELS = ["SSN: ", "SSN ", "SSN#: ", "SSN No. ", "Social Security Number: ", "Social Security #: ",
              "Social Security No.: ", "social security number ", "Soc. Sec. No. ", "SS#", "S.S.N. ",
              "SSN (xxx-xx-xxxx): ", "Taxpayer ID (SSN): ", "TIN/SSN: ", "SSN/TIN: ", "Employee SSN: ",
              "Member SSN: ", "Subscriber SSN: ", "Insured's SSN: ", "Patient SSN: ", "Dependent SSN: ",
              "Social Security Number (SSN): ", "Your social security number\n", "SSN:\t",
              "Número de Seguro Social: ", "número de seguro social ", "numéro de sécurité sociale (US) : ",
              "US-Sozialversicherungsnummer: ", "Sozialversicherungsnummer (SSN): ", "社会保障番号: ",
              "numero di previdenza sociale: ", "SSN (US): ", "Social Security: ", "soc sec # "]  # fmt: skip


def ssn_form(lang: str) -> Doc:
    d = Doc().add(pick("Check this onboarding form for errors:", "Is this W-4 filled in correctly?",
                       "Extract the fields from this insurance claim:", "Summarise the application below."), "\n\n")  # fmt: skip
    d.add(
        f"Name: {person()}\nDate of birth: {R.randint(1, 12):02d}/{R.randint(1, 28):02d}/{R.randint(1950, 2004)}\n"
    )
    d.add(R.choice(SSN_LABELS), (ssn(), "SSN"), "\n")
    if R.random() < 0.4:
        d.add(
            pick("Spouse's SSN: ", "Dependent 1 SSN: ", "Co-applicant SSN: "), (ssn(), "SSN"), "\n"
        )
    d.add(f"Employer EIN: {R.randint(10, 99)}-{R.randint(1000000, 9999999)}\n")
    d.add(pick("Phone: ", "Home phone: ", "Daytime phone: "), (phone("US"), "PHONE"), "\n")
    d.add(
        f"ZIP: {R.randint(10000, 99999)}-{R.randint(1000, 9999)}\nPolicy no. {R.randint(10**8, 10**10)}\n"
    )
    if R.random() < 0.4:
        d.add(f"ITIN (spouse, not an SSN): {bad_ssn()}\n")
    if R.random() < 0.3:
        d.add(
            "Card on file: ",
            (card(), "CARD"),
            f" exp. {R.randint(1, 12):02d}/{R.randint(27, 31)}\n",
        )
    return d


def ssn_table(lang: str) -> Doc:
    style = pick("csv", "tsv", "md", "fixed", "semi")
    col = pick("SSN", "ssn", "Social Security Number", "SS#", "social_security_number", "EmployeeSSN", "Tax ID (SSN)", "SSN/TIN")  # fmt: skip
    d = Doc().add(
        pick(
            "Payroll import rejected these rows:",
            "Benefits enrolment file:",
            "W-2 corrections needed:",
        ),
        "\n\n",
    )
    sep = {"csv": ",", "tsv": "\t", "semi": ";", "md": " | ", "fixed": ""}[style]
    cols = ["emp_id", "name", col, "hire_date", "salary"]
    if style == "md":
        d.add("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
    elif style == "fixed":
        d.add(f"{'EMP':<8}{'NAME':<22}{col:<24}{'HIRED':<12}SALARY\n")
    else:
        d.add(sep.join(cols), "\n")
    for _ in range(R.randint(3, 7)):
        value = ssn(pick("dash", "plain", "space", "dash", "dot"))
        emp, name, hired, salary = (
            f"E{R.randint(10000, 99999)}",
            person(),
            date(),
            str(R.randint(38000, 190000)),
        )
        if style == "md":
            d.add(f"| {emp} | {name} | ", (value, "SSN"), f" | {hired} | {salary} |\n")
        elif style == "fixed":
            d.add(
                f"{emp:<8}{name:<22}",
                (value, "SSN"),
                " " * (24 - len(value)),
                f"{hired:<12}{salary}\n",
            )
        else:
            d.add(f"{emp}{sep}{name}{sep}", (value, "SSN"), f"{sep}{hired}{sep}{salary}\n")
    return d


def ssn_json(lang: str) -> Doc:
    key = pick("ssn", "SSN", "social_security_number", "socialSecurityNumber", "taxpayer_id", "taxpayerId",
               "employee_ssn", "ssn_full", "SocialSecurityNo", "tin")  # fmt: skip
    d = Doc().add(pick("The HR API returns this; write a pydantic model:", "Mask the sensitive fields in:"), "\n```json\n")  # fmt: skip
    d.add(f'{{\n  "employee_id": "E{R.randint(10000, 99999)}",\n  "name": "{person()}",\n')
    value = ssn(pick("dash", "plain", "plain", "space"))
    d.add(f'  "{key}": "', (value, "SSN"), '",\n')
    d.add(
        f'  "ein": "{R.randint(10, 99)}-{R.randint(1000000, 9999999)}",\n  "zip": "{R.randint(10000, 99999)}",\n'
    )
    if R.random() < 0.5:
        d.add(
            f'  "dependents": [{{"name": "{person()}", "{pick("ssn", "SSN", "dependent_ssn")}": "',
            (ssn(), "SSN"),
            '"}],\n',
        )
    d.add(f'  "updated": "{timestamp()}",\n  "salary": {R.randint(30000, 200000)}\n}}\n```\n')
    return d


def ssn_prose(lang: str) -> Doc:
    d = Doc().add(
        pick("Rewrite this note for the file:", "Summarise:", "Please draft the letter."), "\n\n"
    )
    value = ssn()
    template = R.choice([
        "The employee ({n}) listed SSN {s} on the I-9, but the W-2 shows a typo.",
        "Per our call, the claimant's social security number is {s} and the claim number is {c}.",
        "My SSN is {s} — please update my tax records before {dt}.",
        "Hi, I was asked for my social security # for the background check: {s}.",
        "Beneficiary: {n} (SSN {s}), share 50%.",
        "The 1099 was issued to taxpayer id '{s}', not to our EIN {e}.",
        "Patient {n}, DOB {dt}, SS# {s}, Medicare plan {c}.",
        "The IRS letter (CP2000, {dt}) refers to SSN \"{s}\".",
        "Payroll: update direct deposit for {n}, social {s}.",
        "Her Social Security number, {s}, was entered twice.",
    ])  # fmt: skip
    add_template(d, template, {"n": person(), "s": (value, "SSN"), "c": f"{R.randint(10**7, 10**9)}",
                               "dt": date(), "e": f"{R.randint(10, 99)}-{R.randint(1000000, 9999999)}"})  # fmt: skip
    d.add("\n", pick(f"Note: the ITIN {bad_ssn()} belongs to the spouse.", f"({number_negative()})", f"Claim {R.randint(10**6, 10**8)}."), "\n")  # fmt: skip
    return d


def ssn_multi(lang: str) -> Doc:
    d = Doc().add(
        pick("These SSNs failed verification: ", "Duplicate SSNs found: ", "SSNs to re-check -> ")
    )
    style = pick("dash", "plain", "space")
    sep = pick(", ", "; ", " / ", " and ")
    for i in range(R.randint(2, 4)):
        if i:
            d.add(sep)
        d.add((ssn(style), "SSN"))
    d.add(pick(".", "", "\n"), f"\nBatch {R.randint(10**5, 10**7)}, run {timestamp()}.\n")
    return d


def ssn_intl(lang: str) -> Doc:
    lang = pick("es", "fr", "de", "pt", "it", "ja", "zh", "ko")
    label = {"es": pick("Número de Seguro Social (EE. UU.): ", "mi número de seguro social es ", "NSS de EE.UU.: "),
             "fr": pick("Numéro de sécurité sociale américain : ", "son SSN est le "),
             "de": pick("Seine US-Sozialversicherungsnummer lautet ", "Social Security Number (USA): "),
             "pt": pick("Número do Social Security (EUA): ", "número de seguro social americano: "),
             "it": pick("Numero di previdenza sociale USA: ", "il suo SSN è "),
             "ja": pick("米国社会保障番号：", "ソーシャルセキュリティ番号（SSN）: "),
             "zh": pick("美国社会安全号码：", "社会安全号 "),
             "ko": pick("미국 사회보장번호(SSN): ", "SSN: ")}[lang]  # fmt: skip
    d = Doc().add(prose(lang), "\n", label, (ssn(pick("dash", "plain", "space")), "SSN"), "\n")
    d.add(f"{number_negative()}\n")
    return d


# --- record kinds: secrets --------------------------------------------------------------------


def secret_env(lang: str) -> Doc:
    d = Doc().add(
        pick(
            "My .env, the app can't connect:",
            ".env.production (staging copy):",
            "docker run --env-file with:",
        ),
        "\n\n",
    )
    d.add(f"NODE_ENV=production\nPORT={R.randint(3000, 9000)}\nAPP_VERSION={version()}\n")
    for _ in range(R.randint(2, 4)):
        roll = R.randint(0, 9)
        if roll == 0:
            d.add(
                "AWS_ACCESS_KEY_ID=",
                (aws_key_id(), "SECRET"),
                "\nAWS_SECRET_ACCESS_KEY=",
                (aws_secret(), "SECRET"),
                "\n",
            )
        elif roll == 1:
            d.add(pick("OPENAI_API_KEY=", "ANTHROPIC_API_KEY=", "STRIPE_SECRET_KEY=", "GITHUB_TOKEN=", "HF_TOKEN=", "SENDGRID_API_KEY="),
                  (provider_key(), "SECRET"), "\n")  # fmt: skip
        elif roll == 2:
            d.add(
                pick("DB_PASSWORD=", "POSTGRES_PASSWORD=", "MYSQL_ROOT_PASSWORD=", "REDIS_PASS="),
                (password(), "SECRET"),
                "\n",
            )
        elif roll == 3:
            d.add(pick("JWT_SECRET=", "SESSION_SECRET=", "APP_KEY=base64:", "SECRET_KEY_BASE=", "ENCRYPTION_KEY="), (token(), "SECRET"), "\n")  # fmt: skip
        elif roll == 4:
            d.add("DATABASE_URL=", pick("postgres", "postgresql", "mysql"), f"://{pick('app', 'admin', 'svc_api')}:", (url_password(), "SECRET"),
                  f"@{pick('db', 'localhost', 'db.internal.example.com')}:{pick(5432, 3306)}/{pick('app', 'shop')}\n")  # fmt: skip
        elif roll == 5:
            d.add("TWILIO_ACCOUNT_SID=", (provider_key("twilio_account"), "SECRET"), "\nTWILIO_AUTH_TOKEN=", (hex_token(32), "SECRET"), "\n")  # fmt: skip
        elif roll == 6:
            d.add('WEBHOOK_SECRET="', (token(), "SECRET"), '"\n')
        elif roll == 7:
            d.add(
                "SLACK_BOT_TOKEN=",
                (provider_key(pick("slack_bot", "slack_user", "slack_app")), "SECRET"),
                "\n",
            )
        elif roll == 8:
            d.add(
                "REDIS_URL=redis://:",
                (url_password(), "SECRET"),
                f"@cache:6379/{R.randint(0, 9)}\n",
            )
        else:
            d.add("export API_TOKEN=", (token(), "SECRET"), "\n")
    d.add(pick(f"# OPENAI_API_KEY={pick('sk-...', '<your-api-key>', 'YOUR_KEY_HERE')}\n", "SMTP_PASSWORD=changeme\n", "ADMIN_PASSWORD=${ADMIN_PASSWORD}\n",
               f"SENTRY_RELEASE={sha(40)}\n", "API_KEY=<your-api-key>\n", "DB_PASSWORD=\n"))  # fmt: skip
    d.add(f"BUILD_ID={R.randint(10**5, 10**8)}\nTRACE_ID={uuid.uuid4()}\n")
    return d


def secret_yaml(lang: str) -> Doc:
    kind = pick("compose", "k8s_secret", "k8s_env", "app", "gha")
    if kind == "compose":
        d = Doc().add(
            "docker-compose.yml, postgres keeps restarting:\n\n```yaml\nservices:\n  db:\n    image: postgres:16\n    environment:\n"
        )
        if R.random() < 0.5:
            d.add(
                "      - POSTGRES_USER=app\n      - POSTGRES_PASSWORD=",
                (password(), "SECRET"),
                "\n",
            )
        else:
            d.add(
                "      POSTGRES_USER: app\n      POSTGRES_PASSWORD: ", (password(), "SECRET"), "\n"
            )
        d.add(
            "  api:\n    build: .\n    environment:\n      DATABASE_URL: postgres://app:",
            (url_password(), "SECRET"),
            "@db:5432/app\n",
        )
        d.add(
            f"      SENTRY_DSN: https://{rand(HEX, 32)}@o{R.randint(10**5, 10**6)}.ingest.sentry.io/{R.randint(10**6, 10**7)}\n```\n"
        )
    elif kind == "k8s_secret":
        pw = password()
        d = Doc().add(
            "Is this Secret right?\n\n```yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\n"
        )
        d.add(f"  uid: {uuid.uuid4()}\ntype: Opaque\ndata:\n  username: {base64.b64encode(b'app').decode()}\n  password: ",
              (base64.b64encode(pw.encode()).decode(), "SECRET"), "\n")  # fmt: skip
        if R.random() < 0.5:
            d.add("stringData:\n  api-token: ", (token(), "SECRET"), "\n")
        d.add("```\n")
    elif kind == "k8s_env":
        d = Doc().add(
            "Deployment snippet:\n\n```yaml\n      containers:\n        - name: api\n          image: ghcr.io/acme/api@sha256:"
            + sha(64)
            + "\n          env:\n"
        )
        d.add(
            "            - name: DB_PASSWORD\n              value: ", (password(), "SECRET"), "\n"
        )
        d.add(
            '            - name: STRIPE_API_KEY\n              value: "',
            (provider_key("stripe_secret"), "SECRET"),
            '"\n',
        )
        d.add("            - name: OTEL_SERVICE_NAME\n              value: api\n```\n")
    elif kind == "app":
        d = Doc().add("application.yml:\n\n```yaml\nspring:\n  datasource:\n    url: jdbc:postgresql://db:5432/app\n    username: app\n    password: ",
                      (password(), "SECRET"), "\n")  # fmt: skip
        d.add("oauth:\n  client-id: ", f"{R.randint(10**11, 10**12)}-{rand(string.ascii_lowercase + string.digits, 32)}.apps.googleusercontent.com",
              "\n  client-secret: ", ("GOCSPX-" + mixed(ALNUM + "_-", 28), "SECRET"), "\n")  # fmt: skip
        d.add("  api-key: ", (token(40), "SECRET"), "\n```\n")
    else:
        d = Doc().add("GitHub Actions workflow fails at login:\n\n```yaml\n    steps:\n      - uses: docker/login-action@v3\n        with:\n          username: ci-bot\n          password: ",
                      (provider_key("github_classic"), "SECRET"), "\n")  # fmt: skip
        d.add(
            "      - run: npm publish\n        env:\n          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}\n```\n"
        )
    return d


def secret_config(lang: str) -> Doc:
    kind = pick("json", "toml", "ini", "xml", "aws", "npmrc", "pypirc", "netrc", "props")
    d = Doc()
    if kind == "json":
        d.add(
            "config.json, the client throws 401:\n\n{\n",
            f'  "endpoint": "https://api.example.com/v{R.randint(1, 3)}",\n',
        )
        d.add(
            f'  "{pick("apiKey", "api_key", "x-api-key", "accessToken", "clientSecret", "auth_token")}": "',
            (token(), "SECRET"),
            '",\n',
        )
        d.add(
            '  "db": {"host": "db", "user": "app", "password": "', (password(), "SECRET"), '"},\n'
        )
        d.add(
            f'  "request_id": "{uuid.uuid4()}",\n  "cache_key": "{sha(32)}",\n  "retries": {R.randint(1, 9)}\n}}\n'
        )
    elif kind == "toml":
        d.add(
            'pyproject / settings.toml:\n\n[database]\nhost = "db"\nuser = "app"\npassword = "',
            (password(), "SECRET"),
            '"\n',
        )
        d.add(
            '\n[api]\ntoken = "',
            (token(), "SECRET"),
            f'"\ntimeout = {R.randint(1, 60)}\nversion = "{version()}"\n',
        )
    elif kind == "ini":
        d.add("my.cnf / app.ini:\n\n[client]\nuser=root\npassword=", (password(), "SECRET"), "\nport=3306\n\n[mail]\nsmtp_user = alerts\nsmtp_password = ",
              (password(), "SECRET"), "\n")  # fmt: skip
    elif kind == "xml":
        d.add("web.config / settings.xml:\n\n<configuration>\n  <connectionStrings>\n    <add name=\"Main\" connectionString=\"Server=db;Database=app;User Id=sa;Password=",
              (password().replace("&", "").replace('"', ""), "SECRET"), ";\" />\n  </connectionStrings>\n")  # fmt: skip
        d.add('  <appSettings>\n    <add key="ApiKey" value="', (token(), "SECRET"), '" />\n')
        d.add(
            f'    <add key="BuildNumber" value="{R.randint(10**5, 10**8)}" />\n  </appSettings>\n'
        )
        d.add("  <server><id>nexus</id><username>deploy</username><password>", (password().replace("<", "").replace("&", ""), "SECRET"), "</password></server>\n</configuration>\n")  # fmt: skip
    elif kind == "aws":
        d.add("~/.aws/credentials:\n\n[default]\naws_access_key_id = ", (aws_key_id(), "SECRET"), "\naws_secret_access_key = ", (aws_secret(), "SECRET"), "\n")  # fmt: skip
        if R.random() < 0.5:
            d.add(
                "aws_session_token = ",
                (base64.b64encode(R.randbytes(180)).decode(), "SECRET"),
                "\n",
            )
        d.add(
            f"region = {pick('eu-west-1', 'us-east-1')}\n\n[example]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        )
    elif kind == "npmrc":
        d.add(
            ".npmrc:\n\nregistry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=",
            (provider_key("npm"), "SECRET"),
            "\n",
        )
        d.add("//npm.pkg.github.com/:_authToken=${GITHUB_TOKEN}\n")
    elif kind == "pypirc":
        d.add(
            "~/.pypirc:\n\n[pypi]\nusername = __token__\npassword = ",
            (provider_key("pypi"), "SECRET"),
            "\n",
        )
    elif kind == "netrc":
        d.add(
            "~/.netrc:\n\nmachine api.example.com\n  login deploy\n  password ",
            (password().replace("#", ""), "SECRET"),
            "\n",
        )
    else:
        d.add("application.properties:\n\nspring.datasource.username=app\nspring.datasource.password=", (password(), "SECRET"),
              f"\nspring.jpa.open-in-view=false\nmanagement.server.port={R.randint(8000, 9000)}\njwt.secret=", (token(48), "SECRET"), "\n")  # fmt: skip
    return d


def secret_cli(lang: str) -> Doc:
    d = Doc().add(
        pick(
            "From my shell history, why does this fail?",
            "Turn these commands into a script:",
            "bash history:",
        ),
        "\n\n```sh\n",
    )
    for _ in range(R.randint(1, 3)):
        roll = R.randint(0, 9)
        if roll == 0:
            d.add(
                "mysql -h db.internal -u root -p",
                (password().replace("'", "").replace("!", ""), "SECRET"),
                f" shop < dump-{date()}.sql\n",
            )
        elif roll == 1:
            d.add("docker login -u ci-bot -p ", (token(), "SECRET"), " registry.example.com\n")
        elif roll == 2:
            d.add(
                'psql "postgresql://report:',
                (url_password(), "SECRET"),
                '@analytics-db:5432/analytics?sslmode=require"\n',
            )
        elif roll == 3:
            d.add(
                "curl -u admin:",
                (url_password(), "SECRET"),
                f" https://ci.example.com/job/build/{R.randint(10, 999)}/api/json\n",
            )
        elif roll == 4:
            d.add(
                "./deploy.sh --password=",
                (password().replace("'", ""), "SECRET"),
                f" --build {R.randint(100, 9999)}\n",
            )
        elif roll == 5:
            d.add("sshpass -p '", (password().replace("'", ""), "SECRET"), "' ssh deploy@bastion\n")
        elif roll == 6:
            d.add(
                "git clone https://oauth2:",
                (provider_key("gitlab"), "SECRET"),
                "@gitlab.example.com/team/app.git\n",
            )
        elif roll == 7:
            d.add(
                "export OPENAI_API_KEY=",
                (provider_key(pick("openai_proj", "openai_legacy", "openai_svc")), "SECRET"),
                "\n",
            )
        elif roll == 8:
            d.add("vault login ", ("hvs." + mixed(ALNUM, 24), "SECRET"), "\n")
        else:
            d.add(
                'mongosh "mongodb+srv://admin:',
                (url_password(), "SECRET"),
                f'@cluster0.{rand(string.ascii_lowercase + string.digits, 5)}.mongodb.net/prod"\n',
            )
    d.add(f"git checkout {sha(pick(7, 40))} && make build VERSION={version()}\n```\n")
    return d


def secret_http(lang: str) -> Doc:
    d = Doc().add(
        pick(
            "This request returns 403, why?",
            "Convert this curl to Python requests:",
            "Raw request from the proxy log:",
        ),
        "\n\n",
    )
    roll = R.randint(0, 5)
    if roll == 0:
        d.add(
            "curl https://api.example.com/v1/me -H 'Authorization: Bearer ",
            (pick(jwt(), token()), "SECRET"),
            "'\n",
        )
    elif roll == 1:
        d.add(f"GET /v2/orders/{R.randint(10**6, 10**9)} HTTP/1.1\nHost: api.example.com\nAuthorization: Basic ",
              (base64.b64encode(f"{R.choice(GIVEN).lower()}:{password()}".encode()).decode(), "SECRET"), f"\nX-Request-Id: {uuid.uuid4()}\n")  # fmt: skip
    elif roll == 2:
        d.add('curl -X POST https://api.anthropic.com/v1/messages -H "x-api-key: ', (provider_key("anthropic"), "SECRET"), '" -H "anthropic-version: 2023-06-01"\n')  # fmt: skip
    elif roll == 3:
        d.add("curl -H \"Authorization: token ", (provider_key(pick("github_classic", "github_pat", "github_oauth")), "SECRET"), "\" https://api.github.com/user\n")  # fmt: skip
    elif roll == 4:
        d.add("curl https://api.openai.com/v1/chat/completions \\\n  -H \"Content-Type: application/json\" \\\n  -H \"Authorization: Bearer ",
              (provider_key(pick("openai_proj", "openai_legacy")), "SECRET"), "\"\n")  # fmt: skip
    else:
        d.add(f"https://example.blob.core.windows.net/backups/db-{date()}.bak?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&sig=",
              (sas_sig(), "SECRET"), "\n")  # fmt: skip
    if R.random() < 0.4:
        d.add("X-Forwarded-For: ", (ipv4(), "IP"), "\n")
    d.add(f"Response: 403, trace {rand(HEX, 32)}, took {R.randint(10, 900)} ms\n")
    return d


def secret_azure(lang: str) -> Doc:
    d = Doc().add(pick("Azure Functions can't reach storage with:", "local.settings.json:"), "\n\n")
    d.add(f'"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=st{rand(string.ascii_lowercase, 8)};AccountKey=',
          (azure_account_key(), "SECRET"), ';EndpointSuffix=core.windows.net"\n')  # fmt: skip
    if R.random() < 0.5:
        d.add('"ServiceBus": "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=',
              (base64.b64encode(R.randbytes(32)).decode(), "SECRET"), '"\n')  # fmt: skip
    d.add(
        f'"FUNCTIONS_WORKER_RUNTIME": "python",\n"FUNCTIONS_EXTENSION_VERSION": "~4",\n"WEBSITE_RUN_FROM_PACKAGE": "{uuid.uuid4()}"\n'
    )
    return d


def secret_pem_record(lang: str) -> Doc:
    d = Doc().add(
        pick(
            "ssh says 'invalid format' for this key:",
            "Is this the right key format for the nginx config?",
            "Convert to PKCS8:",
        ),
        "\n\n",
    )
    if R.random() < 0.3:
        escaped = pem(pick("PRIVATE KEY", "RSA PRIVATE KEY")).replace("\n", "\\n")
        d.add('{\n  "type": "service_account",\n  "project_id": "acme-prod",\n', f'  "private_key_id": "{sha(40)}",\n  "private_key": "',
              (escaped, "SECRET"), '\\n",\n  "client_id": "', f"{R.randint(10**20, 10**21)}", '"\n}\n')  # fmt: skip
    else:
        indent = pick("", "", "    ")
        d.add(indent, (pem(indent=indent), "SECRET"), "\n")
    if R.random() < 0.4:
        d.add(
            "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(R.randbytes(96)).decode()
            + "\n-----END CERTIFICATE-----\n"
        )
    d.add(f"fingerprint SHA256:{base64.b64encode(R.randbytes(32)).decode().rstrip('=')}\n")
    return d


def secret_chat(lang: str) -> Doc:
    d = Doc().add(prose("en"), " ")
    kind = R.choice(list(PROVIDERS))
    template = R.choice([
        "here's my key {k}, why does it say invalid?", "I rotated the token, new one is {k}", "use {k} for now",
        "The key `{k}` leaked in a commit, what do I do?", "key: {k}", "token={k}",
        "Is {k} a live or a test key?", "My HF token ({k}) stopped working.",
    ])  # fmt: skip
    add_template(d, template, {"k": (provider_key(kind), "SECRET")})
    d.add("\n", pick(f"(not to be confused with {secret_negative()})", f"commit {sha(40)}", f"the docs show {secret_negative()}", ""), "\n")  # fmt: skip
    return d


def secret_code(lang: str) -> Doc:
    d = Doc().add(
        pick("Refactor this:", "Code review please:", "Why is this slow?"),
        "\n\n```",
        pick("python", "js", "go"),
        "\n",
    )
    roll = R.randint(0, 6)
    if roll == 0:
        d.add(
            'client = OpenAI(api_key="',
            (provider_key(pick("openai_proj", "openai_legacy")), "SECRET"),
            '")\n',
        )
    elif roll == 1:
        d.add(
            'const stripe = require("stripe")("',
            (provider_key(pick("stripe_secret", "stripe_restricted")), "SECRET"),
            '");\n',
        )
    elif roll == 2:
        d.add('HMAC_SIGNING_KEY = b"', (token(32), "SECRET"), '"\n')
    elif roll == 3:
        d.add(
            'db, err := sql.Open("mysql", "app:',
            (url_password(), "SECRET"),
            '@tcp(db:3306)/shop")\n',
        )
    elif roll == 4:
        d.add(
            'r = redis.from_url("rediss://default:',
            (url_password(), "SECRET"),
            '@redis-12345.example.cloud:6380")\n',
        )
    elif roll == 5:
        d.add(
            'conn = pika.BlockingConnection(pika.URLParameters("amqp://worker:',
            (url_password(), "SECRET"),
            '@rabbit:5672/%2F"))\n',
        )
    else:
        d.add('genai.configure(api_key="', (provider_key("google"), "SECRET"), '")\n')
    d.add(pick('client = Client(api_key=os.environ["API_KEY"])\n', 'PASSWORD = os.getenv("DB_PASSWORD")\n', f'CACHE_KEY = "{sha(32)}"\n',
               'api_key = "sk-..."  # replace me\n', f'REQUEST_ID = "{uuid.uuid4()}"\n'))  # fmt: skip
    d.add("```\n")
    return d


def secret_named_token(lang: str) -> Doc:
    d = Doc().add(prose("en"), "\n")
    template = R.choice([
        "The webhook signing secret is {t}", "Our staging API token: {t}", "x-api-key: {t}",
        "Use this access token -> {t}", "session_key={t}", "the encryption key for backups is {t}.",
        "Set `api_token` to {t} in the dashboard.", "Password for the shared mailbox: {p}",
        "wifi password: {p}", "root password is {p}, change it after login",
    ])  # fmt: skip
    add_template(d, template, {"t": (token(), "SECRET"), "p": (password(), "SECRET")})
    d.add("\n", pick(f"Unrelated ids: {uuid.uuid4()}, {sha(12)}.", f"Build {version()}.", "password: ********", "token: <redacted>", ""), "\n")  # fmt: skip
    return d


# --- hard-negative records --------------------------------------------------------------------


def phone_more(lang: str) -> Doc:
    """Phones in logs, SMS notices, key-value lines, forms with the label above, lists."""
    region = region_for(lang)
    d = Doc()
    roll = R.randint(0, 5)
    if roll == 0:
        d.add(
            f"{timestamp()} WARN sms.gateway delivery failed to=", (phone(region, "e164"), "PHONE")
        )
        d.add(f" msg_id={uuid.uuid4()} attempts={R.randint(1, 5)}\n")
    elif roll == 1:
        d.add("Contact details\nName: ", person(), "\nTelephone:\n", (phone(region), "PHONE"), "\n")
        d.add(f"Customer number: {R.randint(10**6, 10**9)}\n")
    elif roll == 2:
        d.add(
            f"user_id={R.randint(1000, 99999)} phone=",
            (phone(region, pick("e164", "intl")), "PHONE"),
        )
        d.add(f" plan=pro seats={R.randint(1, 500)} mrr={R.randint(10, 9999)}\n")
    elif roll == 3:
        d.add(pick("Emergency contacts:", "Numbers to call:", "Kontakte:"), "\n")
        for _ in range(R.randint(2, 4)):
            d.add(f"- {person()} ({pick('mobile', 'home', 'work', 'Handy', 'portable')}): ", (phone(R.choice(REGIONS)), "PHONE"), "\n")  # fmt: skip
    elif roll == 4:
        d.add(
            prose(lang),
            " ",
            pick("Ring me back on ", "Please call ", "Text "),
            (phone(region), "PHONE"),
        )
        d.add(pick(" (mobile).", " (WhatsApp)", " — any time.", "!", "?"), "\n")
    else:
        d.add(
            "<tr><td>",
            person(),
            "</td><td>",
            (phone(region, pick("intl", "e164")), "PHONE"),
            "</td>",
        )
        d.add(f"<td>{date()}</td><td>{R.randint(10**5, 10**7)}</td></tr>\n")
    d.add(f"{number_negative()}\n")
    return d


def ssn_structured(lang: str) -> Doc:
    """SSNs in SQL, XML, YAML, key-value logs, Python and CSV with quotes."""
    value = ssn(pick("dash", "plain", "plain", "space"))
    name = person()
    d = Doc()
    roll = R.randint(0, 5)
    if roll == 0:
        d.add(
            "Why does this insert fail?\n\nINSERT INTO employees (id, full_name, ssn, hired) VALUES\n"
        )
        d.add(f"  ({R.randint(100, 9999)}, '{name}', '", (value, "SSN"), f"', '{date()}');\n")
    elif roll == 1:
        tag = pick("SSN", "SocialSecurityNumber", "ssn", "TaxpayerId")
        d.add(
            "Parse this XML:\n\n<Employee>\n  <Name>",
            name,
            f"</Name>\n  <{tag}>",
            (value, "SSN"),
            f"</{tag}>\n",
        )
        d.add(
            f"  <EmployerEIN>{R.randint(10, 99)}-{R.randint(1000000, 9999999)}</EmployerEIN>\n</Employee>\n"
        )
    elif roll == 2:
        d.add(
            "applicant:\n  name: ",
            name,
            f"\n  {pick('ssn', 'social_security_number', 'SSN')}: ",
            (value, "SSN"),
            "\n",
        )
        d.add(f'  zip: "{R.randint(10000, 99999)}"\n  loan_id: {R.randint(10**7, 10**9)}\n')
    elif roll == 3:
        d.add(f"{timestamp()} INFO kyc.verify user={R.randint(10**4, 10**6)} ssn=", (value, "SSN"))
        d.add(f" result={pick('match', 'no_match')} score=0.{R.randint(10, 99)}\n")
    elif roll == 4:
        d.add(
            "employee = {",
            f'"name": "{name}", ',
            f'"{pick("ssn", "SSN", "social_security")}": "',
            (value, "SSN"),
            '", ',
        )
        d.add(f'"dept": {R.randint(10, 99)}}}\n')
    else:
        d.add(
            "name,ssn,dob,zip\n",
            f'"{name}","',
            (value, "SSN"),
            f'","{date()}","{R.randint(10000, 99999)}"\n',
        )
    d.add(pick(f"SSN on file: ***-**-{R.randint(1000, 9999)}\n", f"Last four of SSN: {R.randint(1000, 9999)}\n",
               f"EIN {R.randint(10, 99)}-{R.randint(1000000, 9999999)}\n", f"ITIN {bad_ssn()}\n", ""))  # fmt: skip
    return d


def secret_more(lang: str) -> Doc:
    """Credentials in the less usual places: bot URLs, JDBC parameters, CLI setters,
    Terraform, .git-credentials, header dictionaries."""
    d = Doc()
    roll = R.randint(0, 8)
    if roll == 0:
        d.add("My bot doesn't answer: curl https://api.telegram.org/bot", f"{R.randint(10**8, 10**10 - 1)}:", ("AA" + mixed(ALNUM + "_-", 33), "SECRET"), "/getUpdates\n")  # fmt: skip
    elif roll == 1:
        d.add(
            "jdbc:mysql://db.internal:3306/app?user=report&password=",
            (url_password(), "SECRET"),
            "&useSSL=true\n",
        )
    elif roll == 2:
        d.add(
            "aws configure set aws_secret_access_key ",
            (aws_secret(), "SECRET"),
            " --profile prod\n",
        )
    elif roll == 3:
        d.add('provider "aws" {\n  region     = "eu-central-1"\n  access_key = "', (aws_key_id(), "SECRET"), '"\n  secret_key = "', (aws_secret(), "SECRET"), '"\n}\n')  # fmt: skip
    elif roll == 4:
        d.add("~/.git-credentials:\nhttps://", R.choice(GIVEN).lower().replace("ë", "e"), ":", (provider_key(pick("github_classic", "github_pat")), "SECRET"), "@github.com\n")  # fmt: skip
    elif roll == 5:
        d.add('headers = {"Content-Type": "application/json", "Authorization": "Bearer ', (pick(jwt(), token()), "SECRET"), '"}\n')  # fmt: skip
    elif roll == 6:
        d.add('curl "$AZURE_OPENAI_ENDPOINT/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01" -H "api-key: ', (hex_token(32), "SECRET"), '"\n')  # fmt: skip
    elif roll == 7:
        d.add(
            "HEROKU_API_KEY=", (str(uuid.UUID(int=R.getrandbits(128), version=4)), "SECRET"), "\n"
        )
    else:
        d.add("docker run -d -e POSTGRES_PASSWORD=", (password().replace("!", "").replace("'", ""), "SECRET"), f" -p {R.randint(5000, 5999)}:5432 postgres:16\n")  # fmt: skip
    d.add(pick("Authorization: Bearer <token>\n", "password=<hidden>\n", f"request_id={uuid.uuid4()}\n",
               f"image: node@sha256:{sha(64)}\n", "token: [REDACTED]\n", f"api_key = os.environ['API_KEY']  # {sha(8)}\n"))  # fmt: skip
    return d


def negatives(lang: str) -> Doc:
    d = Doc().add(prose(lang), "\n")
    for _ in range(R.randint(4, 9)):
        d.add(pick(number_negative(), secret_negative(), f"password: {pick('changeme', '********', '<redacted>', '${DB_PASSWORD}', 'xxxx')}",
                   f"api_key = \"{pick('sk-...', '<your-api-key>', '${API_KEY}', 'YOUR_KEY', 'xxxxxxxx')}\"",
                   f"{R.randint(100, 999)}-{R.randint(100, 999)}-{R.randint(1000, 9999)}-{R.randint(10, 99)}",
                   f"{bad_ssn()} (invalid)", f"ITIN {bad_ssn()}"), pick("\n", "; ", " "))  # fmt: skip
    return d


KINDS = {
    "phone_sentence": (phone_sentence, "prose"), "phone_signature": (phone_signature, "email"),
    "phone_vcard": (phone_vcard, "form"), "phone_csv": (phone_csv, "csv"),
    "phone_md_table": (phone_md_table, "markdown"), "phone_json": (phone_json, "json"),
    "phone_chat": (phone_chat, "chat"), "phone_transcript": (phone_transcript, "chat"),
    "phone_links": (phone_links, "code"), "phone_directory": (phone_directory, "prose"),
    "ssn_form": (ssn_form, "form"), "ssn_table": (ssn_table, "csv"), "ssn_json": (ssn_json, "json"),
    "ssn_prose": (ssn_prose, "prose"), "ssn_multi": (ssn_multi, "prose"), "ssn_intl": (ssn_intl, "prose"),
    "secret_env": (secret_env, "config"), "secret_yaml": (secret_yaml, "config"),
    "secret_config": (secret_config, "config"), "secret_cli": (secret_cli, "code"),
    "secret_http": (secret_http, "log"), "secret_azure": (secret_azure, "config"),
    "secret_pem": (secret_pem_record, "code"), "secret_chat": (secret_chat, "chat"),
    "secret_code": (secret_code, "code"), "secret_named": (secret_named_token, "prose"),
    "negatives": (negatives, "prose"), "phone_more": (phone_more, "log"),
    "ssn_structured": (ssn_structured, "code"), "secret_more": (secret_more, "code"),
}  # fmt: skip


# --- checks -----------------------------------------------------------------------------------


def _check_phone(value: str) -> None:
    digits = "".join(c for c in value if c.isdigit())
    value = value.replace("(+", "+")
    if value.startswith("+") or value.startswith("00") and len(digits) > 10:
        number = phonenumbers.parse(
            "+" + digits[2:] if value.startswith("00") else value.replace("(0)", "")
        )
        assert phonenumbers.is_valid_number(number), value
        return
    if value.isdigit() and len(digits) > 10:  # wa.me links: the number without "+"
        assert phonenumbers.is_valid_number(phonenumbers.parse("+" + digits)), value
        return
    assert any(
        phonenumbers.is_valid_number(phonenumbers.parse(value, r))
        for r in REGIONS
        if _parses(value, r)
    ), value


def _parses(value: str, region: str) -> bool:
    try:
        phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return True


def check(record: dict) -> None:
    text = record["text"]
    spans = sorted(record["spans"])
    for (s, e, kind), nxt in zip(spans, spans[1:] + [[len(text) + 1, 0, ""]], strict=False):
        assert 0 <= s < e <= len(text) and e <= nxt[0], record["id"]
        value = text[s:e]
        assert value == value.strip() and value, record["id"]
        if kind == "CARD":
            assert luhn.is_valid("".join(c for c in value if c.isdigit())), value
        elif kind == "IBAN":
            assert stdnum_iban.is_valid(value), value
        elif kind == "SSN":
            assert stdnum_ssn.is_valid("".join(c for c in value if c.isdigit())), value
        elif kind == "PHONE":
            _check_phone(value)
        elif kind == "SECRET":
            assert "..." not in value and "xxxx" not in value.lower() and "EXAMPLE" not in value, (
                value
            )
    # No gold value appears elsewhere unlabelled.
    for s, e, _ in spans:
        value = text[s:e]
        at = text.find(value)
        while at >= 0:
            assert any(gs <= at < ge for gs, ge, _ in spans), (record["id"], "unlabelled copy")
            at = text.find(value, at + 1)


def main() -> None:
    records = []
    names = list(KINDS)
    for i in range(600):
        name = names[i % len(names)]
        build, generic = KINDS[name]
        lang = (
            R.choice(LANGS)
            if name.startswith(("phone", "negatives"))
            else pick("en", "en", "en", "de", "fr", "es")
        )
        if name in ("phone_transcript", "phone_csv", "phone_md_table") and lang not in (
            "en",
            "de",
            "fr",
            "es",
            "it",
            "nl",
            "pt",
        ):
            lang = "en"
        doc = build(lang)
        record = {
            "id": f"dev3-{i:04d}",
            "kind": generic,
            "lang": lang,
            "text": doc.text,
            "spans": doc.spans,
        }
        check(record)
        json.loads(json.dumps(record, ensure_ascii=False))
        records.append(record)
    with OUT.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for r in records:
        for *_, kind in r["spans"]:
            counts[kind] = counts.get(kind, 0) + 1
    print(
        f"{len(records)} records, {sum(counts.values())} spans -> {OUT.name}: {dict(sorted(counts.items()))}"
    )


if __name__ == "__main__":
    main()
