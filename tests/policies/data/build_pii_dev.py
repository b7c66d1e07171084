"""Builds pii_dev.jsonl, the labelled development set of the PII detector.

    .venv/bin/python tests/policies/data/build_pii_dev.py

Records are realistic prompts of several kinds (prose, code, JSON, chat, logs, e-mail,
forms, CSV, configuration) in several languages. Values are generated (seeded) and their
offsets computed while the text is assembled, never typed. Every secret-looking value is
random: none is a real credential. Hard negatives (Luhn-failing card-like numbers, UUIDs,
versions, order numbers, hashes, dates, timestamps, prices, ISBNs, MAC addresses) are mixed
into the same records, unlabelled.
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
from stdnum import ean, luhn
from stdnum import iban as stdnum_iban

OUT = Path(__file__).with_name("pii_dev.jsonl")
R = random.Random(20251204)
ALNUM = string.ascii_letters + string.digits


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


# --- values -----------------------------------------------------------------------------------

FIRST = ["ana", "bob", "chen", "dieter", "elodie", "farah", "giulia", "hiro", "ines", "jonas",
         "kemal", "lena", "marta", "noah", "olga", "pierre", "quinn", "rosa", "sven", "yuki"]  # fmt: skip
LAST = ["lima", "stone", "wang", "mueller", "dubois", "khan", "rossi", "tanaka", "garcia",
        "berg", "yilmaz", "novak", "silva", "smith", "ivanova", "martin", "oconnor"]  # fmt: skip
DOMAINS = ["example.org", "example.com", "mail.example.net", "acme-corp.io", "firma.de",
           "societe.fr", "empresa.es", "uni-hamburg.de", "corp.example.co.uk", "startup.ai"]  # fmt: skip


def email() -> str:
    f, last = R.choice(FIRST), R.choice(LAST)
    local = R.choice([f"{f}.{last}", f"{f}{R.randint(1, 99)}", f"{f[0]}{last}", f"{f}+{R.choice(['news', 'work', 'x'])}", f"{f}_{last}"])  # fmt: skip
    if R.random() < 0.15:
        local = local.capitalize()
    return f"{local}@{R.choice(DOMAINS)}"


PHONE_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "JP", "AU", "IN", "BR", "CH", "CA", "MX", "SE", "PL"]  # fmt: skip
FORMATS = [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL,
           phonenumbers.PhoneNumberFormat.E164]  # fmt: skip


def phone(region: str | None = None, style: str | None = None) -> str:
    region = region or R.choice(PHONE_REGIONS)
    kind = R.choice([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE])
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    nsn = str(example.national_number)
    for _ in range(50):
        tail = rand(string.digits, 4)
        candidate = phonenumbers.parse(f"+{example.country_code}{nsn[:-4]}{tail}")
        if phonenumbers.is_valid_number(candidate):
            break
    else:
        candidate = example
    style = style or R.choice(["intl", "intl", "national", "national", "e164", "custom"])
    if style == "intl":
        return phonenumbers.format_number(candidate, FORMATS[0])
    if style == "national":
        return phonenumbers.format_number(candidate, FORMATS[1])
    if style == "e164":
        return phonenumbers.format_number(candidate, FORMATS[2])
    intl = phonenumbers.format_number(candidate, FORMATS[0])
    return R.choice([intl.replace(" ", "-"), intl.replace(" ", "."), "00" + intl[1:]])


US_PHONE_STYLES = ["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}"]


def us_phone() -> str:
    while True:
        a = f"{R.randint(2, 9)}{R.randint(0, 9)}{R.randint(0, 9)}"
        b = f"{R.randint(2, 9)}{R.randint(0, 9)}{R.randint(0, 9)}"
        c = rand(string.digits, 4)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}{b}{c}")):
            return R.choice(US_PHONE_STYLES).format(a=a, b=b, c=c)


CARD_PREFIXES = ["4", "4", "51", "53", "55", "2221", "34", "37", "6011", "65", "3530", "36"]


def card(valid: bool = True) -> str:
    prefix = R.choice(CARD_PREFIXES)
    length = 15 if prefix in ("34", "37") else 14 if prefix == "36" else 16
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    check = luhn.calc_check_digit(body)
    if not valid:
        check = str((int(check) + R.randint(1, 9)) % 10)
    digits = body + check
    sep = R.choice([" ", "-", "", " "])
    if length == 16:
        return sep.join(digits[i : i + 4] for i in range(0, 16, 4))
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join([digits[:4], digits[4:10], digits[10:]])


IBAN_BBAN = {"DE": "18n", "FR": "10n11c2n", "GB": "4a14n", "ES": "20n", "IT": "1a10n12c",
             "NL": "4a10n", "BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n", "PT": "21n",
             "IE": "4a14n", "SE": "20n", "NO": "11n", "DK": "14n"}  # fmt: skip


def iban(compact: bool | None = None) -> str:
    country = R.choice(list(IBAN_BBAN))
    while True:  # some countries add a national check digit to the BBAN: draw until it holds
        bban = ""
        num = ""
        for ch in IBAN_BBAN[country]:
            if ch.isdigit():
                num += ch
                continue
            chars = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[ch]  # fmt: skip
            bban += rand(chars, int(num))
            num = ""
        value = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
        if stdnum_iban.is_valid(value):
            break
    if compact is None:
        compact = R.random() < 0.35
    return value if compact else " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def ssn() -> str:
    area = R.choice([R.randint(1, 665), R.randint(667, 899)])
    return f"{area:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"


def ipv4() -> str:
    return R.choice([
        f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
        f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}",
        f"{R.randint(11, 223)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
        f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
    ])  # fmt: skip


def ipv6() -> str:
    groups = [f"{R.randint(0, 0xFFFF):x}" for _ in range(8)]
    return R.choice([
        "2001:db8:" + ":".join(groups[2:]),
        f"2001:db8::{groups[6]}:{groups[7]}",
        f"fe80::{groups[4]}:{groups[5]}:{groups[6]}:{groups[7]}",
        f"2a00:1450:4001:{groups[3]}::200e",
        "::1",
        f"::ffff:192.0.2.{R.randint(1, 254)}",
        ":".join(g.zfill(4) for g in groups),
    ])  # fmt: skip


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    header = b64url(json.dumps({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(R.randint(1000, 99999)), "name": R.choice(FIRST), "iat": R.randint(1600000000, 1760000000)}).encode())  # fmt: skip
    return f"{header}.{payload}.{b64url(R.randbytes(32))}"


def pem() -> str:
    kind = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    body = base64.b64encode(R.randbytes(R.choice([120, 240, 400]))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


def api_key() -> str:
    return R.choice([
        lambda: "sk-proj-" + rand(ALNUM + "_-", 40) + "T3BlbkFJ" + rand(ALNUM + "_-", 40),
        lambda: "sk-" + rand(ALNUM, 48),
        lambda: "sk-ant-api03-" + rand(ALNUM + "_-", 93) + "AA",
        lambda: "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
        lambda: "ghp_" + rand(ALNUM, 36),
        lambda: "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59),
        lambda: f"xoxb-{R.randint(10**10, 10**12)}-{R.randint(10**10, 10**12)}-" + rand(ALNUM, 24),
        lambda: "sk_live_" + rand(ALNUM, 24),
        lambda: "rk_live_" + rand(ALNUM, 24),
        lambda: "AIza" + rand(ALNUM + "_-", 35),
        lambda: "glpat-" + rand(ALNUM + "_-", 20),
        lambda: "hf_" + rand(string.ascii_letters, 34),
        lambda: "SG." + rand(ALNUM + "_-", 22) + "." + rand(ALNUM + "_-", 43),
        lambda: "npm_" + rand(ALNUM, 36),
        jwt,
    ])()  # fmt: skip


def password() -> str:
    return (
        rand(ALNUM, R.randint(8, 14)) + R.choice(["!", "#", "", "%", "?"]) + str(R.randint(0, 99))
    )


def random_token() -> str:
    while True:
        value = rand(ALNUM, R.choice([24, 32, 40]))
        if sum(c.isdigit() for c in value) >= 3 and sum(c.isupper() for c in value) >= 3:
            return value


# --- hard negatives ---------------------------------------------------------------------------


def negative() -> str:
    return R.choice([
        lambda: card(valid=False),
        lambda: str(uuid.UUID(int=R.getrandbits(128), version=4)),
        lambda: f"v{R.randint(0, 9)}.{R.randint(0, 30)}.{R.randint(0, 99)}",
        lambda: f"version {R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 99)}",
        lambda: f"order #{R.randint(100000, 99999999)}",
        lambda: f"ORD-{R.randint(2019, 2025)}-{R.randint(0, 999999):06d}",
        lambda: f"invoice {R.randint(10**7, 10**10)}",
        lambda: hashlib.sha1(R.randbytes(8)).hexdigest(),
        lambda: "sha256:" + hashlib.sha256(R.randbytes(8)).hexdigest(),
        lambda: hashlib.sha256(R.randbytes(8)).hexdigest(),
        lambda: f"{R.randint(2019, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}",
        lambda: f"{R.randint(1, 28):02d}.{R.randint(1, 12):02d}.{R.randint(2019, 2026)}",
        lambda: f"{R.randint(1, 12)}/{R.randint(1, 28)}/{R.randint(2019, 2026)}",
        lambda: f"{R.randint(2019, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z",  # noqa: E501
        lambda: str(R.randint(1600000000, 1760000000)),
        lambda: str(R.randint(1600000000000, 1760000000000)),
        lambda: f"${R.randint(1, 9)},{R.randint(100, 999)}.{R.randint(0, 99):02d}",
        lambda: f"{R.randint(10, 9999)},{R.randint(0, 99):02d} €",
        lambda: f"ISBN {isbn13()}",
        lambda: isbn13(),
        lambda: ":".join(f"{R.randint(0, 255):02x}" for _ in range(6)),
        lambda: f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
        lambda: f"port {R.randint(1024, 65535)}",
        lambda: f"{R.randint(1, 99)}.{R.randint(0, 9)}%",
        lambda: "commit " + hashlib.sha1(R.randbytes(8)).hexdigest()[:7],
        lambda: f"{R.randint(1280, 3840)}x{R.randint(720, 2160)}",
        lambda: "getUserAccountSettingsByIdV2",
        lambda: f"lodash@4.17.{R.randint(10, 21)}",
        lambda: "icon@2x.png",
        lambda: "std::vector<int>::iterator",
        lambda: f"+{R.randint(1, 40)}% vs last quarter",
        lambda: f"tracking number 1Z{rand(string.ascii_uppercase + string.digits, 16)}",
        lambda: f"build {R.randint(1000, 99999)}",
        lambda: f"lat {R.uniform(-90, 90):.6f}, lon {R.uniform(-180, 180):.6f}",
    ])()  # fmt: skip


def isbn13() -> str:
    body = "978" + rand(string.digits, 9)
    digits = body + ean.calc_check_digit(body)
    return f"{digits[:3]}-{digits[3]}-{digits[4:7]}-{digits[7:12]}-{digits[12]}"


# --- record kinds -----------------------------------------------------------------------------

FILLER = {
    "en": ["Can you help me rewrite this so it sounds more professional?",
           "The quarterly numbers look fine, but the churn in the enterprise tier worries me.",
           "Please summarise the thread below in three bullet points.",
           "We migrated the service last week and some requests still time out.",
           "Keep the tone friendly and do not promise a delivery date."],
    "de": ["Kannst du mir helfen, diese E-Mail höflicher zu formulieren?",
           "Die Lieferung kam leider beschädigt an, bitte um Rückmeldung.",
           "Fasse den folgenden Verlauf in drei Sätzen zusammen.",
           "Wir haben den Vertrag zum Monatsende gekündigt."],
    "fr": ["Peux-tu reformuler ce message pour le client ?",
           "La facture du mois dernier comporte une erreur de montant.",
           "Merci de résumer l'échange ci-dessous en quelques lignes.",
           "Le rendez-vous est confirmé pour jeudi après-midi."],
    "es": ["¿Puedes ayudarme a redactar una respuesta al cliente?",
           "El pedido llegó incompleto y necesitamos una solución.",
           "Resume la conversación siguiente en tres puntos.",
           "La reunión se ha movido al lunes por la mañana."],
    "ja": ["この問い合わせへの返信を丁寧な日本語で書いてください。",
           "先週の障害について、原因と対策をまとめてください。",
           "以下の内容を三行で要約してください。"],
    "it": ["Puoi riscrivere questa mail in modo più formale?",
           "Il pacco non è ancora arrivato, potete verificare?"],
    "nl": ["Kun je deze klacht netjes beantwoorden?",
           "De factuur van vorige maand klopt niet."],
    "pt": ["Pode resumir esta conversa em poucas linhas?",
           "O pagamento foi recusado duas vezes."],
}  # fmt: skip
PHONE_WORD = {"en": "phone", "de": "Telefon", "fr": "téléphone", "es": "teléfono", "ja": "電話番号",
              "it": "telefono", "nl": "telefoon", "pt": "telefone"}  # fmt: skip
EMAIL_WORD = {"en": "email", "de": "E-Mail", "fr": "courriel", "es": "correo", "ja": "メール",
              "it": "email", "nl": "e-mail", "pt": "e-mail"}  # fmt: skip
LANG_REGION = {"en": "GB", "de": "DE", "fr": "FR", "es": "ES", "ja": "JP", "it": "IT", "nl": "NL", "pt": "PT"}  # fmt: skip


def filler(lang: str, n: int = 1) -> str:
    return " ".join(R.choice(FILLER[lang]) for _ in range(n))


def pii_item(lang: str):
    kind = R.choice(["EMAIL", "PHONE", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET"])
    if kind == "EMAIL":
        return f"{EMAIL_WORD[lang]}: ", (email(), "EMAIL")
    if kind == "PHONE":
        value = us_phone() if lang == "en" and R.random() < 0.5 else phone(R.choice([LANG_REGION[lang], None]))  # fmt: skip
        return f"{PHONE_WORD[lang]}: ", (value, "PHONE")
    if kind == "CARD":
        return R.choice(["card ", "Karte ", "carte ", "tarjeta ", "カード "]), (card(), "CARD")
    if kind == "IBAN":
        return "IBAN ", (iban(), "IBAN")
    if kind == "SSN":
        return R.choice(["SSN ", "social security number ", "SSN: "]), (ssn(), "SSN")
    if kind == "IP":
        return R.choice(["from ", "host ", "IP ", "server "]), (R.choice([ipv4, ipv6])(), "IP")
    return R.choice(["key ", "token: ", "API key "]), (api_key(), "SECRET")


def prose(lang: str) -> Doc:
    d = Doc().add(filler(lang, R.randint(1, 3)), " ")
    for _ in range(R.randint(1, 4)):
        label, value = pii_item(lang)
        d.add(label, value, ". ", filler(lang), " ")
        if R.random() < 0.6:
            d.add(f"({negative()}) ", filler(lang), " ")
    return d


def email_kind(lang: str) -> Doc:
    d = Doc().add("From: ", (email(), "EMAIL"), "\nTo: ", (email(), "EMAIL"))
    d.add(f"\nDate: {negative() if R.random() < 0.3 else 'Mon, 3 Nov 2025 09:14:22 +0100'}\nSubject: Re: {R.choice(['Invoice', 'Order', 'Access'])} {R.randint(1000, 99999)}\n\n")  # fmt: skip
    d.add(filler(lang, 2), "\n\n")
    if R.random() < 0.7:
        d.add(f"{PHONE_WORD[lang]}: ", (phone(LANG_REGION[lang]), "PHONE"), "\n")
    if R.random() < 0.4:
        d.add("IBAN: ", (iban(), "IBAN"), "\n")
    d.add(f"Ref: {negative()}\n--\nSent from my phone")
    return d


def chat(lang: str) -> Doc:
    d = Doc()
    for _ in range(R.randint(2, 5)):
        d.add(R.choice(["user: ", "User: ", "[user] "]), filler(lang), " ")
        if R.random() < 0.6:
            label, value = pii_item(lang)
            d.add(label, value)
        if R.random() < 0.4:
            d.add(" ", negative())
        d.add("\n", R.choice(["assistant: ", "Assistant: ", "[assistant] "]), filler("en"), "\n")
    return d


def json_kind(lang: str) -> Doc:
    d = Doc().add('{\n  "customer": {\n    "id": "', str(uuid.UUID(int=R.getrandbits(128), version=4)), '",\n')  # fmt: skip
    d.add('    "email": "', (email(), "EMAIL"), '",\n')
    d.add('    "phone": "', (phone(R.choice([LANG_REGION[lang], None]), R.choice(["intl", "e164"])), "PHONE"), '",\n')  # fmt: skip
    if R.random() < 0.5:
        d.add('    "iban": "', (iban(), "IBAN"), '",\n')
    d.add(f'    "created_at": "{negative()}",\n    "orders": {R.randint(0, 400)},\n')
    d.add(f'    "last_order": "{negative()}",\n')
    if R.random() < 0.5:
        d.add('    "last_ip": "', (R.choice([ipv4, ipv6])(), "IP"), '",\n')
    if R.random() < 0.4:
        d.add('    "card": "', (card(), "CARD"), '",\n')
    d.add(f'    "checksum": "{hashlib.sha256(R.randbytes(8)).hexdigest()}",\n')
    d.add(
        f'    "total": {R.randint(1, 9999)}.{R.randint(0, 99):02d}\n  }},\n  "note": "{filler(lang)}"\n}}'
    )
    return d


def code_kind(lang: str) -> Doc:
    d = Doc().add(
        R.choice(["Why does this fail?\n\n```python\n", "Refactor this please:\n```python\n"])
    )
    d.add("import os\nimport requests\n\n")
    style = R.randint(0, 5)
    if style == 0:
        d.add('OPENAI_API_KEY = "', (api_key(), "SECRET"), '"\n')
    elif style == 1:
        d.add('DATABASE_URL = "postgres://app:', (password(), "SECRET"), '@db.internal:5432/app"\n')
    elif style == 2:
        d.add('client = Client(api_key="', (api_key(), "SECRET"), '", timeout=30)\n')
    elif style == 3:
        d.add('headers = {"Authorization": "Bearer ', (random_token(), "SECRET"), '"}\n')
    elif style == 4:
        d.add('PASSWORD = "', (password(), "SECRET"), '"\n')
    else:
        d.add('API_KEY = os.environ["API_KEY"]  # loaded from the environment\n')
    d.add(f"\n\ndef fetch(user_id: int) -> dict:\n    # see {negative()}\n")
    d.add(f'    resp = requests.get(f"https://api.example.com/v2/users/{{user_id}}", timeout=10)\n    assert resp.status_code == 200, "{negative()}"\n    return resp.json()\n')  # fmt: skip
    d.add(f"\n\nRETRIES = {R.randint(1, 9)}\nVERSION = \"{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}\"\n")  # fmt: skip
    d.add(f'BUILD_SHA = "{hashlib.sha1(R.randbytes(8)).hexdigest()}"\n```\n')
    if R.random() < 0.3:
        d.add(
            "The server is at ", (ipv4(), "IP"), " and it logs my mail ", (email(), "EMAIL"), ".\n"
        )
    return d


def log_kind(lang: str) -> Doc:
    d = Doc()
    for _ in range(R.randint(3, 8)):
        ts = f"2025-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{R.randint(0, 999):03d}Z"  # fmt: skip
        level = R.choice(["INFO", "WARN", "ERROR", "DEBUG"])
        d.add(f"{ts} {level} ")
        what = R.random()
        if what < 0.35:
            d.add("request from ", (R.choice([ipv4, ipv6])(), "IP"), f" took {R.randint(1, 900)}ms req_id={uuid.uuid4().hex[:16]}\n")  # fmt: skip
        elif what < 0.5:
            d.add("login ok user=", (email(), "EMAIL"), f" session={uuid.UUID(int=R.getrandbits(128), version=4)}\n")  # fmt: skip
        elif what < 0.6:
            d.add("connecting to mongodb+srv://svc:", (password(), "SECRET"), "@cluster0.example.net/prod\n")  # fmt: skip
        elif what < 0.7:
            d.add("auth header Bearer ", (jwt(), "SECRET"), "\n")
        else:
            d.add(f"job {R.randint(1000, 99999)} finished, {negative()} processed in {R.randint(1, 60)}.{R.randint(0, 9)}s\n")  # fmt: skip
    return d


def form_kind(lang: str) -> Doc:
    d = Doc().add("Please check this application form for mistakes:\n\n")
    d.add("Name: ", R.choice(FIRST).capitalize(), " ", R.choice(LAST).capitalize(), "\n")
    d.add("Email: ", (email(), "EMAIL"), "\n", "Phone: ", (us_phone() if R.random() < 0.5 else phone(), "PHONE"), "\n")  # fmt: skip
    if R.random() < 0.6:
        d.add("SSN: ", (ssn(), "SSN"), "\n")
    d.add(f"Date of birth: {R.randint(1, 12):02d}/{R.randint(1, 28):02d}/{R.randint(1950, 2004)}\n")
    d.add(f"Application no.: {R.randint(10**6, 10**9)}\n")
    if R.random() < 0.5:
        d.add("Card number: ", (card(), "CARD"), f"  Expiry: {R.randint(1, 12):02d}/{R.randint(26, 31)}  CVV: {R.randint(100, 999)}\n")  # fmt: skip
    if R.random() < 0.5:
        d.add("Bank account (IBAN): ", (iban(), "IBAN"), "\n")
    d.add(f"Amount requested: ${R.randint(1, 90)},{R.randint(0, 999):03d}.00\n")
    return d


def csv_kind(lang: str) -> Doc:
    d = Doc().add("Clean up this CSV export and tell me which rows are duplicates:\n\nid,email,phone,signup,plan,amount\n")  # fmt: skip
    for _ in range(R.randint(3, 8)):
        d.add(f"{R.randint(1000, 99999)},", (email(), "EMAIL"), ",", (phone(R.choice([LANG_REGION[lang], "US"]), R.choice(["intl", "e164"])), "PHONE"))  # fmt: skip
        d.add(f",{R.randint(2019, 2025)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d},{R.choice(['free', 'pro', 'team'])},{R.randint(0, 999)}.{R.randint(0, 99):02d}\n")  # fmt: skip
    return d


def config_kind(lang: str) -> Doc:
    d = Doc().add("Here is my config, why can't the app reach the database?\n\n```yaml\n")
    d.add("database:\n  host: ", (ipv4(), "IP"), f"\n  port: {R.choice([5432, 3306, 6379])}\n  user: app\n  password: ", (password(), "SECRET"), "\n")  # fmt: skip
    d.add("cache:\n  url: redis://:", (password(), "SECRET"), "@cache.internal:6379/0\n")
    d.add(f"app:\n  version: {R.randint(1, 5)}.{R.randint(0, 20)}.{R.randint(0, 9)}\n  release: {negative()}\n")  # fmt: skip
    if R.random() < 0.5:
        d.add("  stripe_key: ", ("sk_live_" + rand(ALNUM, 24), "SECRET"), "\n")
    d.add("```\n\nAlso the connection string for the reporting DB is `Server=tcp:reports.example.net,1433;Database=rpt;User ID=rpt;Password=", (password().replace(";", ""), "SECRET"), ";Encrypt=True;`\n")  # fmt: skip
    if R.random() < 0.5:
        d.add("\nand the deploy key:\n", (pem(), "SECRET"), "\n")
    if R.random() < 0.3:
        d.add("\nthe TLS certificate is fine:\n-----BEGIN CERTIFICATE-----\n" + base64.b64encode(R.randbytes(96)).decode() + "\n-----END CERTIFICATE-----\n")  # fmt: skip
    return d


def no_pii(lang: str) -> Doc:
    d = Doc().add(filler(lang, R.randint(2, 5)), " ")
    for _ in range(R.randint(2, 6)):
        d.add(negative(), " ", filler(lang), " ")
    return d


KINDS = {"prose": prose, "email": email_kind, "chat": chat, "json": json_kind, "code": code_kind,
         "log": log_kind, "form": form_kind, "csv": csv_kind, "config": config_kind,
         "none": no_pii}  # fmt: skip


def main() -> None:
    langs = list(FILLER)
    records = []
    for i in range(420):
        kind = list(KINDS)[i % len(KINDS)]
        lang = R.choice(langs) if kind in ("prose", "chat", "email", "none") else R.choice(["en", "en", "de", "fr", "es"])  # fmt: skip
        doc = KINDS[kind](lang)
        records.append({"id": f"dev-{i:04d}", "kind": "prose" if kind == "none" else kind, "lang": lang,
                        "text": doc.text, "spans": doc.spans})  # fmt: skip
    with OUT.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records, {sum(len(r['spans']) for r in records)} spans -> {OUT.name}")


if __name__ == "__main__":
    main()
