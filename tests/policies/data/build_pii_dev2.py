"""Builds pii_dev2.jsonl, the second labelled development set of the PII detector.

    .venv/bin/python tests/policies/data/build_pii_dev2.py

The first set (build_pii_dev.py) puts a label word before almost every value. This one is
made of other templates, closer to what reaches a gateway: CSV and Markdown tables whose
header names the column, JSON and YAML payloads, access and application logs, code and
`.env` files, e-mail signatures, support tickets and chats in several languages, invoices
and shipping notices. It is dense with the hard negatives that look like the structured
types: for phones, order and invoice numbers, dates, times and timestamps, numeric ids,
postcodes, prices, measurements, version and build numbers, numbers in tables; for secrets,
UUIDs, hashes, base64 images, paths, URLs without credentials, identifiers, minified code,
placeholder keys, public keys and certificates, commit SHAs, object ids. US SSNs appear in
every usual spelling: dashes, spaces or none, after "SSN", "SS#", "social security", in
forms and in table columns.

Labels follow docs/pii.md: a phone span includes its `+` and parentheses; a secret span is
the value only (the password of a URL, the token after `Bearer`, the right-hand side of an
assignment without quotes; a private-key block from BEGIN to END). Values are generated
(seeded) and their offsets computed while the text is assembled. No value is a real
credential or a real person's data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

OUT = Path(__file__).with_name("pii_dev2.jsonl")
R = random.Random(20260117)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
PNF = phonenumbers.PhoneNumberFormat


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


# --- values -----------------------------------------------------------------------------------

GIVEN = ["Amelia", "Bruno", "Carmen", "Dmitri", "Esther", "Felix", "Greta", "Hamid", "Irene",
         "Jakob", "Keiko", "Luis", "Mireille", "Nils", "Oksana", "Paolo", "Rania", "Sofia",
         "Tomás", "Ulla", "Wei", "Yara"]  # fmt: skip
FAMILY = ["Andersen", "Barbieri", "Castillo", "Duarte", "Eriksson", "Fontaine", "Gruber",
          "Hoffmann", "Ishikawa", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura",
          "Okafor", "Petrov", "Quintero", "Richter", "Santos", "Van Dijk"]  # fmt: skip
MAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.de",
                "kunden.example.at", "correo.example.es", "posta.example.it", "example.co.jp",
                "support.example.fr", "example.nl"]  # fmt: skip


def person() -> str:
    return f"{R.choice(GIVEN)} {R.choice(FAMILY)}"


def email() -> str:
    g = R.choice(GIVEN).lower().replace("á", "a")
    f = R.choice(FAMILY).lower().replace(" ", "")
    local = pick(f"{g}.{f}", f"{g[0]}.{f}", f"{g}{R.randint(70, 99)}", f"{f}-{g}", f"{g}")
    return f"{local}@{R.choice(MAIL_DOMAINS)}"


def _valid_number(region: str, kind=None) -> phonenumbers.PhoneNumber:
    kind = kind or pick(
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE
    )
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    nsn = str(example.national_number)
    for _ in range(80):
        keep = R.randint(2, 3)
        candidate = phonenumbers.parse(
            f"+{example.country_code}{nsn[:keep]}{rand(string.digits, len(nsn) - keep)}"
        )
        if phonenumbers.is_valid_number(candidate):
            return candidate
    return example


def phone(region: str, style: str | None = None) -> str:
    """A valid number of `region`, written the way people write it."""
    number = _valid_number(region)
    style = style or pick("intl", "intl", "national", "national", "e164", "variant")
    if style == "intl":
        return phonenumbers.format_number(number, PNF.INTERNATIONAL)
    if style == "e164":
        return phonenumbers.format_number(number, PNF.E164)
    national = phonenumbers.format_number(number, PNF.NATIONAL)
    if style == "national" or region in ("US", "CA"):
        if region == "FR" and R.random() < 0.3:
            return national.replace(" ", ".")  # "01.23.45.67.89"
        return national
    intl = phonenumbers.format_number(number, PNF.INTERNATIONAL)
    cc, rest = intl.split(" ", 1)
    variants = [f"00{cc[1:]} {rest}", intl.replace(" ", "-"), f"{cc} {rest.replace(' ', '')}"]
    if national.startswith("0") and region in ("DE", "AT", "CH", "GB", "FR", "NL", "BE"):
        variants.append(f"{cc} (0){rest}")  # "+49 (0)30 1234567", common in signatures
    if national.startswith("0") and " " in national:
        variants.append(national.replace(" ", " – ", 1))  # "030 – 1234567"
        variants.append(national.replace(" ", "\u00a0"))  # non-breaking spaces (French typography)
        variants.append(f"{cc} {national}")  # "+44 020 7946 0958": the trunk 0 kept
    if region in ("DE", "AT") and national.startswith("0") and " " in national:
        head, tail = national.split(" ", 1)
        variants.append(f"{head}/{tail.replace(' ', '')}")  # "030/1234567"
        variants.append(f"{head} - {tail.replace(' ', '')}")
    return R.choice(variants)


def us_phone(style: str | None = None) -> str:
    number = _valid_number("US")
    d = str(number.national_number)
    a, b, c = d[:3], d[3:6], d[6:]
    return (style or R.choice(["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 ({a}) {b}-{c}",
                               "1-{a}-{b}-{c}", "+1 {a}-{b}-{c}", "({a}) {b} {c}"])).format(
        a=a, b=b, c=c
    )  # fmt: skip


def ssn_digits() -> str:
    while True:
        area = R.choice([R.randint(1, 665), R.randint(667, 899)])
        value = f"{area:03d}{R.randint(1, 99):02d}{R.randint(1, 9999):04d}"
        if stdnum_ssn.is_valid(value):
            return value


def ssn(style: str | None = None) -> str:
    d = ssn_digits()
    style = style or pick("dash", "dash", "space", "plain")
    if style == "dash":
        dash = "‐" if R.random() < 0.08 else "–" if R.random() < 0.08 else "-"
        return f"{d[:3]}{dash}{d[3:5]}{dash}{d[5:]}"
    if style == "space":
        return f"{d[:3]} {d[3:5]} {d[5:]}"
    return d


def card() -> str:
    prefix = pick("4", "4", "51", "52", "55", "2223", "34", "37", "6011", "3528")
    length = 15 if prefix in ("34", "37") else 16
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    digits = body + luhn.calc_check_digit(body)
    sep = pick(" ", "-", "")
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def iban() -> str:
    country, bban_format = R.choice([("DE", "18n"), ("FR", "10n11n2n"), ("NL", "4a10n"),
                                     ("ES", "20n"), ("IT", "1a10n12n"), ("AT", "16n"),
                                     ("BE", "12n"), ("GB", "4a14n")])  # fmt: skip
    while True:
        bban, num = "", ""
        for ch in bban_format:
            if ch.isdigit():
                num += ch
                continue
            bban += rand(string.digits if ch == "n" else string.ascii_uppercase, int(num))
            num = ""
        value = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
        if stdnum_iban.is_valid(value):
            break
    if R.random() < 0.5:
        return value
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def ipv4() -> str:
    return pick(
        f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
        f"192.168.{R.randint(0, 9)}.{R.randint(2, 254)}",
        f"{R.randint(23, 212)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
    )


def ipv6() -> str:
    g = [f"{R.randint(1, 0xFFFF):x}" for _ in range(8)]
    return pick(f"2001:db8:{g[2]}:{g[3]}::{g[7]}", f"fe80::{g[4]}:{g[5]}:{g[6]}:{g[7]}",
                f"2a02:{g[1]}:{g[2]}:{g[3]}:{g[4]}:{g[5]}:{g[6]}:{g[7]}")  # fmt: skip


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    header = b64url(json.dumps({"alg": pick("HS256", "RS256", "ES256"), "typ": "JWT"}).encode())
    claims = {"sub": uuid.UUID(int=R.getrandbits(128)).hex, "exp": R.randint(1.7e9, 1.8e9)}
    return (
        f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(R.randbytes(R.choice([32, 64])))}"
    )


def provider_key() -> str:
    return R.choice([
        lambda: "sk-proj-" + rand(ALNUM + "_-", 74) + "T3BlbkFJ" + rand(ALNUM + "_-", 74),
        lambda: "sk-ant-api03-" + rand(ALNUM + "_-", 93) + "AA",
        lambda: "AKIA" + rand(string.ascii_uppercase + "234567", 16),
        lambda: "ghp_" + rand(ALNUM, 36),
        lambda: "glpat-" + rand(ALNUM + "_-", 20),
        lambda: "xoxb-" + f"{R.randint(10**11, 10**12)}-{R.randint(10**11, 10**12)}-" + rand(ALNUM, 24),  # noqa: E501
        lambda: "sk_live_" + rand(ALNUM, 99),
        lambda: "AIza" + rand(ALNUM + "_-", 35),
        lambda: "hf_" + rand(ALNUM, 34),
        lambda: "npm_" + rand(ALNUM, 36),
        lambda: "GOCSPX-" + rand(ALNUM + "_-", 28),
        lambda: "whsec_" + rand(ALNUM, 32),
        lambda: "ya29." + rand(ALNUM + "_-", 120),
        lambda: "glsa_" + rand(ALNUM, 32) + "_" + rand(HEX, 8),
        lambda: "hvs." + rand(ALNUM + "_-", 90),
        lambda: "gsk_" + rand(ALNUM, 52),
        lambda: "pplx-" + rand(ALNUM, 48),
        lambda: "r8_" + rand(ALNUM, 37),
        lambda: "dapi" + rand(HEX, 32),
        lambda: "lin_api_" + rand(ALNUM, 40),
        lambda: "PMAK-" + rand(HEX, 24) + "-" + rand(HEX, 34),
        lambda: "sbp_" + rand(HEX, 40),
    ])()  # fmt: skip


def token(n: int | None = None) -> str:
    while True:
        value = rand(ALNUM + pick("", "-_"), n or R.choice([24, 32, 40, 43]))
        if (
            sum(c.isdigit() for c in value) >= 3
            and sum(c.isupper() for c in value) >= 3
            and sum(c.islower() for c in value) >= 3
        ):
            return value


def password() -> str:
    return pick(
        rand(ALNUM, 10) + pick("!", "#", "%", "*") + str(R.randint(10, 99)),
        R.choice(GIVEN) + pick("-", "_", ".") + rand(ALNUM, 6) + str(R.randint(0, 9)),
        rand(ALNUM + "!#%*", R.randint(12, 20)),
    )


def pem() -> str:
    kind = pick("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY")
    body = base64.b64encode(R.randbytes(R.choice([180, 300]))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


# --- hard negatives ---------------------------------------------------------------------------


def date() -> str:
    y, m, d = R.randint(2019, 2026), R.randint(1, 12), R.randint(1, 28)
    return pick(f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m}/{d}/{y}", f"{d:02d}/{m:02d}/{y}",
                f"{y}{m:02d}{d:02d}", f"{d}. {pick('März', 'Mai', 'Juni')} {y}", f"{y}/{m:02d}/{d:02d}")  # fmt: skip


def clock() -> str:
    h, mi, s = R.randint(0, 23), R.randint(0, 59), R.randint(0, 59)
    return pick(
        f"{h:02d}:{mi:02d}", f"{h:02d}:{mi:02d}:{s:02d}", f"{h}h{mi:02d}", f"{h:02d}.{mi:02d} Uhr"
    )


def timestamp() -> str:
    y, m, d = R.randint(2023, 2026), R.randint(1, 12), R.randint(1, 28)
    h, mi, s = R.randint(0, 23), R.randint(0, 59), R.randint(0, 59)
    return pick(
        f"{y}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{R.randint(0, 999999):06d}+00:00",
        f"{y}-{m:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d},{R.randint(0, 999):03d}",
        f"{y}{m:02d}{d:02d}-{h:02d}{mi:02d}{s:02d}",
        f"{y}{m:02d}{d:02d}{h:02d}{mi:02d}{s:02d}",
        str(R.randint(1_650_000_000, 1_790_000_000)),
        str(R.randint(1_650_000_000_000, 1_790_000_000_000)),
        f"{d:02d}/{pick('Jan', 'Feb', 'Mar', 'Apr')}/{y}:{h:02d}:{mi:02d}:{s:02d} +0000",
    )


def price() -> str:
    whole = R.randint(1, 99999)
    return pick(f"{whole:,}.{R.randint(0, 99):02d} USD", f"{whole:,}".replace(",", ".") + f",{R.randint(0, 99):02d} €",
                f"€ {whole:,}".replace(",", " ") + f",{R.randint(0, 99):02d}", f"CHF {whole:,}".replace(",", "'") + ".–",
                f"{R.randint(100000, 9999999):,}".replace(",", " ") + " EUR", f"¥{R.randint(1000, 9999999):,}",
                f"R$ {whole:,}".replace(",", ".") + f",{R.randint(0, 99):02d}")  # fmt: skip


def measurement() -> str:
    return pick(f"{R.randint(100, 2400)} x {R.randint(100, 1200)} x {R.randint(10, 900)} mm",
                f"{R.randint(1000, 99999)} km", f"{R.randint(10, 999)},{R.randint(0, 9)} kg",
                f"{R.randint(1, 64)} GB / {R.randint(100, 4000)} MB", f"{R.randint(1200, 9999)} rpm",
                f"{R.randint(1000, 50000)} mAh", f"{R.uniform(0, 99):.4f} mm", f"{R.randint(10, 99)} {R.randint(100, 999)} m²")  # fmt: skip


def version() -> str:
    return pick(f"{R.randint(1, 20)}.{R.randint(0, 40)}.{R.randint(0, 300)}",
                f"{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(1000, 9999)}.{R.randint(0, 999)}",
                f"build {R.randint(2019, 2026)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}.{R.randint(1, 9)}",
                f"{R.randint(10, 24)}.{R.randint(1, 12):02d}.{R.randint(1000, 99999)}",
                f"r{R.randint(100000, 999999)}", f"{R.randint(100, 130)}.0.{R.randint(1000, 7000)}.{R.randint(10, 200)}")  # fmt: skip


def order_number() -> str:
    return pick(f"{R.randint(10**6, 10**10)}", f"{R.randint(100, 999)}-{R.randint(1000000, 9999999)}-{R.randint(1000000, 9999999)}",
                f"{R.randint(2019, 2026)}-{R.randint(100000, 999999)}", f"{R.randint(10, 99)} {R.randint(1000, 9999)} {R.randint(1000, 9999)}",
                f"{R.randint(1000, 9999)}-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}", f"0{R.randint(10**7, 10**9)}")  # fmt: skip


def postcode() -> str:
    return pick(f"{R.randint(10000, 99999)}", f"{R.randint(10000, 99999)}-{R.randint(1000, 9999)}",
                f"{R.randint(1000, 9999)} {rand(string.ascii_uppercase, 2)}", f"{R.randint(100, 999)}-{R.randint(1000, 9999)}",
                f"{R.randint(10, 99)}-{R.randint(100, 999)}")  # fmt: skip


def sha(n: int = 40) -> str:
    return hashlib.sha256(R.randbytes(16)).hexdigest()[:n]


def object_id() -> str:
    prefix = pick("ord_", "cus_", "pi_", "evt_", "req_", "inv_", "txn_", "sess_", "prod_", "ch_")
    return prefix + rand(ALNUM, R.choice([14, 24]))


def secret_negative() -> str:
    """Random-looking strings that are no secret."""
    return R.choice([
        lambda: str(uuid.UUID(int=R.getrandbits(128), version=4)),
        lambda: sha(40),
        lambda: sha(64),
        lambda: "sha512-" + base64.b64encode(R.randbytes(64)).decode(),
        object_id,
        lambda: "https://cdn.example.com/assets/" + rand(HEX, 20) + "/app." + rand(HEX, 8) + ".js",
        lambda: "https://www.youtube.com/watch?v=" + rand(ALNUM + "-_", 11),
        lambda: "https://drive.example.com/file/d/" + rand(ALNUM + "-_", 33) + "/view",
        lambda: "s3://logs-bucket/" + f"{R.randint(2023, 2026)}/{R.randint(1, 12):02d}/" + rand(HEX, 32) + ".gz",
        lambda: "/var/lib/docker/overlay2/" + rand(HEX, 64) + "/merged",
        lambda: "src/components/" + pick("UserProfileCard", "InvoiceLineItemTable", "CheckoutPaymentForm") + "V2.test.tsx",
        lambda: pick("getUserAccountSettingsByTenantIdV2", "handleIncomingWebhookEventForStripeV3",
                     "AbstractSingletonProxyFactoryBean2", "calculate_monthly_recurring_revenue_v2",
                     "test_refund_is_rejected_after_30_days_for_plan_B2", "X-Amz-Content-Sha256"),
        lambda: pick("sk-...", "sk-xxxxxxxxxxxxxxxxxxxx", "YOUR_API_KEY", "<your-api-key>", "sk-proj-XXXXXXXXXXXXXXXX",
                     "${OPENAI_API_KEY}", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "AKIAXXXXXXXXXXXXXXXX",
                     "sk-your-key-here", "{{ secrets.API_TOKEN }}"),
        lambda: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(R.randbytes(24)).decode().rstrip("=") + " deploy@ci",
        lambda: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + base64.b64encode(R.randbytes(90)).decode() + " " + R.choice(GIVEN).lower() + "@laptop",
        lambda: "data:image/png;base64," + base64.b64encode(R.randbytes(R.choice([60, 150]))).decode(),
        lambda: "docker.io/library/postgres@sha256:" + sha(64),
        lambda: "1Z" + rand(string.ascii_uppercase + string.digits, 16),
        lambda: "G-" + rand(string.ascii_uppercase + string.digits, 10),
        lambda: "dQw4w9WgXcQ" + rand(ALNUM, 9),
        lambda: ".a" + rand(HEX, 5) + "{display:flex;margin:0 auto}.b" + rand(HEX, 5) + ">.c{color:#" + rand(HEX, 6) + "}",
        lambda: "function(e,t,n){var r=n(" + str(R.randint(10, 999)) + "),o=n.n(r);e.exports=o.a}",
        lambda: "AAAA" + ",".join(rand("ABCDEFGIKMOQSUWYacegikmoqsuwy", R.randint(4, 7)) for _ in range(6)),
        lambda: "ABIA" + rand(string.ascii_lowercase, 4) + "ContainerRegistryImageTag",
        lambda: "settings.account.billing.paymentMethods.addCardButtonLabel",
        lambda: "idempotency-" + str(uuid.UUID(int=R.getrandbits(128))),
        lambda: "pk_live_" + rand(ALNUM, 24),
        lambda: "Z" + rand(HEX, 7) + "-" + rand(string.ascii_uppercase + string.digits, 12),
    ])()  # fmt: skip


def number_negative() -> str:
    """Digit runs that are no phone, SSN or card."""
    return R.choice([
        lambda: f"order {order_number()}",
        lambda: f"Bestellnummer {order_number()}",
        lambda: f"n° de commande {order_number()}",
        lambda: f"pedido nº {order_number()}",
        lambda: f"Rechnung Nr. {R.randint(2020, 2026)}-{R.randint(10000, 99999)}",
        lambda: f"#{R.randint(100000, 99999999)}",
        date, clock, timestamp, price, measurement, version, postcode,
        lambda: f"PLZ {R.randint(10000, 99999)}",
        lambda: f"ZIP {R.randint(10000, 99999)}-{R.randint(1000, 9999)}",
        lambda: f"EIN {R.randint(10, 99)}-{R.randint(1000000, 9999999)}",
        lambda: f"{R.randint(1, 9)} {R.randint(100, 999)} {R.randint(100, 999)}",
        lambda: f"{R.randint(10, 99)} {R.randint(100, 999)} {R.randint(100, 999)} Einwohner",
        lambda: f"{R.randint(1000, 9999)} {R.randint(1000, 9999)}",
        lambda: f"{R.randint(100, 999)}.{R.randint(100, 999)}.{R.randint(100, 999)}",
        lambda: f"{R.randint(0, 23):02d}:00-{R.randint(0, 23):02d}:00",
        lambda: f"{R.randint(6, 11)}.00 - {R.randint(12, 20)}.00 Uhr",
        lambda: f"{date()} {clock()}",
        lambda: f"batch {R.randint(10**8, 10**10)}",
        lambda: f"{R.randint(1, 9)}{rand(string.digits, 8)}",
        lambda: f"{R.randint(100, 999)} {R.randint(10, 99)} {R.randint(1000, 9999)}",
        lambda: f"({R.randint(10, 99)}) {R.randint(1000, 9999)}",
        lambda: f"{R.randint(1, 9)}.{R.randint(1000, 9999)}.{R.randint(1000, 9999)}",
        lambda: f"ISO {R.randint(1000, 27001)}:{R.randint(2005, 2024)}",
        lambda: f"Art.-Nr. {R.randint(100, 999)} {R.randint(100, 999)} {R.randint(10, 99)}",
        lambda: f"{R.randint(10, 99)}-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}",
        lambda: f"0x{rand(HEX, 8)}",
        lambda: f"{R.randint(1, 31)}.{R.randint(1, 12)}.-{R.randint(1, 31)}.{R.randint(1, 12)}.",
        lambda: f"{R.randint(2019, 2026)}-{R.randint(2019, 2026)}",
        lambda: f"{R.randint(1000, 9999)}/{R.randint(1000, 9999)}",
        lambda: f"{R.randint(10, 99)}.{R.randint(10, 99)}.{R.randint(10, 99)}.{R.randint(10, 99)}.{R.randint(10, 99)}",
        lambda: f"GTIN {R.randint(10**12, 10**13)}",
        lambda: f"{R.randint(100, 999)} {R.randint(100, 999)} {R.randint(1000, 9999)} tokens",
        lambda: f"{R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)}",
    ])()  # fmt: skip


# --- text -------------------------------------------------------------------------------------

PROSE = {
    "en": ["Could you tidy this up before I send it to the customer?",
           "Our finance team flagged the totals below as inconsistent.",
           "I pasted the raw export; please find the rows that look broken.",
           "The shipment left the warehouse yesterday according to the carrier.",
           "Summarise what went wrong in the incident and what we changed."],
    "de": ["Bitte prüfe die folgende Tabelle auf Dubletten.",
           "Der Kunde hat sich über die lange Lieferzeit beschwert.",
           "Kannst du die Antwort freundlicher formulieren?",
           "Die Rechnung wurde zweimal gebucht, bitte korrigieren."],
    "fr": ["Pouvez-vous vérifier les montants ci-dessous ?",
           "Le client attend toujours son remboursement.",
           "Voici l'export brut, merci d'en faire un résumé."],
    "es": ["¿Puedes revisar esta tabla antes de enviarla?",
           "El cliente no ha recibido la factura corregida.",
           "Te paso el registro completo del error."],
    "it": ["Puoi controllare questi dati prima dell'invio?",
           "Il cliente chiede un rimborso parziale."],
    "nl": ["Kun je deze gegevens controleren?", "De klant wacht nog op een antwoord."],
    "pt": ["Pode revisar esta planilha?", "O cliente pediu o reembolso ontem."],
    "ja": ["以下のデータを確認してください。", "お客様から返金の依頼がありました。"],
    "pl": ["Czy możesz sprawdzić tę tabelę?", "Klient czeka na zwrot pieniędzy."],
}  # fmt: skip
LANG_REGION = {"en": "GB", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL",
               "pt": "PT", "ja": "JP", "pl": "PL"}  # fmt: skip
PHONE_LABEL = {
    "en": ["Phone", "Mobile", "Tel.", "Call me on", "Cell", "reach me at", "Fax", "Ph:", "Ph."],
    "de": ["Telefon", "Tel.", "Mobil", "Handy", "Rufnummer", "erreichbar unter"],
    "fr": ["Tél.", "Téléphone", "Portable", "appelez-moi au", "Numéro"],
    "es": ["Teléfono", "Tel.", "Móvil", "llámame al", "Celular"],
    "it": ["Telefono", "Tel.", "Cellulare", "chiamami al"],
    "nl": ["Telefoon", "Tel.", "Mobiel", "bel me op"],
    "pt": ["Telefone", "Tel.", "Celular", "ligue para"],
    "ja": ["電話番号", "携帯", "TEL", "手机:", "联系电话："],
    "pl": ["Telefon", "Tel.", "Komórka", "zadzwoń pod", "тел.", "Tlf."],
}  # fmt: skip


def prose(lang: str, n: int = 1) -> str:
    return " ".join(R.choice(PROSE[lang]) for _ in range(n))


def region_of(lang: str) -> str:
    return LANG_REGION[lang] if R.random() < 0.7 else pick("US", "GB", "DE", "FR", "ES", "IT", "NL", "CH", "AT", "AU")  # fmt: skip


def any_phone(lang: str) -> str:
    region = region_of(lang)
    return us_phone() if region == "US" else phone(region)


# --- record kinds -----------------------------------------------------------------------------


def csv_table(lang: str) -> Doc:
    sep = pick(",", ";", "\t", ",")
    header = {
        "en": ["customer_id", "name", "email", "phone", "zip", "last_order", "total", "created"],
        "de": ["Kundennr", "Name", "E-Mail", "Telefon", "PLZ", "Bestellung", "Betrag", "Datum"],
        "fr": ["id_client", "nom", "courriel", "téléphone", "code_postal", "commande", "montant", "date"],
        "es": ["id_cliente", "nombre", "correo", "teléfono", "cp", "pedido", "importe", "fecha"],
    }.get(lang, ["id", "name", "email", "phone", "postcode", "order", "amount", "date"])  # fmt: skip
    d = Doc().add(prose(lang), "\n\n", sep.join(header), "\n")
    for _ in range(R.randint(4, 9)):
        amount = (
            f"{R.randint(1, 9999)}.{R.randint(0, 99):02d}"
            if sep != ","
            else str(R.randint(1, 9999))
        )
        d.add(f"{R.randint(10000, 999999)}{sep}{person()}{sep}", (email(), "EMAIL"), sep)
        d.add((any_phone(lang), "PHONE"), sep)
        d.add(
            f"{R.randint(10000, 99999)}{sep}{R.randint(10**6, 10**9)}{sep}{amount}{sep}{date()}\n"
        )
    return d


def ssn_table(lang: str) -> Doc:
    style = pick("csv", "md", "fixed")
    d = Doc().add(pick("Please validate these W-2 rows:", "Payroll import failed for these employees:",
                       "Check the onboarding sheet below for typos."), "\n\n")  # fmt: skip
    col = pick("SSN", "ssn", "Social Security No.", "SS#", "social_security_number")
    if style == "csv":
        d.add(f"employee_id,name,{col},hire_date,salary,zip\n")
    elif style == "md":
        d.add(f"| Employee | Name | {col} | Hired | Salary |\n|---|---|---|---|---|\n")
    else:
        d.add(f"EMP#    NAME                 {col:<14}HIRED       SALARY\n")
    for _ in range(R.randint(3, 7)):
        sep_style = pick("dash", "plain", "space", "dash")
        emp = f"E{R.randint(10000, 99999)}"
        name = person()
        salary = f"{R.randint(38, 190)},{R.randint(0, 999):03d}"
        if style == "csv":
            d.add(f"{emp},{name},", (ssn(sep_style), "SSN"), f",{date()},\"{salary}\",{R.randint(10000, 99999)}\n")  # fmt: skip
        elif style == "md":
            d.add(f"| {emp} | {name} | ", (ssn(sep_style), "SSN"), f" | {date()} | ${salary} |\n")
        else:
            value = ssn(sep_style)
            d.add(f"{emp:<8}{name:<21}", (value, "SSN"), " " * (14 - len(value)), f"{date():<12}{salary}\n")  # fmt: skip
    if R.random() < 0.5:
        d.add(
            f"\nTotal payroll: ${R.randint(100, 999)},{R.randint(100, 999)}.00, {number_negative()}\n"
        )
    return d


def ssn_form(lang: str) -> Doc:
    d = Doc().add(pick("Can you fill in the missing fields of this form?", "Is this tax form complete?",
                       "Review my loan application:"), "\n\n")  # fmt: skip
    d.add(f"Applicant: {person()}\nDate of birth: {R.randint(1, 12):02d}/{R.randint(1, 28):02d}/{R.randint(1950, 2005)}\n")  # fmt: skip
    label = pick("SSN: ", "SSN# ", "SSN #: ", "Social Security Number: ", "Social Security No. ",
                 "Soc. Sec. #: ", "SS No.: ", "Social security number (SSN): ", "ssn=", "SSN - ",
                 "Your Social Security number is ", "SSN#", "Número de Seguro Social: ",
                 "Social Security Number of the primary applicant: ", "SSN:\n",
                 "Social Security Number\n", "S.S.N.: ", "SSN (9 digits): ", "SSN-",
                 "Social Sec. No ", "Sozialversicherungsnummer (USA): ", "numéro de sécurité sociale américain : ",
                 "社会保障番号: ", "numero di previdenza sociale USA: ")  # fmt: skip
    d.add(label, (ssn(pick("dash", "space", "plain")), "SSN"), "\n")
    d.add(f"Annual income: ${R.randint(20, 300)},{R.randint(0, 999):03d}\nEmployer EIN: {R.randint(10, 99)}-{R.randint(1000000, 9999999)}\n")  # fmt: skip
    d.add("Home phone: ", (us_phone(), "PHONE"), f"\nZIP: {R.randint(10000, 99999)}-{R.randint(1000, 9999)}\n")  # fmt: skip
    d.add(f"Loan no. {R.randint(10**8, 10**10)}, submitted {timestamp()}\n")
    if R.random() < 0.5:
        d.add("Spouse SSN: ", (ssn(), "SSN"), "\n")
    if R.random() < 0.4:
        d.add(pick("Card on file: ", "Credit card: ", "Visa "), (card(), "CARD"), f"  exp. {R.randint(1, 12):02d}/{R.randint(26, 31)}\n")  # fmt: skip
    if R.random() < 0.4:
        d.add("Direct deposit: routing ", f"{R.randint(10**8, 10**9 - 1)}", " account ", f"{R.randint(10**9, 10**11)}", "\n")  # fmt: skip
    return d


def ssn_prose(lang: str) -> Doc:
    d = Doc().add(prose("en"), " ")
    value = ssn(pick("dash", "space", "plain"))
    d.add(pick(
        "My social security number is ", "The SSN on the letter was ", "her SSN ",
        "I typed my social security # as ", "The form rejected social-security number ",
        "SSN (for the background check): ", "my ss# is ",
    ), (value, "SSN"), pick(". ", ", ", " — "))  # fmt: skip
    d.add(f"The case number is {R.randint(10**7, 10**9)} and I called on {date()} at {clock()}. ")
    d.add(prose("en"), f" ({number_negative()})")
    return d


def json_payload(lang: str) -> Doc:
    d = Doc().add(pick("The webhook sends this body, why does the parser choke?", "Response from the API:",
                       prose(lang)), "\n```json\n{\n")  # fmt: skip
    d.add(
        f'  "id": "{object_id()}",\n  "object": "customer",\n  "created": {R.randint(1.6e9, 1.8e9)},\n'
    )
    d.add('  "email": "', (email(), "EMAIL"), '",\n')
    key = pick("phone", "phone_number", "mobile", "tel", "telefono", "telefon", "contact_phone")
    d.add(f'  "{key}": "', (any_phone(lang), "PHONE"), '",\n')
    d.add(f'  "order_number": "{order_number()}",\n  "invoice": {R.randint(10**6, 10**9)},\n')
    d.add(f'  "postal_code": "{postcode()}",\n  "amount": {R.randint(100, 999999)},\n')
    d.add(f'  "currency": "eur",\n  "request_id": "{secret_negative()}",\n')
    if R.random() < 0.4:
        d.add('  "ip_address": "', (ipv4(), "IP"), '",\n')
    if R.random() < 0.3:
        d.add('  "iban": "', (iban(), "IBAN"), '",\n')
    if R.random() < 0.3:
        d.add('  "client_secret": "', (token(), "SECRET"), '",\n')
    d.add(f'  "metadata": {{"build": "{version()}", "sku": "{R.randint(10**9, 10**12)}", "etag": "{sha(32)}"}},\n')  # fmt: skip
    d.add(f'  "updated_at": "{timestamp()}"\n}}\n```\n')
    return d


def access_log(lang: str) -> Doc:
    d = Doc().add(
        pick("Why are these requests slow?", "Nginx log excerpt:", "Here are the 502s:"), "\n"
    )
    for _ in range(R.randint(4, 9)):
        ip = R.choice([ipv4, ipv4, ipv6])()
        path = pick(f"/api/v2/orders/{R.randint(10**6, 10**9)}", f"/static/js/main.{rand(HEX, 8)}.js",
                    f"/invoices/{R.randint(2023, 2026)}-{R.randint(10000, 99999)}.pdf",
                    f"/track?id={R.randint(10**9, 10**11)}&ts={R.randint(1.7e9, 1.8e9)}",
                    f"/img/{rand(HEX, 32)}.webp", f"/users/{uuid.uuid4()}/settings")  # fmt: skip
        d.add((ip, "IP"), f' - - [{timestamp()}] "GET {path} HTTP/1.1" {pick(200, 200, 304, 502)} {R.randint(100, 99999)} ')  # fmt: skip
        d.add(f'"-" "Mozilla/5.0 (X11; Linux x86_64) Chrome/{version()}" {R.randint(1, 9)}.{R.randint(0, 999):03d}\n')  # fmt: skip
        if R.random() < 0.15:
            d.add(f"{timestamp()} [warn] upstream timed out, request_id={uuid.uuid4().hex} bytes={R.randint(10**5, 10**8)}\n")  # fmt: skip
    return d


def app_log(lang: str) -> Doc:
    d = Doc()
    for _ in range(R.randint(4, 10)):
        d.add(f"{timestamp()} {pick('INFO', 'WARN', 'ERROR', 'DEBUG')} [{pick('worker', 'api', 'billing')}-{R.randint(1, 9)}] ")  # fmt: skip
        what = R.random()
        if what < 0.15:
            d.add("sms sent to ", (phone(pick("GB", "DE", "FR", "NL", "ES"), "e164"), "PHONE"), f" msg_id={object_id()}\n")  # fmt: skip
        elif what < 0.25:
            d.add("auth ok Authorization=Bearer ", (pick(jwt(), token()), "SECRET"), "\n")
        elif what < 0.32:
            d.add(f"retrying POST https://hooks.example.com/{rand(HEX, 24)} attempt={R.randint(1, 5)} after {R.randint(100, 9000)}ms\n")  # fmt: skip
        elif what < 0.4:
            d.add("db connect postgresql://billing:", (password(), "SECRET"), f"@10.0.{R.randint(0, 9)}.{R.randint(2, 250)}:5432/billing failed\n")  # fmt: skip
        elif what < 0.47:
            d.add(
                f"loaded config commit={sha(40)} image=registry.example.com/api@sha256:{sha(64)}\n"
            )
        elif what < 0.54:
            d.add("customer updated email=", (email(), "EMAIL"), f" id={object_id()}\n")
        else:
            d.add(f"processed {number_negative()} in {R.randint(1, 9000)}ms trace={rand(HEX, 32)} span={rand(HEX, 16)}\n")  # fmt: skip
    return d


def env_file(lang: str) -> Doc:
    d = Doc().add(pick("My .env for staging, the app says unauthorized:", "docker-compose won't start with this env:"), "\n\n")  # fmt: skip
    d.add(f"APP_VERSION={version()}\nPORT={R.randint(3000, 9000)}\nTZ=Europe/Berlin\n")
    d.add(pick("OPENAI_API_KEY=", "ANTHROPIC_API_KEY=", "GITHUB_TOKEN=", "AWS_ACCESS_KEY_ID="), (provider_key(), "SECRET"), "\n")  # fmt: skip
    if R.random() < 0.6:
        d.add(pick("AWS_SECRET_ACCESS_KEY=", "JWT_SECRET=", "SESSION_SECRET=", "WEBHOOK_SIGNING_SECRET="), (token(40), "SECRET"), "\n")  # fmt: skip
    d.add(f"SENTRY_RELEASE={sha(40)}\nCDN_URL=https://cdn.example.com/{rand(HEX, 12)}/\n")
    d.add("DATABASE_URL=mysql://app:", (password().replace("@", "").replace("#", ""), "SECRET"), f"@db:{R.randint(3300, 3399)}/shop\n")  # fmt: skip
    d.add(
        f"STRIPE_PUBLISHABLE_KEY=pk_test_{rand(ALNUM, 24)}\nFEATURE_FLAGS=checkout_v2,new_invoice_layout\n"
    )
    d.add(
        f"# OPENAI_API_KEY={pick('YOUR_KEY', 'sk-...', '<paste your key>', 'sk-xxxxxxxxxxxxxxxxxxxxxxxx')}\n"
    )
    d.add(f"LAST_EXPORT_REF={secret_negative()}\nSUPPORT_PHONE=", (phone(pick("DE", "GB", "FR")), "PHONE"), "\n")  # fmt: skip
    if R.random() < 0.4:
        d.add("REDIS_PASSWORD=", (password(), "SECRET"), "\n")
    d.add("ADMIN_IP_ALLOWLIST=", (ipv4(), "IP"), "\n")
    return d


def code(lang: str) -> Doc:
    d = Doc().add(pick("This test is flaky, any idea?", "Review this client code:", "Convert this to TypeScript:"), "\n```python\n")  # fmt: skip
    d.add(f"import hashlib\nfrom decimal import Decimal\n\nTIMEOUT = {R.randint(1, 60)}\nSCHEMA_VERSION = \"{version()}\"\n")  # fmt: skip
    d.add(f"FIXTURE_ORDER = {{\"id\": \"{object_id()}\", \"number\": \"{order_number()}\", \"total\": Decimal(\"{R.randint(1, 9999)}.{R.randint(0, 99):02d}\")}}\n")  # fmt: skip
    style = R.randint(0, 5)
    if style == 0:
        d.add('client = Client(api_key="', (provider_key(), "SECRET"), '")\n')
    elif style == 1:
        d.add('session.headers["Authorization"] = "Bearer ', (token(), "SECRET"), '"\n')
    elif style == 2:
        d.add('SECRET_KEY = "', (token(50), "SECRET"), '"\n')
    elif style == 3:
        d.add('client = Client(api_key=os.environ["API_KEY"])  # never hard-code it\n')
    elif style == 4:
        d.add('conn = psycopg.connect(host="db", user="svc", password="', (password(), "SECRET"), '")\n')  # fmt: skip
    else:
        d.add(f'client = Client(api_key="{pick("sk-...", "YOUR_API_KEY", "<api-key>", "sk-xxxxxxxxxxxxxxxx")}")\n')  # fmt: skip
    d.add(f"\n\ndef test_{pick('refund', 'checkout', 'invoice')}_{R.randint(1, 99)}():\n")
    d.add(f'    assert digest(b"payload") == "{sha(64)}"\n')
    d.add(f'    assert parse_phone("{R.randint(10**6, 10**7)}") is None  # order id, not a phone\n')
    d.add(f'    user_id = "{uuid.uuid4()}"\n    img = "{secret_negative()}"\n')
    d.add(f"    when = datetime({R.randint(2020, 2026)}, {R.randint(1, 12)}, {R.randint(1, 28)}, {R.randint(0, 23)}, {R.randint(0, 59)})\n")  # fmt: skip
    d.add(f"    assert total_cents == {R.randint(10**5, 10**8)}\n```\n")
    return d


def js_bundle(lang: str) -> Doc:
    d = Doc().add("Why is this bundle so large? A slice of it:\n\n")
    parts = []
    for _ in range(R.randint(4, 8)):
        parts.append(pick(
            f'!function(e){{var t={{}};function n(r){{if(t[r])return t[r].exports}}n.p="/static/{rand(HEX, 8)}/"}}([]);',  # noqa: E501
            f'.css-{rand(string.ascii_lowercase + string.digits, 6)}{{padding:{R.randint(0, 24)}px;width:{R.randint(100, 1200)}px;transition:all .{R.randint(1, 9)}s}}',  # noqa: E501
            f'"integrity":"sha512-{base64.b64encode(R.randbytes(64)).decode()}"',
            f'"mappings":"{";".join(rand("ABCDEFGIKMOQSUYacgikmoqsuy", 6) + "," + rand("ACEGIKMOQSUWYacegikmoqsuwy", 8) for _ in range(5))}"',  # noqa: E501
            f'src:url(data:font/woff2;base64,{base64.b64encode(R.randbytes(120)).decode()}) format("woff2")',
            f'const u="{uuid.uuid4()}",v="{version()}",b={R.randint(10**9, 10**12)};',
            f'var __BUILD_ID__="{rand(ALNUM + "-_", 21)}";',
        ))  # fmt: skip
    d.add("".join(parts), "\n")
    return d


def yaml_config(lang: str) -> Doc:
    d = Doc().add("Kubernetes manifest, the pod crash-loops:\n\n```yaml\n")
    d.add(f"metadata:\n  name: api-{rand(string.ascii_lowercase + string.digits, 5)}\n  uid: {uuid.uuid4()}\n  resourceVersion: \"{R.randint(10**6, 10**9)}\"\n")  # fmt: skip
    d.add(f"spec:\n  containers:\n    - image: registry.example.com/api:{version().replace(' ', '-')}\n      ports: [{{containerPort: {R.randint(3000, 9000)}}}]\n")  # fmt: skip
    d.add(
        "      env:\n        - name: DB_PASSWORD\n          value: ", (password(), "SECRET"), "\n"
    )
    if R.random() < 0.5:
        d.add('        - name: API_TOKEN\n          value: "', (token(), "SECRET"), '"\n')
    d.add(f"        - name: BUILD_SHA\n          value: \"{sha(40)}\"\n        - name: CACHE_KEY_PREFIX\n          value: \"{rand(string.ascii_lowercase, 8)}-v{R.randint(1, 9)}\"\n")  # fmt: skip
    d.add(
        f"      resources: {{limits: {{memory: {R.randint(128, 4096)}Mi, cpu: {R.randint(100, 4000)}m}}}}\n"
    )
    if R.random() < 0.4:
        d.add("  tls.crt: |\n    -----BEGIN CERTIFICATE-----\n    " + base64.b64encode(R.randbytes(96)).decode() + "\n    -----END CERTIFICATE-----\n")  # fmt: skip
    if R.random() < 0.3:
        d.add("  tls.key: |\n    ", (pem().replace("\n", "\n    "), "SECRET"), "\n")
    d.add(f"  authorized_key: \"{secret_negative() if R.random() < 0.3 else 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + base64.b64encode(R.randbytes(24)).decode().rstrip('=')}\"\n```\n")  # fmt: skip
    return d


def signature(lang: str) -> Doc:
    d = Doc().add(prose(lang, 2), "\n\n", pick("Best regards", "Mit freundlichen Grüßen", "Cordialement", "Saludos", "Cordiali saluti", "Met vriendelijke groet"), ",\n")  # fmt: skip
    d.add(
        person(), "\n", pick("Head of Procurement", "Key Account Manager", "Support Engineer"), "\n"
    )
    region = region_of(lang)
    label = pick("T: ", "Tel. ", "Phone: ", "☎ ", "Office: ", "Direct: ", "P ")
    d.add(label, (us_phone() if region == "US" else phone(region), "PHONE"), "\n")
    if R.random() < 0.6:
        d.add(pick("M: ", "Mobile: ", "Mob. ", "Cell: ", "Handy: "), (phone(region if region != "US" else "GB"), "PHONE"), "\n")  # fmt: skip
    if R.random() < 0.3:
        d.add("Fax: ", (phone(region if region != "US" else "DE", "national"), "PHONE"), "\n")
    d.add((email(), "EMAIL"), " | www.example.com\n")
    d.add(f"Example GmbH · Hauptstraße {R.randint(1, 200)} · {R.randint(10000, 99999)} Berlin\n")
    d.add(f"Amtsgericht Berlin HRB {R.randint(10000, 999999)} · USt-IdNr. DE{R.randint(10**8, 10**9 - 1)}\n")  # fmt: skip
    return d


def ticket(lang: str) -> Doc:
    d = Doc().add(f"Ticket #{R.randint(100000, 999999)} — {date()} {clock()}\n")
    d.add(f"{pick('Customer', 'Kunde', 'Client', 'Cliente')}: {person()}\n\n", prose(lang), " ")
    label = R.choice(PHONE_LABEL[lang])
    d.add(label + pick(" ", " ", ":\n"), (any_phone(lang), "PHONE"), ". ")
    d.add(f"{pick('Order', 'Bestellung', 'Commande', 'Pedido', 'Ordine', 'Bestelling', 'Pedido', '注文番号', 'Zamówienie')} {order_number()}, ")  # fmt: skip
    d.add(f"{price()}, {pick('delivered', 'geliefert', 'livré', 'entregado')} {date()}. ")
    if R.random() < 0.4:
        d.add(f"{number_negative()}; {number_negative()}. ")
    if R.random() < 0.3:
        d.add("IBAN: ", (iban(), "IBAN"), ". ")
    if R.random() < 0.2:
        d.add("card ", (card(), "CARD"), f" exp {R.randint(1, 12):02d}/{R.randint(26, 31)}. ")
    d.add("\n", prose(lang))
    return d


def invoice(lang: str) -> Doc:
    d = Doc().add(pick("INVOICE", "RECHNUNG", "FACTURE", "FACTURA"), f" {R.randint(2023, 2026)}-{R.randint(1000, 99999)}\n")  # fmt: skip
    d.add(f"Date: {date()}   Due: {date()}\nCustomer no.: {R.randint(10**5, 10**8)}\nVAT ID: DE{R.randint(10**8, 10**9 - 1)}\n\n")  # fmt: skip
    d.add("| Pos | Item | Qty | Unit price | Total |\n|---|---|---|---|---|\n")
    for i in range(R.randint(2, 6)):
        d.add(f"| {i + 1} | Art. {R.randint(100000, 999999)} {pick('Cable', 'Adapter', 'Licence', 'Support hours')} {measurement()} | {R.randint(1, 500)} | {price()} | {price()} |\n")  # fmt: skip
    d.add(f"\nSubtotal {price()}, VAT 19 %, total {price()}\n")
    d.add("Please pay to IBAN ", (iban(), "IBAN"), f", reference {R.randint(10**9, 10**11)}.\n")
    d.add(f"Questions? {pick('Call', 'Phone', 'Tel.', 'Kundenservice:', 'Customer service', 'Service client :')} ", (phone(pick("DE", "AT", "CH", "GB", "FR")), "PHONE"), ".\n")  # fmt: skip
    return d


def shipping(lang: str) -> Doc:
    d = Doc().add(pick("Shipping notification", "Versandbestätigung", "Avis d'expédition"), "\n")
    d.add(
        f"Tracking: 1Z{rand(string.ascii_uppercase + string.digits, 16)} / {R.randint(10**11, 10**12)}\n"
    )
    d.add(
        f"Parcel {measurement()}, {R.randint(1, 30)},{R.randint(0, 9)} kg, {R.randint(1, 5)} pieces\n"
    )
    d.add(f"Ship to: {person()}, {R.randint(1, 300)} {pick('Main St', 'Rue de la Paix', 'Calle Mayor')}, {postcode()}\n")  # fmt: skip
    d.add("Recipient phone: ", (any_phone(lang), "PHONE"), "\n")
    d.add(f"Pickup window {clock()}–{clock()}, depot {R.randint(100, 999)}, route {R.randint(10, 99)}-{R.randint(100, 999)}\n")  # fmt: skip
    d.add(f"Customs value {price()}, HS code {R.randint(1000, 9999)}.{R.randint(10, 99)}.{R.randint(10, 99)}\n")  # fmt: skip
    return d


def chat(lang: str) -> Doc:
    d = Doc()
    for _ in range(R.randint(3, 6)):
        d.add(pick("user: ", "User: ", "> "), prose(lang), " ")
        roll = R.random()
        if roll < 0.2:
            label = R.choice(PHONE_LABEL[lang])
            d.add(f"{label} ", (any_phone(lang), "PHONE"))
        elif roll < 0.3:
            d.add(pick("my key is ", "here's the token: ", "api key "), (provider_key(), "SECRET"))
        elif roll < 0.38:
            d.add("my SSN is ", (ssn(), "SSN"))
        elif roll < 0.45:
            d.add(f"{pick('mail', 'E-Mail', 'correo')}: ", (email(), "EMAIL"))
        elif roll < 0.75:
            d.add(number_negative(), ", ", number_negative())
        else:
            d.add(secret_negative())
        d.add(
            "\n", pick("assistant: ", "Assistant: ", "< "), prose("en"), f" {number_negative()}\n"
        )
    return d


def secret_prose(lang: str) -> Doc:
    d = Doc().add(prose("en"), " ")
    roll = R.randint(0, 12)
    if roll == 6 and R.random() < 0.4:
        d.add(pick("here is the token for prod: ", "the API key I use is: ", "Secret for the staging bucket -> "), (token(), "SECRET"), "\n")  # fmt: skip
    elif roll == 6 and R.random() < 0.5:
        d.add(pick("password for root: ", "Passwort für den Admin: ", "mot de passe pour le compte : "), (password(), "SECRET"), ". ")  # fmt: skip
    elif roll == 6:
        d.add(pick("The admin password is ", "Passwort: ", "contraseña: ", "senha=", "wachtwoord: ",
                   "mot de passe : ", "Kennwort = ", "the wifi password is "), (password(), "SECRET"), ". ")  # fmt: skip
    elif roll == 7:
        d.add("Authorization: Basic ", (base64.b64encode(f"{R.choice(GIVEN).lower()}:{password()}".encode()).decode(), "SECRET"), "\n")  # fmt: skip
    elif roll == 8:
        d.add(pick("Here is the key: ", "new token -> ", "rotated key ", "Key: "), (provider_key(), "SECRET"), "\n")  # fmt: skip
    elif roll == 0:
        d.add("Run `curl -H 'Authorization: Bearer ", (token(), "SECRET"), "' https://api.example.com/v1/me`. ")  # fmt: skip
    elif roll == 1:
        d.add("The callback URL is https://app.example.com/cb?access_token=", (token(), "SECRET"), f"&state={rand(HEX, 16)}. ")  # fmt: skip
    elif roll == 2:
        d.add("export GITLAB_TOKEN=", (provider_key(), "SECRET"), " && ./deploy.sh\n")
    elif roll == 3:
        d.add(
            '{"client_id": "', rand(HEX, 24), '", "client_secret": "', (token(), "SECRET"), '"}\n'
        )
    elif roll == 4:
        d.add("git remote set-url origin https://ci-bot:", (token(), "SECRET"), "@git.example.com/team/repo.git\n")  # fmt: skip
    elif roll == 5:
        d.add("the deploy key:\n", (pem(), "SECRET"), "\n")
    elif roll == 9:
        d.add("I downloaded the credentials file:\n\nUser name,Access key ID,Secret access key,Console login link\n")  # fmt: skip
        d.add(f"{R.choice(GIVEN).lower()},", ("AKIA" + rand(string.ascii_uppercase + "234567", 16), "SECRET"), ",", (token(40), "SECRET"), f",https://{R.randint(10**11, 10**12)}.signin.aws.amazon.com/console\n")  # fmt: skip
    elif roll == 10:
        d.add("My ~/.netrc:\nmachine api.example.com login ci-bot password ", (password().replace("#", "") + "7", "SECRET"), "\n")  # fmt: skip
    elif roll == 11:
        d.add("curl -u admin:", (password().replace("#", "").replace("!", ""), "SECRET"), f" https://jenkins.example.com/job/build-{R.randint(10, 999)}/api/json\n")  # fmt: skip
    else:
        d.add("Alerts go to https://hooks.slack.com/services/", ("T" + rand(string.ascii_uppercase + string.digits, 10) + "/B" + rand(string.ascii_uppercase + string.digits, 10) + "/" + rand(ALNUM, 24), "SECRET"), "\n")  # fmt: skip
    d.add(
        f"Unrelated: {secret_negative()} and {secret_negative()}; commit {sha(R.choice([7, 12, 40]))}. "
    )
    return d


def tech_no_pii(lang: str) -> Doc:
    d = Doc().add(prose(lang), "\n")
    for _ in range(R.randint(4, 9)):
        d.add(pick(f"{number_negative()} ", f"{secret_negative()} ", f"{number_negative()}\n", f"{secret_negative()}\n"))  # fmt: skip
    d.add(f"\n{pick('Benchmark', 'Messwerte', 'Résultats')}:\n")
    for _ in range(R.randint(2, 5)):
        d.add(f"{R.randint(1, 64):>4} {R.randint(1000, 99999):>8} {R.randint(100, 9999):>6}.{R.randint(0, 99):02d} {R.randint(10**6, 10**8):>10}\n")  # fmt: skip
    return d


KINDS = {"csv": csv_table, "ssn_table": ssn_table, "form": ssn_form, "ssn_prose": ssn_prose,
         "json": json_payload, "access_log": access_log, "log": app_log, "env": env_file,
         "code": code, "js": js_bundle, "yaml": yaml_config, "email": signature,
         "ticket": ticket, "invoice": invoice, "shipping": shipping, "chat": chat,
         "secret_prose": secret_prose, "none": tech_no_pii}  # fmt: skip
GENERIC_KIND = {"ssn_table": "csv", "ssn_prose": "prose", "access_log": "log", "env": "config",
                "js": "code", "yaml": "config", "ticket": "prose", "invoice": "form",
                "shipping": "form", "secret_prose": "prose", "none": "prose"}  # fmt: skip


def main() -> None:
    langs = list(PROSE)
    records = []
    for i in range(540):
        kind = list(KINDS)[i % len(KINDS)]
        lang = R.choice(langs) if kind in ("ticket", "chat", "email", "none", "csv", "json") else pick("en", "en", "de", "fr", "es")  # fmt: skip
        doc = KINDS[kind](lang)
        records.append({"id": f"dev2-{i:04d}", "kind": GENERIC_KIND.get(kind, kind), "lang": lang,
                        "text": doc.text, "spans": doc.spans})  # fmt: skip
    with OUT.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records, {sum(len(r['spans']) for r in records)} spans -> {OUT.name}")


if __name__ == "__main__":
    main()
