"""Builds pii_heldout.jsonl, the held-out PII detection set; never tune a detector on it.

Each record is assembled from pieces: plain text, gold spans (`S`) and hard negatives (`N`).
Offsets are computed while the text is assembled, then every span is checked against its
value, its type's validity rule (Luhn, IBAN mod-97, SSN area, phone numbering plan, IP
syntax, secret shape) and the whole text is scanned for look-alikes left unlabelled.

Run: python tests/policies/data/build_pii_heldout.py  (writes the JSONL beside this file)
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import json
import math
import random
import re
import string
import sys
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

SEED = 20240613
OUT = Path(__file__).with_name("pii_heldout.jsonl")
TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET", "PERSON", "ADDRESS")


# --------------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class S:
    """A gold span: `value` appears verbatim in the text and is labelled `type`."""

    value: str
    type: str
    meta: str = ""


@dataclass(frozen=True)
class N:
    """A hard negative: text that resembles PII of some type but is not labelled."""

    value: str
    category: str


Piece = str | S | N | list


def flatten(pieces: Iterable[Piece]) -> list[str | S | N]:
    out: list[str | S | N] = []
    for piece in pieces:
        if isinstance(piece, list | tuple):
            out.extend(flatten(piece))
        else:
            out.append(piece)
    return out


def fill(template: str, **values: Piece) -> list[Piece]:
    """Splits a `{name}` template into text and the pieces bound to each name."""
    out: list[Piece] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        if literal:
            out.append(literal)
        if field is not None:
            out.append(values[field])
    return out


def assemble(pieces: Iterable[Piece]) -> tuple[str, list[list], list[S], list[N]]:
    text_parts: list[str] = []
    spans: list[list] = []
    golds: list[S] = []
    negatives: list[N] = []
    pos = 0
    for piece in flatten(pieces):
        if isinstance(piece, S):
            spans.append([pos, pos + len(piece.value), piece.type])
            golds.append(piece)
            chunk = piece.value
        elif isinstance(piece, N):
            negatives.append(piece)
            chunk = piece.value
        else:
            chunk = piece
        text_parts.append(chunk)
        pos += len(chunk)
    return "".join(text_parts), spans, golds, negatives


# --------------------------------------------------------------------------- validity rules


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_ok(prefix + check):
            return prefix + check
    raise AssertionError(prefix)


IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "DE": 22, "ES": 24, "FR": 27, "GB": 22, "IE": 22,
    "IT": 27, "LU": 20, "NL": 18, "PL": 28, "PT": 25,
}  # fmt: skip


def mod97(alnum: str) -> int:
    return int("".join(str(int(c, 36)) for c in alnum)) % 97


def iban_mod97(iban: str) -> int:
    compact = iban.replace(" ", "")
    return mod97(compact[4:] + compact[:4])


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return iban_mod97(compact) == 1


def ssn_ok(ssn: str) -> bool:
    m = re.fullmatch(r"(\d{3})[- ](\d{2})[- ](\d{4})", ssn)
    if not m:
        return False
    area, group, serial = m.groups()
    return (
        area not in ("000", "666") and not area.startswith("9") and group != "00"
    ) and serial != "0000"


# National significant numbers per country, after the country code or trunk prefix is removed.
PHONE_PLANS = {
    "US": (("1",), "", r"[2-9]\d{2}[2-9]\d{6}"),
    "GB": (("44",), "0", r"20\d{8}|161\d{7}|113\d{7}|117\d{7}|7700\d{6}"),
    "DE": (("49",), "0", r"30\d{6,8}|89\d{7,8}|40\d{7,8}|221\d{6,8}|69\d{7,8}|1[5-7]\d{8,9}"),
    "FR": (("33",), "0", r"[1-79]\d{8}"),
    "ES": (("34",), "", r"[6-9]\d{8}"),
    "IT": (("39",), "", r"0\d{6,10}|3\d{8,9}"),
    "NL": (("31",), "0", r"(?:10|20|30|70)\d{7}|6\d{8}"),
    "PT": (("351",), "", r"2\d{8}|9[1236]\d{7}"),
    "JP": (("81",), "0", r"[36]\d{8}|[789]0\d{8}"),
    "CH": (("41",), "0", r"(?:22|31|44|61)\d{7}|7[6-9]\d{7}"),
    "AT": (("43",), "0", r"1\d{6,8}|6[5-9]\d{7,10}"),
    "BE": (("32",), "0", r"2\d{7}|4[5-9]\d{7}"),
    "IE": (("353",), "0", r"1\d{7}|8[3-9]\d{7}"),
    "AU": (("61",), "0", r"[2378]\d{8}|4\d{8}"),
    "IN": (("91",), "0", r"[6-9]\d{9}"),
}
US_AREAS = (
    "202", "206", "212", "213", "303", "305", "312", "404", "415", "512", "617", "646",
    "702", "718", "773", "801", "919",
)  # fmt: skip


def phone_ok(value: str, country: str) -> bool:
    codes, trunk, pattern = PHONE_PLANS[country]
    cleaned = value.replace("(0)", "")
    if not re.fullmatch(r"\+?[\d ()./-]+", cleaned):
        return False
    digits = re.sub(r"\D", "", cleaned)
    if cleaned.startswith("+"):
        code = next((c for c in codes if digits.startswith(c)), None)
        if code is None:
            return False
        national = digits[len(code) :]
    elif country == "US":
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    elif trunk:
        if not digits.startswith(trunk):
            return False
        national = digits[len(trunk) :]
    else:
        national = digits
    if country == "US" and national[:3] not in US_AREAS:
        return False
    return re.fullmatch(pattern, national) is not None


def shannon_bits(value: str) -> float:
    counts = collections.Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def b64url_json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


SECRET_SHAPES = {
    "openai": r"sk-(?:proj-)?[A-Za-z0-9_-]{40,}",
    "anthropic": r"sk-ant-api03-[A-Za-z0-9_-]{80,}",
    "aws_id": r"AKIA[A-Z2-7]{16}",
    "github": r"ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    "slack": r"xox[bp]-\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}",
    "stripe": r"sk_live_[A-Za-z0-9]{24,99}",
    "google": r"AIza[A-Za-z0-9_-]{35}",
}


def secret_ok(value: str, kind: str) -> bool:
    if kind in SECRET_SHAPES:
        return re.fullmatch(SECRET_SHAPES[kind], value) is not None
    if kind == "pem":
        m = re.fullmatch(
            r"-----BEGIN ((?:RSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----\n"
            r"([A-Za-z0-9+/=\n]+)\n-----END \1-----",
            value,
        )
        return m is not None and all(len(line) <= 70 for line in m.group(2).split("\n"))
    if kind == "jwt":
        parts = value.split(".")
        return len(parts) == 3 and "alg" in b64url_json(parts[0]) and bool(b64url_json(parts[1]))
    if kind == "url":
        parsed = urllib.parse.urlsplit(value)
        return bool(parsed.scheme and parsed.username and parsed.password and parsed.hostname)
    if kind == "entropy":
        return len(value) >= 20 and shannon_bits(value) >= 3.3 and " " not in value
    raise AssertionError(kind)


TITLES = (
    "Dr", "Dr.", "Dra.", "Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Herr", "Frau", "Prof.",
    "M.", "Mme", "Sr.", "Sra.", "Dott.", "Dott.ssa", "dhr.", "mevr.", "dr.", "Sig.", "Sig.ra",
)  # fmt: skip
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def check_gold(span: S) -> None:
    v = span.value
    assert v == v.strip() and v, f"span has edge whitespace: {v!r}"
    match span.type:
        case "EMAIL":
            assert EMAIL_RE.fullmatch(v), v
        case "PHONE":
            assert phone_ok(v, span.meta), (v, span.meta)
        case "CARD":
            digits = re.sub(r"[ -]", "", v)
            assert digits.isdigit() and len(digits) in (15, 16), v
            assert luhn_ok(digits), f"card fails Luhn: {v}"
            assert re.match(r"4|5[1-5]|2[2-7]|3[47]|6011|65|35[2-8]", digits), v
        case "IBAN":
            assert iban_ok(v), f"IBAN fails mod-97: {v}"
        case "SSN":
            assert ssn_ok(v), f"implausible SSN: {v}"
        case "IP":
            ipaddress.ip_address(v)
        case "SECRET":
            assert secret_ok(v, span.meta), (v, span.meta)
        case "PERSON":
            assert v.split()[0] not in TITLES, f"title inside PERSON span: {v}"
            assert v in ALL_NAMES, f"unknown name: {v}"
        case "ADDRESS":
            assert re.search(r"\d", v) and v[-1] not in ",;:", v
            assert not v.endswith(".") or v.endswith("Esq."), v
            assert "\n" not in v, v
        case _:
            raise AssertionError(span.type)


def check_negative(neg: N) -> None:
    """Hard negatives of a checkable kind must really fail the rule they imitate."""
    v = neg.value
    if neg.category == "luhn_failing_number":
        assert not luhn_ok(v) and len(re.sub(r"\D", "", v)) in (15, 16), v
    elif neg.category == "iban_bad_checksum":
        assert not iban_ok(v) and IBAN_LENGTHS[v[:2]] == len(v.replace(" ", "")), v
    elif neg.category == "invalid_ssn":
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", v) and not ssn_ok(v), v
    elif neg.category in ("version_string", "mac_address", "build_number"):
        try:
            ipaddress.ip_address(v.lstrip("v"))
        except ValueError:
            pass
        else:
            raise AssertionError(f"negative {v} is a valid IP")
    elif neg.category == "placeholder_secret":
        assert not any(re.fullmatch(p, v) for p in SECRET_SHAPES.values()), v


# --------------------------------------------------------------------------- look-alike scan

LOOKALIKES: tuple[tuple[str, re.Pattern, Callable[[str], bool]], ...] = (
    ("EMAIL", EMAIL_RE, lambda m: True),
    (
        "IP",
        re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])"),
        lambda m: _is_ip(m),
    ),
    (
        "IP",
        re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"),
        lambda m: ":" in m and _is_ip(m),
    ),
    ("SSN", re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"), ssn_ok),
    (
        "CARD",
        re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w])"),
        luhn_ok,
    ),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_ok),
    (
        "SECRET",
        re.compile(
            "|".join(SECRET_SHAPES.values())
            + r"|eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+|-----BEGIN [A-Z ]*PRIVATE"
        ),
        lambda m: True,
    ),
    ("SECRET", re.compile(r"[a-z+]+://[^\s:/@]*:([^\s@/]+)@"), lambda m: not _placeholder(m)),
)


def _placeholder(url_head: str) -> bool:
    password = url_head.rsplit(":", 1)[1].rstrip("@")
    return re.fullmatch(r"[A-Z_]+|<[^>]*>|\$\{?\w+\}?|\*+|x+|\.\.\.", password) is not None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def scan_unlabelled(text: str, spans: list[list], known_values: set[str]) -> list[str]:
    """Finds PII-like strings outside every gold span; the builder refuses to write them."""
    masked = list(text)
    for start, end, _ in spans:
        masked[start:end] = "\x00" * (end - start)
    masked_text = "".join(masked)
    problems = []
    for label, pattern, valid in LOOKALIKES:
        for m in pattern.finditer(masked_text):
            if valid(m.group()):
                problems.append(f"unlabelled {label}-like {m.group()!r}")
    for value in known_values:
        if value in masked_text:
            problems.append(f"unlabelled gold value {value!r}")
    return problems


# --------------------------------------------------------------------------- people & places

# (display name, gender, slug for e-mail addresses); all fictional.
NAMES: dict[str, list[tuple[str, str, str]]] = {
    "en": [
        ("Emily Carter", "f", ""), ("James O'Connor", "m", ""), ("Priya Raman", "f", ""),
        ("Daniel Whitfield", "m", ""), ("Olivia Brennan", "f", ""), ("Marcus Lee", "m", ""),
        ("Hannah Okafor", "f", ""), ("Samuel Turner", "m", ""), ("Chloe Hargreaves", "f", ""),
        ("Nathan Brooks", "m", ""), ("Aisha Mensah", "f", ""), ("Ryan McAllister", "m", ""),
        ("Laura Pemberton", "f", ""), ("Kevin Osei", "m", ""), ("Megan Calloway", "f", ""),
        ("Thomas Reilly", "m", ""), ("Sarah-Jane Holt", "f", ""), ("Benjamin Ashford", "m", ""),
        ("Rebecca Lindqvist", "f", ""), ("Carlos Mendoza", "m", ""), ("Fiona Gallagher", "f", ""),
        ("Tyrone Whitaker", "m", ""), ("Mei Lin Zhou", "f", ""), ("Oliver Pratt", "m", ""),
    ],
    "de": [
        ("Maria Schmidt", "f", ""), ("Jonas Becker", "m", ""), ("Lena Hoffmann", "f", ""),
        ("Felix Wagner", "m", ""), ("Anna-Lena Krüger", "f", ""), ("Matthias Vogel", "m", ""),
        ("Sabine Neumann", "f", ""), ("Tobias Schäfer", "m", ""), ("Katrin Lehmann", "f", ""),
        ("Jürgen Fischer", "m", ""), ("Hannah Zimmermann", "f", ""), ("Lukas Braun", "m", ""),
        ("Friederike von Brandt", "f", ""), ("Stefan Weißgerber", "m", ""),
    ],
    "fr": [
        ("Claire Dubois", "f", ""), ("Julien Moreau", "m", ""), ("Camille Lefèvre", "f", ""),
        ("Antoine Girard", "m", ""), ("Élodie Fontaine", "f", ""), ("Mathieu Rousseau", "m", ""),
        ("Sophie Marchand", "f", ""), ("Hugo Lambert", "m", ""), ("Inès Benali", "f", ""),
        ("Nicolas Chevalier", "m", ""), ("Marie-Hélène Dupré", "f", ""), ("Jean-Luc Perrin", "m", ""),
    ],
    "es": [
        ("José María García López", "m", ""), ("Lucía Fernández", "f", ""),
        ("Javier Moreno Ruiz", "m", ""), ("Carmen Navarro", "f", ""), ("Diego Herrera", "m", ""),
        ("Marta Jiménez Castro", "f", ""), ("Pablo Ortega", "m", ""), ("Elena Vidal", "f", ""),
        ("Alejandro Romero Gil", "m", ""), ("Rocío Delgado", "f", ""),
    ],
    "it": [
        ("Giulia Romano", "f", ""), ("Marco Bianchi", "m", ""), ("Francesca Ricci", "f", ""),
        ("Alessandro Conti", "m", ""), ("Chiara Esposito", "f", ""), ("Luca Marino", "m", ""),
        ("Valentina De Luca", "f", ""), ("Matteo Gallo", "m", ""), ("Federica Colombo", "f", ""),
        ("Davide Ferraro", "m", ""),
    ],
    "nl": [
        ("Jan van der Berg", "m", ""), ("Sanne de Vries", "f", ""), ("Pieter Jansen", "m", ""),
        ("Femke Bakker", "f", ""), ("Daan Visser", "m", ""), ("Lotte van Dijk", "f", ""),
        ("Bram Smit", "m", ""), ("Eva Mulder", "f", ""), ("Joris de Graaf", "m", ""),
        ("Noor Hendriks", "f", ""),
    ],
    "pt": [
        ("Ana Sofia Pereira da Costa", "f", ""), ("João Silva Santos", "m", ""),
        ("Beatriz Oliveira", "f", ""), ("Tiago Rodrigues", "m", ""), ("Inês Carvalho", "f", ""),
        ("Rafael Almeida", "m", ""), ("Mariana Sousa", "f", ""), ("Pedro Martins Ferreira", "m", ""),
        ("Catarina Lopes", "f", ""), ("Miguel Teixeira", "m", ""),
    ],
    "ja": [
        ("山田 太郎", "m", "taro.yamada"), ("佐藤 花子", "f", "hanako.sato"),
        ("鈴木 一郎", "m", "ichiro.suzuki"), ("高橋 美咲", "f", "misaki.takahashi"),
        ("田中 健太", "m", "kenta.tanaka"), ("伊藤 さくら", "f", "sakura.ito"),
        ("渡辺 翔", "m", "sho.watanabe"), ("中村 優子", "f", "yuko.nakamura"),
        ("小林 大輔", "m", "daisuke.kobayashi"), ("加藤 陽菜", "f", "hina.kato"),
    ],
    "ja_latn": [
        ("Taro Yamada", "m", ""), ("Hanako Sato", "f", ""), ("Kenta Tanaka", "m", ""),
        ("Misaki Takahashi", "f", ""), ("Yuko Nakamura", "f", ""), ("Daisuke Kobayashi", "m", ""),
    ],
}  # fmt: skip
ALL_NAMES = {name for pool in NAMES.values() for name, _, _ in pool}

# City and postcode pairs per country; street names are real-sounding, numbers are random.
STREETS = {
    "en_gb": ["Baker Street", "Elm Grove", "Station Road", "Kingsway", "Church Lane",
              "Victoria Road", "Mill Lane", "Park Avenue", "Queen's Road"],
    "en_us": ["Oak Avenue", "Maple Street", "Market Street", "Pine Road", "Cedar Lane",
              "Lakeview Drive", "Sunset Boulevard", "Hillcrest Court", "W 42nd Street"],
    "de": ["Hauptstraße", "Lindenallee", "Goethestraße", "Bahnhofstraße", "Schillerplatz",
           "Am Mühlbach", "Berliner Straße", "Königsweg", "Gartenstraße"],
    "fr": ["rue de la République", "avenue Victor Hugo", "boulevard Saint-Michel",
           "rue des Lilas", "place Bellecour", "chemin des Vignes", "rue du Faubourg Saint-Denis"],
    "es": ["Calle Mayor", "Avenida de la Constitución", "Calle de Serrano", "Paseo de Gracia",
           "Calle Colón", "Calle de Alcalá", "Avenida del Puerto"],
    "it": ["Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via dei Mille",
           "Viale Monza", "Via della Spiga", "Piazza Cavour"],
    "nl": ["Keizersgracht", "Prinsengracht", "Dorpsstraat", "Kerkstraat", "Stationsweg",
           "Oudegracht", "Laan van Meerdervoort"],
    "pt": ["Rua Augusta", "Avenida da Liberdade", "Rua de Santa Catarina", "Rua do Carmo",
           "Rua Garrett", "Avenida dos Aliados", "Travessa do Carvalho"],
}  # fmt: skip
CITIES = {
    "en_gb": [("London", "SE1 7PB"), ("Manchester", "M1 4BT"), ("Leeds", "LS1 5DL"),
              ("Bristol", "BS1 4DJ"), ("Edinburgh", "EH1 1YZ"), ("London", "NW1 6XE")],
    "en_us": [("Springfield", "IL 62704"), ("Portland", "OR 97205"), ("Austin", "TX 78701"),
              ("Denver", "CO 80202"), ("Columbus", "OH 43215"), ("Seattle", "WA 98101")],
    "de": [("Berlin", "10115"), ("München", "80331"), ("Köln", "50667"), ("Hamburg", "20095"),
           ("Frankfurt am Main", "60311"), ("Leipzig", "04109")],
    "fr": [("Paris", "75005"), ("Lyon", "69002"), ("Marseille", "13001"),
           ("Toulouse", "31000"), ("Bordeaux", "33000"), ("Nantes", "44000")],
    "es": [("Madrid", "28013"), ("Barcelona", "08007"), ("Sevilla", "41001"),
           ("Valencia", "46002"), ("Bilbao", "48001")],
    "it": [("Roma", "00186"), ("Milano", "20121"), ("Napoli", "80133"), ("Firenze", "50123"),
           ("Torino", "10121"), ("Bologna", "40121")],
    "nl": [("Amsterdam", "1015 CJ"), ("Utrecht", "3511 AB"), ("Den Haag", "2511 CV"),
           ("Rotterdam", "3011 AD"), ("Groningen", "9711 LM")],
    "pt": [("Lisboa", "1100-048"), ("Lisboa", "1250-096"), ("Porto", "4000-443"),
           ("Coimbra", "3000-150"), ("Braga", "4700-320")],
}  # fmt: skip
JA_PLACES = [
    ("東京都", "新宿区", "西新宿", "Nishi-Shinjuku, Shinjuku-ku, Tokyo", "160-0023"),
    ("東京都", "千代田区", "丸の内", "Marunouchi, Chiyoda-ku, Tokyo", "100-0005"),
    ("大阪府", "大阪市北区", "梅田", "Umeda, Kita-ku, Osaka", "530-0001"),
    ("京都府", "京都市中京区", "烏丸通", "Karasuma-dori, Nakagyo-ku, Kyoto", "604-8166"),
    ("神奈川県", "横浜市西区", "みなとみらい", "Minatomirai, Nishi-ku, Yokohama", "220-0012"),
]
COMPANY_DOMAINS = [
    "example.com",
    "brightwater-consulting.co.uk",
    "harbor-freight-logistics.com",
    "nordlicht-versand.de",
    "atelier-lumiere.fr",
    "example.org",
    "acme-corp.example",
]
MAIL_DOMAINS = {
    "en": ["example.com", "example.org", "gmail.com", "outlook.com", "mail.example.net",
           "brightwater-consulting.co.uk", "harbor-freight-logistics.com"],
    "de": ["web.de", "gmx.de", "example.de", "t-online.de", "nordlicht-versand.de"],
    "fr": ["orange.fr", "free.fr", "example.fr", "laposte.net", "atelier-lumiere.fr"],
    "es": ["hotmail.es", "gmail.com", "example.es", "telefonica.net"],
    "it": ["libero.it", "gmail.com", "example.it", "tiscali.it"],
    "nl": ["ziggo.nl", "kpnmail.nl", "example.nl", "gmail.com"],
    "pt": ["sapo.pt", "gmail.com", "example.pt", "clix.pt"],
    "ja": ["yahoo.co.jp", "example.jp", "docomo.ne.jp", "gmail.com"],
}  # fmt: skip


# --------------------------------------------------------------------------- generators

B64 = string.ascii_letters + string.digits + "+/"
ALNUM = string.ascii_letters + string.digits


def ascii_slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z ]", "", folded.lower().replace("-", " ")).split()


class Gen:
    """Seeded generators for valid PII values and for look-alikes that are not PII."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.code_turn = 0
        self.neg_code_turn = 0

    # small helpers
    def digits(self, n: int, first: str = "0123456789") -> str:
        return self.r.choice(first) + "".join(self.r.choice(string.digits) for _ in range(n - 1))

    def chars(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def pick(self, seq):
        return self.r.choice(seq)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    # people
    def person(self, lang: str) -> tuple[S, str, str]:
        """Returns the PERSON span, the gender and an e-mail slug."""
        name, gender, slug = self.pick(NAMES[lang])
        return S(name, "PERSON"), gender, slug or ".".join(ascii_slug(name))

    def email(self, lang: str, slug: str | None = None) -> S:
        if slug is None:
            _, _, slug = self.person(lang)
        parts = slug.split(".")
        local = self.pick(
            [
                slug,
                parts[0][0] + "." + parts[-1],
                parts[0] + "_" + parts[-1],
                parts[0] + parts[-1] + self.digits(2),
                slug + "+orders",
            ]
        )
        domain = self.pick(MAIL_DOMAINS["ja" if lang == "ja_latn" else lang])
        return S(f"{local}@{domain}", "EMAIL")

    def role_email(self, domain: str = "") -> S:
        local = self.pick(["support", "billing", "hr", "noreply", "it-helpdesk", "accounts"])
        domain = domain or self.pick(COMPANY_DOMAINS)
        return S(f"{local}@{domain}", "EMAIL")

    # phones
    def phone(self, country: str, intl: bool | None = None) -> S:
        intl = self.chance(0.5) if intl is None else intl
        d = self.digits
        if country == "US":
            area = self.pick(US_AREAS)
            exchange = d(1, "23456789") + d(2)
            while exchange.endswith("11"):
                exchange = d(1, "23456789") + d(2)
            line = d(4)
            fmt = self.pick(
                ["+1 {a} {e} {l}", "+1 ({a}) {e}-{l}", "+1-{a}-{e}-{l}"]
                if intl
                else ["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "({a}) {e}-{l}"]
            )
            value = fmt.format(a=area, e=exchange, l=line)
        elif country == "GB":
            kind = self.pick(["london", "manchester", "mobile", "leeds"])
            national = {
                "london": f"20 7946 0{d(3)}",
                "manchester": f"161 496 0{d(3)}",
                "leeds": f"113 496 0{d(3)}",
                "mobile": f"7700 900{d(3)}",
            }[kind]
            value = f"+44 {national}" if intl else f"0{national}"
            if intl and self.chance(0.2):
                value = f"+44 (0){national}"
        elif country == "DE":
            area, sub = self.pick(
                [("30", d(self.pick([6, 7, 8]), "123456789")), ("89", d(7, "123456789")),
                 ("40", d(8, "123456789")), ("221", d(7, "123456789")), ("69", d(7, "123456789")),
                 ("151", d(8)), ("176", d(8)), ("170", d(7)), ("160", d(8))]
            )  # fmt: skip
            if intl:
                value = self.pick(
                    [f"+49 {area} {sub}", f"+49 (0){area} {sub}", f"+49 {area}-{sub}"]
                )
            else:
                value = self.pick([f"0{area} {sub}", f"(0{area}) {sub}", f"0{area}/{sub}"])
        elif country == "FR":
            z = self.pick("1234567")
            pairs = " ".join(d(2) for _ in range(4))
            if intl:
                value = f"+33 {z} {pairs}"
            else:
                value = self.pick([f"0{z} {pairs}", f"0{z}.{pairs.replace(' ', '.')}"])
        elif country == "ES":
            if self.chance(0.5):
                n = "6" + d(8)
                body = f"{n[:3]} {n[3:6]} {n[6:]}"
            else:
                n = self.pick(["91", "93", "95", "96"]) + d(7, "2345678")
                body = self.pick(
                    [f"{n[:3]} {n[3:6]} {n[6:]}", f"{n[:2]} {n[2:5]} {n[5:7]} {n[7:]}"]
                )
            value = f"+34 {body}" if intl else body
        elif country == "IT":
            if self.chance(0.5):
                n = self.pick(["06", "02"]) + d(8, "123456789")
                body = f"{n[:2]} {n[2:6]} {n[6:]}"
            else:
                n = "3" + self.pick("23456789") + d(8)
                body = f"{n[:3]} {n[3:6]} {n[6:]}"
            value = f"+39 {body}" if intl else body
        elif country == "NL":
            if self.chance(0.5):
                area = self.pick(["20", "10", "30", "70"])
                sub = d(7, "123456789")
                value = f"+31 {area} {sub[:3]} {sub[3:]}" if intl else f"0{area}-{sub}"
            else:
                sub = d(8)
                sub = self.pick("12345") + sub[1:]
                value = f"+31 6 {sub[:4]} {sub[4:]}" if intl else f"06-{sub}"
        elif country == "PT":
            n = (
                self.pick(["21", "22"]) + d(7)
                if self.chance(0.5)
                else self.pick("9") + self.pick("1236") + d(7)
            )
            body = f"{n[:3]} {n[3:6]} {n[6:]}"
            value = f"+351 {body}" if intl else body
        elif country == "JP":
            if self.chance(0.5):
                head = self.pick(["3", "6"])
                value = f"0{head}-{d(4)}-{d(4)}" if not intl else f"+81 {head}-{d(4)}-{d(4)}"
            else:
                head = self.pick(["90", "80", "70"])
                value = f"0{head}-{d(4)}-{d(4)}" if not intl else f"+81 {head}-{d(4)}-{d(4)}"
        elif country == "CH":
            value = f"+41 {self.pick(['44', '22', '31', '79'])} {d(3)} {d(2)} {d(2)}"
        elif country == "AT":
            value = f"+43 1 {d(7, '2345678')}"
        elif country == "BE":
            value = f"+32 2 {d(3, '2345678')} {d(2)} {d(2)}"
        elif country == "IE":
            value = f"+353 1 {d(3, '2345678')} {d(4)}"
        elif country == "AU":
            value = f"+61 {self.pick('2378')} {d(4, '3456789')} {d(4)}"
        elif country == "IN":
            value = f"+91 {d(5, '6789')} {d(5)}"
        else:
            raise AssertionError(country)
        return S(value, "PHONE", country)

    # payment cards
    def card(self, fmt: str | None = None) -> S:
        brand = self.pick(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb"])
        prefix = {
            "visa": "4",
            "mc": self.pick(["51", "52", "53", "54", "55"]),
            "mc2": str(self.r.randint(2221, 2720)),
            "amex": self.pick(["34", "37"]),
            "discover": self.pick(["6011", "65"]),
            "jcb": str(self.r.randint(3528, 3589)),
        }[brand]
        length = 15 if brand == "amex" else 16
        number = luhn_complete(prefix + self.digits(length - 1 - len(prefix)))
        return S(self.format_card(number, fmt), "CARD")

    def format_card(self, number: str, fmt: str | None = None) -> str:
        fmt = fmt or self.pick([" ", " ", "-", ""])
        if len(number) == 15:
            groups = [number[:4], number[4:10], number[10:]]
        else:
            groups = [number[i : i + 4] for i in range(0, 16, 4)]
        return fmt.join(groups)

    def bad_card(self) -> N:
        while True:
            number = self.pick("3456") + self.digits(15)
            if not luhn_ok(number):
                return N(self.format_card(number), "luhn_failing_number")

    # IBANs
    def bban(self, country: str) -> str:
        d = self.digits
        return {
            "DE": lambda: d(8, "123456789") + d(10),
            "FR": lambda: d(5) + d(5) + d(11) + d(2),
            "ES": lambda: d(20),
            "IT": lambda: self.pick(string.ascii_uppercase) + d(5) + d(5) + d(12),
            "NL": lambda: self.pick(["ABNA", "INGB", "RABO", "SNSB", "TRIO"]) + d(10),
            "PT": lambda: "0" + d(20),
            "GB": lambda: self.pick(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + d(14),
            "IE": lambda: self.pick(["AIBK", "BOFI"]) + d(14),
            "BE": lambda: d(12),
            "AT": lambda: d(16),
            "CH": lambda: d(17),
            "PL": lambda: d(24),
            "LU": lambda: d(3) + d(13),
        }[country]()

    def iban_compact(self, country: str) -> str:
        bban = self.bban(country)
        check = 98 - mod97(bban + country + "00")
        return f"{country}{check:02d}{bban}"

    @staticmethod
    def group4(compact: str) -> str:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))

    def iban(self, country: str, grouped: bool | None = None) -> S:
        compact = self.iban_compact(country)
        grouped = self.chance(0.65) if grouped is None else grouped
        return S(self.group4(compact) if grouped else compact, "IBAN")

    def bad_iban(self, country: str) -> N:
        grouped = self.chance(0.6)

        def make() -> str:
            compact = self.iban_compact(country)
            bad = compact
            while iban_ok(bad):
                bad = f"{compact[:2]}{self.r.randint(2, 98):02d}{compact[4:]}"
            return self.group4(bad) if grouped else bad

        return self.neg(make, "iban_bad_checksum")

    # SSNs
    def ssn(self, sep: str = "-") -> S:
        area = self.r.randint(1, 899)
        while area == 666:
            area = self.r.randint(1, 899)
        value = f"{area:03d}{sep}{self.r.randint(1, 99):02d}{sep}{self.r.randint(1, 9999):04d}"
        return S(value, "SSN")

    def bad_ssn(self) -> N:
        area = self.pick(["000", "666", f"9{self.digits(2)}"])
        return N(f"{area}-{self.r.randint(10, 99)}-{self.r.randint(1000, 9999)}", "invalid_ssn")

    # IP addresses
    def ipv4(self, kind: str | None = None) -> S:
        kind = kind or self.pick(["private10", "private192", "private172", "doc", "public"])
        r = self.r.randint
        value = {
            "private10": lambda: f"10.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}",
            "private192": lambda: f"192.168.{r(0, 20)}.{r(1, 254)}",
            "private172": lambda: f"172.{r(16, 31)}.{r(0, 255)}.{r(1, 254)}",
            "doc": lambda: f"{self.pick(['192.0.2', '198.51.100', '203.0.113'])}.{r(1, 254)}",
            "public": lambda: (
                f"{self.pick([81, 88, 91, 145, 185, 212, 37, 62])}.{r(0, 255)}"
                f".{r(0, 255)}.{r(1, 254)}"
            ),
        }[kind]()
        return S(value, "IP")

    def ipv6(self) -> S:
        h = lambda: f"{self.r.randint(1, 0xFFFF):x}"  # noqa: E731
        value = self.pick(
            [
                f"2001:db8:{h()}:{h()}::{h()}",
                f"2001:0db8:85a3:0000:0000:8a2e:{self.r.randint(0x1000, 0xFFFF):04x}:7334",
                f"fe80::{h()}:{h()}:{h()}:{h()}",
                f"2a01:4f8:{h()}:{h()}::{h()}",
                f"2001:db8::{h()}",
            ]
        )
        return S(value, "IP")

    def ip(self) -> S:
        return self.ipv6() if self.chance(0.3) else self.ipv4()

    # secrets (random, fake)
    def secret(self, kind: str) -> S:
        c = self.chars
        value = {
            "openai": lambda: self.pick(["sk-", "sk-proj-"]) + c(48, ALNUM + "_-"),
            "anthropic": lambda: "sk-ant-api03-" + c(93, ALNUM + "_-") + "AA",
            "aws_id": lambda: "AKIA" + c(16, string.ascii_uppercase + "234567"),
            "github": lambda: self.pick(["ghp_" + c(36), "github_pat_" + c(22) + "_" + c(59)]),
            "slack": lambda: f"xoxb-{self.digits(12, '123456789')}-{self.digits(13, '1')}-{c(24)}",
            "stripe": lambda: "sk_live_" + c(self.pick([24, 34, 99])),
            "google": lambda: "AIza" + c(35, ALNUM + "_-"),
            "entropy": lambda: self.pick([c(40, B64), c(32, "0123456789abcdef"), c(50, ALNUM)]),
            "aws_secret": lambda: c(40, B64),
        }[kind]()
        return S(value, "SECRET", "entropy" if kind == "aws_secret" else kind)

    def password(self) -> S:
        value = c = self.chars(self.pick([20, 24, 28]), ALNUM + "!#%^*_")
        while shannon_bits(c) < 3.3:
            value = c = self.chars(24, ALNUM + "!#%^*_")
        return S(value, "SECRET", "entropy")

    def url_password(self) -> str:
        return self.chars(self.pick([16, 20, 24]), ALNUM)

    def cred_url(self, scheme: str | None = None) -> S:
        scheme = scheme or self.pick(["postgres", "postgresql", "mysql", "mongodb+srv", "redis",
                                      "amqp", "https"])  # fmt: skip
        user = self.pick(["app_user", "svc_orders", "admin", "reporting", "etl", "deploy"])
        pw = self.url_password()
        value = {
            "postgres": f"postgres://{user}:{pw}@db.internal.example.net:5432/orders",
            "postgresql": f"postgresql://{user}:{pw}@pg-prod-01.corp.local:5432/billing",
            "mysql": f"mysql://{user}:{pw}@mysql.staging.svc.cluster.local:3306/shop",
            "mongodb+srv": f"mongodb+srv://{user}:{pw}@cluster0.x7k2p.mongodb.net/crm"
            "?retryWrites=true&w=majority",
            "redis": f"redis://default:{pw}@cache.internal.example.net:6379/0",
            "amqp": f"amqp://{user}:{pw}@rabbitmq.internal:5672/jobs",
            "https": f"https://{user}:{pw}@grafana.internal.example.net/d/ops-overview",
        }[scheme]
        return S(value, "SECRET", "url")

    def jwt(self) -> S:
        def enc(obj: dict) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        alg = self.pick(["HS256", "RS256"])
        iat = self.r.randint(1_700_000_000, 1_720_000_000)
        payload = {"sub": self.digits(8), "iat": iat, "exp": iat + 3600,
                   "scope": self.pick(["orders:read", "admin", "profile email"])}  # fmt: skip
        sig_len = 32 if alg == "HS256" else 256
        sig = base64.urlsafe_b64encode(self.r.randbytes(sig_len)).decode().rstrip("=")
        return S(f"{enc({'alg': alg, 'typ': 'JWT'})}.{enc(payload)}.{sig}", "SECRET", "jwt")

    def pem(self) -> S:
        label, head, size = self.pick(
            [
                ("RSA PRIVATE KEY", b"\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00", 1180),
                ("PRIVATE KEY", b"\x30\x82\x04\xbe\x02\x01\x00\x30\x0d\x06\x09", 1200),
                ("EC PRIVATE KEY", b"\x30\x77\x02\x01\x01\x04\x20", 114),
                ("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00\x00\x00\x00\x04none", 380),
            ]
        )
        body = base64.b64encode(head + self.r.randbytes(size)).decode()
        width = 70 if label == "OPENSSH PRIVATE KEY" else 64
        lines = [body[i : i + width] for i in range(0, len(body), width)]
        block = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"
        return S(block, "SECRET", "pem")

    # addresses
    def address(self, region: str, style: str = "full") -> S:
        """A street line with number; `full` adds city and postcode on the same line."""
        n = self.r.randint(1, 240)
        if region == "ja":
            pref, ward, town, _, _ = self.pick(JA_PLACES)
            return S(f"{pref}{ward}{town}{self.r.randint(1, 4)}-{self.r.randint(1, 20)}-"
                     f"{self.r.randint(1, 30)}", "ADDRESS")  # fmt: skip
        if region == "ja_latn":
            _, _, _, latin, zip_ = self.pick(JA_PLACES)
            line = f"{self.r.randint(1, 4)}-{self.r.randint(1, 20)}-{self.r.randint(1, 30)} {latin}"
            return S(f"{line} {zip_}" if style == "full" else line, "ADDRESS")
        street = self.pick(STREETS[region])
        city, post = self.pick(CITIES[region])
        if region == "en_gb":
            num = f"{n}{self.pick(['', '', 'A', 'B'])}"
            line, tail = f"{num} {street}", f"{city} {post}"
        elif region == "en_us":
            line = f"{self.r.randint(10, 9800)} {street}"
            if self.chance(0.3):
                line += f", {self.pick(['Apt', 'Suite', 'Unit'])} {self.r.randint(1, 40)}"
            tail = f"{city}, {post}"
        elif region == "fr":
            line = f"{n}{self.pick(['', '', ' bis'])} {street}"
            tail = f"{post} {city}"
        elif region == "es":
            line = self.pick([f"{street} {n}", f"{street}, {n}", f"{street} {n}, {n % 9 + 1}º B"])
            tail = f"{post} {city}"
        elif region == "pt":
            line = self.pick(
                [f"{street} {n}", f"{street}, {n}", f"{street} {n}, {n % 7 + 1}º Esq."]
            )
            tail = f"{post} {city}"
        else:  # de, it, nl: street then number
            suffix = self.pick(["", "", "a"]) if region != "it" else ""
            line = f"{street} {n}{suffix}"
            tail = f"{post} {city}"
        return S(f"{line}, {tail}" if style == "full" else line, "ADDRESS")

    # look-alikes
    def neg(self, make: Callable[[], str], category: str) -> N:
        """A negative value, regenerated until no PII look-alike rule matches it."""
        for _ in range(200):
            value = make()
            if not scan_unlabelled(value, [], set()):
                return N(value, category)
        raise AssertionError(category)

    def order_no(self) -> N:
        d = self.digits
        return self.neg(
            lambda: self.pick(
                [f"ORD-{self.r.randint(2022, 2025)}-{d(6)}", f"#{d(5, '123456789')}",
                 f"{self.chars(3, string.ascii_uppercase)}{d(7)}", f"{d(3)}-{d(7)}-{d(7)}",
                 f"SO{d(8)}"]
            ),
            "order_number",
        )  # fmt: skip

    def ticket_no(self) -> N:
        d = self.digits
        return self.neg(
            lambda: self.pick([f"TCK-{d(6)}", f"#{d(6, '123456789')}", f"INC{d(7)}", f"CS-{d(5)}"]),
            "ticket_number",
        )

    def invoice_no(self) -> N:
        return self.neg(
            lambda: self.pick(
                [f"INV-{self.r.randint(2022, 2025)}-{self.digits(5)}", f"RE{self.digits(8)}",
                 f"F{self.r.randint(2022, 2025)}/{self.digits(4)}"]
            ),
            "invoice_number",
        )  # fmt: skip

    def tracking_no(self) -> N:
        d = self.digits
        up = string.ascii_uppercase + string.digits
        return self.neg(
            lambda: self.pick(
                [f"1Z{self.chars(6, up)}{d(10)}", f"JJD{d(18)}",
                 f"00{d(2)} {d(4)} {d(4)} {d(4)} {d(4)}", f"RR{d(9)}DE", f"9400 {d(4)} {d(4)} "
                 f"{d(4)} {d(4)} {d(2)}"]
            ),
            "tracking_number",
        )  # fmt: skip

    def isbn(self) -> N:
        def make() -> str:
            core = "978" + self.pick(["3", "0", "2", "84", "88"]) + self.digits(8)
            core = core[:12]
            check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(core))) % 10
            return f"{core[:3]}-{core[3]}-{core[4:8]}-{core[8:12]}-{check}"

        return self.neg(make, "isbn")

    def uuid(self) -> N:
        h = "0123456789abcdef"
        return N(
            f"{self.chars(8, h)}-{self.chars(4, h)}-4{self.chars(3, h)}-"
            f"{self.pick('89ab')}{self.chars(3, h)}-{self.chars(12, h)}",
            "uuid",
        )

    def git_sha(self, short: bool = False) -> N:
        return N(self.chars(7 if short else 40, "0123456789abcdef"), "git_sha")

    def sha256(self) -> N:
        return N(self.chars(64, "0123456789abcdef"), "sha256_digest")

    def version(self) -> N:
        return N(
            self.pick(["v", "", "v"])
            + f"{self.r.randint(0, 5)}.{self.r.randint(0, 30)}.{self.r.randint(0, 20)}",
            "version_string",
        )

    def build_no(self) -> N:
        return N(
            self.pick(
                [f"10.0.{self.r.randint(17000, 22631)}.{self.r.randint(300, 4000)}",
                 f"{self.r.randint(110, 126)}.0.{self.r.randint(5000, 6500)}.{self.r.randint(40, 200)}",
                 f"3.{self.r.randint(1, 4)}.{self.r.randint(0, 9)}.{self.r.randint(1000, 9000)}"]
            ),
            "build_number",
        )  # fmt: skip

    def mac(self) -> N:
        return N(":".join(self.chars(2, "0123456789ABCDEF") for _ in range(6)), "mac_address")

    def date(self, lang: str) -> N:
        y, m, d = self.r.randint(2023, 2025), self.r.randint(1, 12), self.r.randint(1, 28)
        value = {
            "en": self.pick([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}",
                             f"{d} {MONTHS_EN[m - 1]} {y}"]),
            "de": f"{d:02d}.{m:02d}.{y}",
            "nl": f"{d:02d}-{m:02d}-{y}",
            "ja": f"{y}年{m}月{d}日",
        }.get(lang, f"{d:02d}/{m:02d}/{y}")  # fmt: skip
        return N(value, "date")

    def dob(self, lang: str) -> N:
        y, m, d = self.r.randint(1948, 2003), self.r.randint(1, 12), self.r.randint(1, 28)
        value = {"en": f"{m:02d}/{d:02d}/{y}", "de": f"{d:02d}.{m:02d}.{y}",
                 "ja": f"{y}年{m}月{d}日"}.get(lang, f"{d:02d}/{m:02d}/{y}")  # fmt: skip
        return N(value, "date")

    def price(self, lang: str) -> N:
        whole, cents = self.r.randint(9, 2400), self.pick(["00", "90", "99", "49", "95"])
        value = {
            "en": self.pick([f"${whole:,}.{cents}", f"£{whole:,}.{cents}", f"€{whole:,}.{cents}"]),
            "it": f"€ {whole:,},{cents}".replace(",", ".", 1 if whole >= 1000 else 0),
            "nl": f"€ {whole:,},{cents}".replace(",", ".", 1 if whole >= 1000 else 0),
            "fr": f"{whole:,},{cents} €".replace(",", "\u202f", 1 if whole >= 1000 else 0),
            "ja": f"¥{whole * 150:,}",
        }.get(lang, f"{whole:,},{cents} €".replace(",", ".", 1 if whole >= 1000 else 0))
        return N(value, "price")


MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")  # fmt: skip
LANG_REGION = {"de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl", "pt": "pt",
               "ja": "ja", "ja_latn": "ja_latn"}  # fmt: skip
LANG_PHONES = {"de": ["DE", "DE", "DE", "AT", "CH"], "fr": ["FR", "FR", "FR", "BE", "CH"],
               "es": ["ES"], "it": ["IT"], "nl": ["NL", "NL", "NL", "BE"], "pt": ["PT"],
               "ja": ["JP"], "ja_latn": ["JP"]}  # fmt: skip
LANG_IBANS = {"de": ["DE", "DE", "AT", "CH"], "fr": ["FR", "FR", "BE", "LU"], "es": ["ES"],
              "it": ["IT"], "nl": ["NL", "NL", "BE"], "pt": ["PT"], "ja": ["DE", "GB"],
              "ja_latn": ["GB"]}  # fmt: skip
HONORIFICS = {
    "en": {"f": ["Ms. ", "Dr. ", "Mrs. "], "m": ["Mr. ", "Dr. "]},
    "de": {"f": ["Frau ", "Dr. ", "Frau Dr. "], "m": ["Herr ", "Dr. ", "Herr Dr. "]},
    "fr": {"f": ["Mme ", "Dr "], "m": ["M. ", "Dr "]},
    "es": {"f": ["Sra. ", "Dra. "], "m": ["Sr. ", "Dr. "]},
    "it": {"f": ["Sig.ra ", "Dott.ssa "], "m": ["Sig. ", "Dott. "]},
    "nl": {"f": ["mevr. ", "dr. "], "m": ["dhr. ", "dr. "]},
    "pt": {"f": ["Sra. ", "Dra. "], "m": ["Sr. ", "Dr. "]},
    "ja_latn": {"f": ["Ms. "], "m": ["Mr. "]},
}
DOCTOR_TITLES = {"en": "Dr. ", "de": "Dr. ", "fr": "Dr ", "es": "Dr. ", "it": "Dott. ", "nl": "dr. ",
                 "pt": "Dr. "}  # fmt: skip
ROLES = {
    "en": ["Head of Procurement", "Account Manager", "Office Manager", "Finance Lead"],
    "de": ["Leiterin Einkauf", "Kundenbetreuung", "Buchhaltung", "Geschäftsführung"],
    "fr": ["Responsable achats", "Chargée de clientèle", "Service comptabilité"],
    "es": ["Responsable de compras", "Atención al cliente", "Departamento financiero"],
    "it": ["Responsabile acquisti", "Ufficio amministrazione", "Servizio clienti"],
    "nl": ["Inkoper", "Klantenservice", "Financiële administratie"],
    "pt": ["Responsável de compras", "Apoio ao cliente", "Departamento financeiro"],
    "ja": ["購買部", "経理部", "カスタマーサポート"],
}


def ctx(g: Gen, lang: str) -> dict[str, Piece]:
    """Fresh values for one record: people, contact data, payment data and look-alikes."""
    base = "en" if lang == "ja_latn" else lang
    if lang == "en":
        region = g.pick(["en_gb", "en_us"])
        phone_country = "US" if region == "en_us" else g.pick(["GB", "GB", "IE", "AU"])
        iban_country = g.pick(["GB", "IE", "DE", "NL"])
    else:
        region = LANG_REGION[lang]
        phone_country = g.pick(LANG_PHONES[lang])
        iban_country = g.pick(LANG_IBANS[lang])
    name, gender, slug = g.person(lang)
    name2, gender2, slug2 = g.person(lang)
    while name2 == name:
        name2, gender2, slug2 = g.person(lang)
    hon = HONORIFICS.get(lang)
    out: dict[str, Piece] = {
        "name": name,
        "name_t": [g.pick(hon[gender]), name] if hon and g.chance(0.6) else name,
        "name2": name2,
        "name2_t": [g.pick(hon[gender2]), name2] if hon else name2,
        "doc_t": [DOCTOR_TITLES.get(lang, "Dr. "), name2],
        "email": g.email(lang, slug),
        "email2": g.email(lang, slug2),
        "role_email": g.role_email(),
        "phone": g.phone(phone_country),
        "phone2": g.phone(phone_country, intl=True),
        "addr": g.address(region),
        "street": g.address(region, "street"),
        "card": g.card(),
        "card2": g.card(),
        "iban": g.iban(iban_country),
        "ssn": g.ssn(),
        "ip": g.ip(),
        "ip2": g.ipv4(),
        "order": g.order_no(),
        "ticket": g.ticket_no(),
        "invoice": g.invoice_no(),
        "tracking": g.tracking_no(),
        "date": g.date(base),
        "dob": g.dob(base),
        "price": g.price(base),
        "version": g.version(),
        "last4": g.neg(lambda: g.digits(4), "card_last4"),
        "role": g.pick(ROLES.get(base, ROLES["en"])),
        "uuid": g.uuid(),
    }
    if region in CITIES:
        city, post = g.pick(CITIES[region])
        out["city"], out["postcode"] = N(city, "city_alone"), N(post, "postcode_alone")
    else:
        out["city"], out["postcode"] = N("東京都", "city_alone"), N("160-0023", "postcode_alone")
    return out


# --------------------------------------------------------------------------- positive records
# Each template is a `{key}` string over the keys of `ctx`; several per language.

TICKETS = {
    "en": [
        "Summarise this support ticket and draft a polite reply.\n\nTicket {ticket} | opened "
        "{date} | priority: high\nCustomer: {name_t}\nEmail: {email}\nPhone: {phone}\n\nHi, I "
        "ordered a standing desk (order {order}) and was charged {price} twice on my card {card}."
        " Please refund one of the charges. The desk should be delivered to {addr}.\n\nThanks,\n"
        "{name}",
        "Can you classify the urgency of this ticket?\n\n---\nSubject: Cannot log in since the "
        "update to {version}\nFrom: {name} <{email}>\n\nSince yesterday's update the app keeps "
        "saying my session expired. I tried from home ({ip}) and from the office. Call me on "
        "{phone} if you need more info. Ref: {ticket}\n---",
        'Rewrite this complaint in a neutral tone for the escalation team:\n\n"This is the '
        "THIRD time I'm writing. My name is {name}, account email {email}. Your courier left my "
        "parcel (tracking {tracking}) at the wrong house. I live at {addr}, not next door! Phone "
        'me at {phone} today."',
        "Translate this ticket into German for our Berlin team:\n\nCustomer {name} ({email}) "
        "reports that the refund of {price} for invoice {invoice} went to an old account. The "
        "correct IBAN is {iban}. Customer prefers contact by phone: {phone}.",
    ],
    "de": [
        "Bitte fasse dieses Ticket zusammen und schlage eine Antwort vor.\n\nTicket {ticket} vom "
        "{date}\nKunde: {name_t}\nE-Mail: {email}\nTelefon: {phone}\n\nGuten Tag, meine "
        "Bestellung {order} ist nicht angekommen. Die Lieferadresse war {addr}. Bitte erstatten "
        "Sie den Betrag von {price} auf mein Konto {iban}.\n\nMit freundlichen Grüßen\n{name}",
        "Ordne dieses Ticket einer Abteilung zu:\n\nBetreff: Doppelte Abbuchung\nVon: {name} "
        "({email})\n\nHallo, Sie haben am {date} zweimal {price} von meiner Kreditkarte {card} "
        "abgebucht. Rückruf bitte unter {phone}. Vorgangsnummer {ticket}.",
        "Formuliere eine Antwort auf diese Beschwerde:\n\n„Sehr geehrte Damen und Herren, ich "
        "bin seit Wochen umgezogen und habe meine neue Anschrift ({addr}) schon zweimal "
        "mitgeteilt. Trotzdem kam die Rechnung {invoice} an die alte Adresse. Bitte melden Sie "
        "sich unter {phone} oder {email}. {name}“",
    ],
    "fr": [
        "Résume ce ticket et propose une réponse.\n\nTicket {ticket} — ouvert le {date}\nClient "
        ": {name_t}\nCourriel : {email}\nTéléphone : {phone}\n\nBonjour, ma commande {order} "
        "n'est jamais arrivée à mon adresse, {addr}. Merci de me rembourser {price} sur mon "
        "compte {iban}.\n\nCordialement,\n{name}",
        "Classe ce ticket par priorité :\n\nDe : {name} <{email}>\nObjet : Paiement débité deux "
        "fois\n\nBonjour, ma carte {card} a été débitée deux fois de {price} le {date}. Vous "
        "pouvez me joindre au {phone}. Référence : {ticket}.",
        "Rédige une réponse à cette réclamation :\n\n« Madame, Monsieur, je m'appelle {name} et "
        "j'habite au {addr}. Le technicien n'est jamais venu. Merci de me rappeler au {phone} "
        "ou d'écrire à {email}. »",
    ],
    "es": [
        "Resume este ticket y sugiere una respuesta.\n\nTicket {ticket} ({date})\nCliente: "
        "{name_t}\nCorreo: {email}\nTeléfono: {phone}\n\nHola, mi pedido {order} no ha llegado. "
        "La dirección de entrega es {addr}. Por favor, devolved los {price} a mi cuenta {iban}."
        "\n\nUn saludo,\n{name}",
        "Clasifica la urgencia de este mensaje:\n\nDe: {name} <{email}>\nAsunto: Cargo "
        "duplicado\n\nBuenas tardes, el {date} me cobraron dos veces {price} en la tarjeta "
        "{card}. Mi móvil es {phone}. Número de incidencia: {ticket}.",
    ],
    "it": [
        "Riassumi questo ticket e proponi una risposta.\n\nTicket {ticket} del {date}\nCliente: "
        "{name_t}\nEmail: {email}\nTelefono: {phone}\n\nBuongiorno, il mio ordine {order} non è "
        "mai arrivato all'indirizzo {addr}. Vi chiedo di rimborsare {price} sul conto {iban}."
        "\n\nCordiali saluti,\n{name}",
        "Assegna una priorità a questo ticket:\n\nDa: {name} <{email}>\nOggetto: Addebito "
        "doppio\n\nSalve, il {date} la mia carta {card} è stata addebitata due volte per "
        "{price}. Potete richiamarmi al {phone}. Pratica n. {ticket}.",
    ],
    "nl": [
        "Vat dit ticket samen en stel een antwoord voor.\n\nTicket {ticket} ({date})\nKlant: "
        "{name_t}\nE-mail: {email}\nTelefoon: {phone}\n\nGoedendag, mijn bestelling {order} is "
        "niet bezorgd op {addr}. Graag het bedrag van {price} terugstorten op {iban}.\n\nMet "
        "vriendelijke groet,\n{name}",
        "Geef dit ticket een prioriteit:\n\nVan: {name} <{email}>\nOnderwerp: Dubbele "
        "afschrijving\n\nHallo, op {date} is er twee keer {price} van mijn creditcard {card} "
        "afgeschreven. Bel me gerust op {phone}. Referentie {ticket}.",
    ],
    "pt": [
        "Resume este pedido de suporte e sugere uma resposta.\n\nPedido {ticket} ({date})\n"
        "Cliente: {name_t}\nEmail: {email}\nTelefone: {phone}\n\nBom dia, a minha encomenda "
        "{order} não chegou à morada {addr}. Peço o reembolso de {price} para o IBAN {iban}.\n\n"
        "Cumprimentos,\n{name}",
        "Classifica a prioridade desta mensagem:\n\nDe: {name} <{email}>\nAssunto: Cobrança em "
        "duplicado\n\nOlá, no dia {date} o meu cartão {card} foi debitado duas vezes em {price}. "
        "O meu telemóvel é {phone}. Referência: {ticket}.",
    ],
    "ja": [
        "このサポートチケットを要約して、返信案を作成してください。\n\nチケット番号: {ticket}\n"
        "受付日: {date}\nお客様: {name} 様\nメール: {email}\n電話: {phone}\n\nお世話になって"
        "おります。注文番号 {order} の商品がまだ届いていません。配送先は{addr}です。至急ご確認"
        "ください。\n\n{name}",
        "次の問い合わせの緊急度を判定してください。\n\n差出人: {name} <{email}>\n件名: "
        "クレジットカードの二重請求\n\n{date}にカード {card} で {price} が二重に請求されました。"
        "折り返しは {phone} までお願いします。問い合わせ番号: {ticket}",
    ],
    "ja_latn": [
        "Summarise this ticket from our Tokyo distributor.\n\nContact: {name_t}\nE-mail: "
        "{email}\nTel: {phone}\nShip to: {addr}\n\nThe second pallet (order {order}) was "
        "missing 12 units. Please credit {price} against invoice {invoice}.",
    ],
}

EMAILS = {
    "en": [
        "Summarise the following email in three bullet points:\n\nFrom: {name} <{email}>\nTo: "
        "{role_email}\nDate: {date}\nSubject: Contract renewal\n\nHi team,\n\nFollowing our "
        "call, please send the signed renewal to {name2_t} at our new office, {addr}. Our bank "
        "details have changed, so please update the vendor record: IBAN {iban}.\n\nBest regards,"
        "\n{name}\n{role}\nMobile: {phone}",
        "Extract the action items from this email thread.\n\n> On {date}, {name2} <{email2}> "
        "wrote:\n> Can you send me the updated quote by Friday?\n\nHi {name2},\n\nAttached is "
        "the revised quote ({invoice}). If the numbers work, call me on {phone} and we can "
        "sign this week.\n\nCheers,\n{name}",
        "Is this email a phishing attempt? Explain briefly.\n\nFrom: {role_email}\nTo: {email}"
        "\nSubject: Urgent: verify your payment details\n\nDear {name},\nWe could not process "
        "your last payment. Reply with the full number of the card ending in {last4} and your "
        "billing address, or your account will be suspended within 24 hours.",
    ],
    "de": [
        "Fasse diese E-Mail in zwei Sätzen zusammen:\n\nVon: {name} <{email}>\nAn: "
        "{role_email}\nDatum: {date}\nBetreff: Neue Bankverbindung\n\nSehr geehrte Damen und "
        "Herren,\n\nbitte überweisen Sie künftige Zahlungen auf unser neues Konto: {iban}. "
        "Unsere Rechnungsanschrift lautet ab sofort {addr}.\n\nMit freundlichen Grüßen\n{name}\n"
        "{role}\nTel. {phone}",
        "Antworte höflich auf diese Nachricht:\n\nHallo {name2},\n\nwie besprochen schicke ich "
        "dir die Unterlagen. Du erreichst mich mobil unter {phone}, meine private Adresse ist "
        "{email}.\n\nViele Grüße\n{name}",
    ],
    "fr": [
        "Résume ce courriel en trois points :\n\nDe : {name} <{email}>\nÀ : {role_email}\nDate "
        ": {date}\nObjet : Changement de coordonnées bancaires\n\nBonjour,\n\nVeuillez noter "
        "notre nouvel IBAN : {iban}. Le courrier doit désormais être envoyé au {addr}.\n\nBien "
        "cordialement,\n{name}\n{role}\nTél. : {phone}",
        "Réponds poliment à ce message :\n\nBonjour {name2},\n\nSuite à notre échange, voici "
        "mes coordonnées : {phone} et {email}. Je serai à Lyon la semaine prochaine.\n\n{name}",
    ],
    "es": [
        "Resume este correo en tres puntos:\n\nDe: {name} <{email}>\nPara: {role_email}\nFecha: "
        "{date}\nAsunto: Nuevos datos bancarios\n\nHola,\n\nOs informamos de que nuestra nueva "
        "cuenta es {iban}. La dirección de facturación pasa a ser {addr}.\n\nSaludos,\n{name}\n"
        "{role}\nTel.: {phone}",
        "Contesta a este correo de forma breve:\n\nHola {name2}:\n\nTe paso mis datos para el "
        "contrato: teléfono {phone}, correo {email}. Firmamos el {date}.\n\nUn abrazo,\n{name}",
    ],
    "it": [
        "Riassumi questa email in tre punti:\n\nDa: {name} <{email}>\nA: {role_email}\nData: "
        "{date}\nOggetto: Variazione coordinate bancarie\n\nBuongiorno,\n\nvi comunichiamo il "
        "nuovo IBAN: {iban}. La sede legale è ora in {addr}.\n\nCordiali saluti,\n{name}\n{role}"
        "\nTel. {phone}",
        "Rispondi a questa email:\n\nCiao {name2},\n\nti lascio i miei recapiti: cellulare "
        "{phone}, email {email}. Ci vediamo il {date}.\n\n{name}",
    ],
    "nl": [
        "Vat deze e-mail samen in drie punten:\n\nVan: {name} <{email}>\nAan: {role_email}\n"
        "Datum: {date}\nOnderwerp: Nieuw rekeningnummer\n\nBeste collega's,\n\nOns nieuwe "
        "rekeningnummer is {iban}. Post graag voortaan naar {addr}.\n\nMet vriendelijke groet,\n"
        "{name}\n{role}\nTel. {phone}",
        "Beantwoord deze mail kort:\n\nHoi {name2},\n\nHierbij mijn gegevens voor het contract: "
        "{phone} en {email}. Tot {date}!\n\n{name}",
    ],
    "pt": [
        "Resume este email em três pontos:\n\nDe: {name} <{email}>\nPara: {role_email}\nData: "
        "{date}\nAssunto: Alteração de dados bancários\n\nBom dia,\n\nO nosso novo IBAN é "
        "{iban}. A correspondência deve ser enviada para {addr}.\n\nCom os melhores cumprimentos,"
        "\n{name}\n{role}\nTel.: {phone}",
    ],
    "ja": [
        "次のメールを3行で要約してください。\n\n差出人: {name} <{email}>\n宛先: {role_email}\n"
        "日付: {date}\n件名: 請求書送付先の変更\n\nいつもお世話になっております。\n請求書の送付先"
        "が{addr}に変わりました。ご不明点は {phone} までご連絡ください。\n\n{role} {name}",
    ],
}

FORMS = {
    "en_us": [
        "Extract the fields from this form as JSON:\n\nNEW PATIENT REGISTRATION\nFull name: "
        "{name}\nDate of birth: {dob}\nSSN: {ssn}\nHome address: {addr}\nPhone: {phone}\nEmail: "
        "{email}\nInsurance member ID: {member_id}\nEmergency contact: {name2}, {phone2}",
        "Check this rental application for missing fields:\n\nApplicant: {name}\nSocial Security "
        "No.: {ssn}\nCurrent address: {addr}\nCell: {phone}\nE-mail: {email}\nEmployer: Harbor "
        "Freight Logistics\nMonthly income: {price}\nReference: {name2}, {phone2}",
    ],
    "en_gb": [
        "Turn this web form submission into a CRM note:\n\nName: {name_t}\nAddress: {addr}\n"
        "Telephone: {phone}\nEmail: {email}\nPreferred contact time: after 6 pm\nMessage: Please "
        "quote for replacing two sash windows.",
    ],
    "de": [
        "Übertrage dieses Formular in eine Tabelle:\n\nMitgliedsantrag\nName: {name}\nStraße: "
        "{street}\nPLZ/Ort: {postcode} {city}\nTelefon: {phone}\nE-Mail: {email}\nGeburtsdatum: "
        "{dob}\nIBAN: {iban}\nKontoinhaber: {name}",
        "Prüfe das SEPA-Lastschriftmandat auf Vollständigkeit:\n\nZahlungspflichtiger: {name}\n"
        "Anschrift: {addr}\nIBAN: {iban}\nOrt, Datum: {city}, {date}",
    ],
    "fr": [
        "Mets ce formulaire au format JSON :\n\nFormulaire d'adhésion\nNom : {name}\nAdresse : "
        "{addr}\nTél. : {phone}\nCourriel : {email}\nIBAN : {iban}\nDate de naissance : {dob}",
        "Vérifie ce mandat de prélèvement SEPA :\n\nTitulaire du compte : {name_t}\nAdresse : "
        "{street}\nCode postal et ville : {postcode} {city}\nIBAN : {iban}",
    ],
    "es": [
        "Pasa este formulario a JSON:\n\nFicha de cliente\nNombre: {name}\nDirección: {addr}\n"
        "Teléfono: {phone}\nCorreo electrónico: {email}\nIBAN: {iban}\nFecha de nacimiento: {dob}",
    ],
    "it": [
        "Trasforma questo modulo in JSON:\n\nModulo di iscrizione\nNome e cognome: {name}\n"
        "Indirizzo: {addr}\nTelefono: {phone}\nEmail: {email}\nIBAN: {iban}\nData di nascita: "
        "{dob}",
    ],
    "nl": [
        "Zet dit formulier om naar JSON:\n\nAanmeldformulier\nNaam: {name}\nAdres: {addr}\n"
        "Telefoon: {phone}\nE-mail: {email}\nIBAN: {iban}\nGeboortedatum: {dob}",
    ],
    "pt": [
        "Converte este formulário para JSON:\n\nFicha de inscrição\nNome: {name}\nMorada: "
        "{addr}\nTelefone: {phone}\nEmail: {email}\nIBAN: {iban}\nData de nascimento: {dob}",
    ],
    "ja": [
        "次の申込フォームの内容をJSONにしてください。\n\nお名前: {name}\nご住所: {addr}\n"
        "電話番号: {phone}\nメールアドレス: {email}\n生年月日: {dob}\nカード番号: {card}",
    ],
}

CHATS = {
    "en": [
        "Summarise this chat for the CRM.\n\nUser: hi, I need to update my payment card\n"
        "Agent: Sure! Can you confirm your full name and the email on the account?\nUser: "
        "{name}, {email}\nAgent: Thanks. What's the new card number?\nUser: {card} exp 08/28\n"
        "Agent: Done. Anything else?\nUser: yes, my new number is {phone}",
        "[10:02] customer: my parcel says delivered but it's not here\n[10:03] agent: Sorry to "
        "hear that! Which address was it sent to?\n[10:03] customer: {addr}\n[10:04] agent: And "
        "the name on the order?\n[10:04] customer: {name}\n[10:05] agent: I've opened case "
        "{ticket}; we'll call you at {phone}.\n\nWhat should the agent do next?",
        "Please turn this transcript into a ticket.\n\nVisitor: I was double charged.\nBot: I "
        "can help. Please share the last 4 digits of your card.\nVisitor: its {card} actually, "
        "the whole thing, sorry\nBot: Please never share full card numbers in chat.\nVisitor: ok."
        " email is {email}",
    ],
    "de": [
        "Fasse den Chat zusammen:\n\nKunde: Hallo, ich möchte meine Bankverbindung ändern.\n"
        "Agent: Gern. Wie lautet Ihr Name?\nKunde: {name}\nAgent: Und die neue IBAN?\nKunde: "
        "{iban}\nAgent: Danke, ist hinterlegt. Sollen wir Sie unter {phone} zurückrufen?\n"
        "Kunde: Ja bitte.",
    ],
    "fr": [
        "Résume cette conversation :\n\nClient : Bonjour, je voudrais changer mon adresse de "
        "livraison.\nConseiller : Bien sûr, quelle est la nouvelle adresse ?\nClient : {addr}\n"
        "Conseiller : Et votre nom ?\nClient : {name}\nConseiller : C'est noté. Un SMS de "
        "confirmation sera envoyé au {phone}.",
    ],
    "es": [
        "Resume esta conversación:\n\nCliente: Hola, quiero cambiar la tarjeta de pago.\n"
        "Agente: Claro, ¿me confirma su nombre?\nCliente: {name}\nAgente: ¿Y el número de la "
        "nueva tarjeta?\nCliente: {card}\nAgente: Listo. Le enviaremos la confirmación a {email}.",
    ],
    "it": [
        "Riassumi questa chat:\n\nCliente: Buongiorno, devo aggiornare il mio indirizzo.\n"
        "Operatore: Certo, mi dice il nuovo indirizzo?\nCliente: {addr}\nOperatore: E il suo "
        "nome?\nCliente: {name}\nOperatore: Fatto. La richiamiamo al {phone} se serve.",
    ],
    "nl": [
        "Vat dit gesprek samen:\n\nKlant: Hoi, ik wil mijn betaalgegevens wijzigen.\nMedewerker:"
        " Prima, wat is uw naam?\nKlant: {name}\nMedewerker: En het nieuwe rekeningnummer?\n"
        "Klant: {iban}\nMedewerker: Genoteerd, u krijgt een bevestiging op {email}.",
    ],
    "pt": [
        "Resume esta conversa:\n\nCliente: Olá, quero mudar a morada de entrega.\nAssistente: "
        "Claro, qual é a nova morada?\nCliente: {addr}\nAssistente: E o seu nome?\nCliente: "
        "{name}\nAssistente: Feito. Enviamos confirmação para {phone}.",
    ],
    "ja": [
        "このチャットを要約してください。\n\nお客様: 配送先を変更したいです。\n担当者: "
        "新しいご住所を教えてください。\nお客様: {addr}\n担当者: お名前をお願いします。\n"
        "お客様: {name}です。\n担当者: 承知しました。確認のため {phone} にお電話します。",
    ],
}

NOTES = {
    "hr_note": [
        (
            "en",
            "Draft a short onboarding summary from these HR notes:\n\nNew hire: {name}\n"
            "Start date: {date}\nSSN: {ssn}\nHome address: {addr_us}\nPersonal email: {email}\n"
            "Payroll: direct deposit, bank details on file\nManager: {name2}\nLaptop asset tag: "
            "{asset}",
        ),
        (
            "en",
            "Rewrite these interview notes so they can be shared with the panel (remove "
            "anything sensitive):\n\nCandidate {name} ({email}, {phone}) interviewed on {date}. "
            "Strong on SQL, weaker on system design. Background check consent signed; SSN "
            "{ssn} submitted to the screening vendor. Lives at {addr_us}, open to relocation.",
        ),
        (
            "en",
            "Summarise this leaver checklist:\n\nEmployee: {name}\nLast day: {date}\n"
            "Forwarding address: {addr}\nFinal pay to IBAN {iban}\nReturn laptop {asset} to "
            "{name2}. Revoke VPN access from {ip}.",
        ),
        (
            "de",
            "Fasse diese Personalnotiz zusammen:\n\nMitarbeiter/in: {name}\nEintritt: "
            "{date}\nWohnadresse: {addr}\nGehaltskonto: {iban}\nNotfallkontakt: {name2}, {phone}",
        ),
        (
            "fr",
            "Résume cette note RH :\n\nSalarié(e) : {name}\nDate d'entrée : {date}\nAdresse : "
            "{addr}\nRIB / IBAN : {iban}\nTéléphone personnel : {phone}\nResponsable : {name2}",
        ),
    ],
    "medical_note": [
        (
            "en",
            "Summarise this intake note for the attending physician.\n\nPatient: {name_t}, "
            "DOB {dob}, SSN {ssn}\nAddress: {addr_us}\nPhone: {phone}\nPresenting complaint: "
            "intermittent chest pain for 3 days, BP 142/91, HR 88 bpm, weight 82.5 kg. History of "
            "Hodgkin lymphoma (in remission since 2016). Referred by {doc_t}.",
        ),
        (
            "en",
            "Write a discharge letter from these notes:\n\n{name}, {dob}. Admitted {date} "
            "with community-acquired pneumonia. Treated with amoxicillin 500 mg TDS. Discharged "
            "home to {addr}. GP to follow up; patient contact {phone} / {email}.",
        ),
        (
            "de",
            "Fasse den Aufnahmebogen zusammen:\n\nPatient: {name_t}, geb. {dob}\nAnschrift: "
            "{addr}\nTelefon: {phone}\nAnamnese: seit 2 Wochen Kopfschmerzen, RR 135/85, keine "
            "Allergien bekannt. Hausarzt: {doc_t}.",
        ),
        (
            "fr",
            "Résume cette fiche d'admission :\n\nPatient(e) : {name_t}, date de naissance : {dob}\nAdresse "
            ": {addr}\nTéléphone : {phone}\nMotif : douleurs abdominales depuis 48 h, T 38,2 °C. "
            "Médecin traitant : {doc_t}.",
        ),
        (
            "es",
            "Resume esta nota de ingreso:\n\nPaciente: {name_t}, fecha de nacimiento {dob}\nDomicilio: "
            "{addr}\nTeléfono: {phone}\nMotivo: tos persistente desde hace 10 días. Médico de "
            "cabecera: {doc_t}.",
        ),
        (
            "it",
            "Riassumi questa scheda di accettazione:\n\nPaziente: {name_t}, data di nascita {dob}\n"
            "Residenza: {addr}\nTelefono: {phone}\nMotivo del ricovero: frattura del polso destro."
            " Medico curante: {doc_t}.",
        ),
    ],
}


def positive_template(table: dict[str, list[str]], kind: str) -> Callable[[Gen], tuple]:
    def build(g: Gen) -> tuple:
        lang = g.pick(list(table))
        c = ctx(g, lang.split("_")[0] if lang in ("en_us", "en_gb") else lang)
        if lang == "en_us":
            c = us_ctx(g, c)
        template = g.pick(table[lang])
        return kind, "ja" if lang == "ja_latn" else lang.split("_")[0], fill(template, **c)

    return build


def us_ctx(g: Gen, c: dict) -> dict:
    c = dict(c)
    c["addr"] = g.address("en_us")
    c["phone"], c["phone2"] = g.phone("US"), g.phone("US")
    c["price"] = N(f"${g.r.randint(1800, 9500):,}.00", "price")
    c["member_id"] = g.neg(lambda: g.chars(3, string.ascii_uppercase) + g.digits(9), "member_id")
    return c


def note_record(kind: str) -> Callable[[Gen], tuple]:
    def build(g: Gen) -> tuple:
        lang, template = g.pick(NOTES[kind])
        c = ctx(g, lang)
        c["addr_us"] = g.address("en_us")
        if "addr_us" in template:
            c["phone"] = g.phone("US")
        c["asset"] = g.neg(lambda: f"LT-{g.digits(5)}", "asset_tag")
        return kind, lang, fill(template, **c)

    return build


EU_LANGS = ["en", "de", "fr", "es", "it", "nl", "pt"]


def csv_record(g: Gen) -> tuple:
    variant = g.pick(["crm", "crm", "payroll", "refunds", "leads"])
    rows: list[Piece] = []
    n = g.r.randint(3, 6)
    if variant == "crm":
        intro = "Deduplicate this CRM export and tell me which rows look like the same person:\n\n"
        rows.append("customer_id,name,email,phone,address,segment\n")
        for _ in range(n):
            c = ctx(g, g.pick(EU_LANGS))
            seg = g.pick(["smb", "enterprise", "consumer"])
            rows += [c["uuid"], ",", c["name"], ",", c["email"], ",", c["phone"], ',"', c["addr"],
                     f'",{seg}\n']  # fmt: skip
    elif variant == "payroll":
        intro = "Find the employees with a missing state in this payroll extract:\n\n"
        rows.append("emp_id,full_name,ssn,state,annual_salary\n")
        for _ in range(n):
            c = ctx(g, "en")
            state = g.pick(["CA", "NY", "TX", "", "WA", "IL"])
            emp = g.neg(lambda: "E" + g.digits(5), "employee_id")
            salary = g.r.randint(48, 190) * 1000
            rows += [emp, ",", c["name"], ",", g.ssn(), f",{state},{salary}\n"]
    elif variant == "refunds":
        intro = "Total the refunds per currency in this CSV:\n\n"
        rows.append("refund_id;customer;iban;amount;currency;date\n")
        for _ in range(n):
            lang = g.pick(EU_LANGS[1:])
            c = ctx(g, lang)
            ref = g.neg(lambda: "RF-" + g.digits(7), "refund_id")
            amount = f"{g.r.randint(5, 900)},{g.pick(['00', '50', '99'])}"
            rows += [ref, ";", c["name"], ";", g.iban(g.pick(LANG_IBANS[lang]), grouped=False),
                     f";{amount};EUR;", c["date"], "\n"]  # fmt: skip
    else:
        intro = "Score these trade-show leads from 1 to 5:\n\n"
        rows.append("name\tcompany\temail\tphone\tcard_on_file\tnotes\n")
        for _ in range(n):
            c = ctx(g, g.pick(EU_LANGS))
            company = g.pick(["Nordlicht Versand GmbH", "Atelier Lumière SARL", "Brightwater Ltd",
                              "Ferrari & Figli S.p.A.", "De Graaf Techniek B.V."])  # fmt: skip
            card = [g.card(fmt="")] if g.chance(0.7) else ["n/a"]
            rows += [c["name"], f"\t{company}\t", c["email"], "\t", c["phone2"], "\t", card,
                     "\t" + g.pick(["wants demo", "budget Q3", "call back", ""]) + "\n"]  # fmt: skip
    return "csv", "en", [intro, rows]


def json_record(g: Gen) -> tuple:
    lang = g.pick(EU_LANGS + ["ja"])
    c = ctx(g, lang)
    variant = g.pick(["customer", "order", "webhook"])
    if variant == "customer":
        pieces = [
            "Validate this customer record against our schema and list problems:\n\n",
            '{\n  "id": "',
            c["uuid"],
            '",\n  "name": "',
            c["name"],
            '",\n  "email": "',
            c["email"],
            '",\n  "phone": "',
            c["phone2"],
            '",\n  "billing_address": "',
            c["addr"],
            '",\n  "iban": "',
            c["iban"],
            '",\n  "created_at": "2024-05-02T09:14:55Z",\n  "tags": ["vip", "newsletter"]\n}',
        ]
    elif variant == "order":
        pieces = [
            "Why did this order fail fraud screening?\n\n",
            '{"order_id": "',
            c["order"],
            '", "amount": 249.9, "currency": "EUR", "customer": {"name": "',
            c["name"],
            '", "email": "',
            c["email"],
            '"}, "payment": {"card_number": "',
            c["card"],
            '", "exp": "11/27"}, "shipping": {"line1": "',
            c["street"],
            '", "postcode": "',
            c["postcode"],
            '", "city": "',
            c["city"],
            '"}, "client_ip": "',
            c["ip"],
            '", "risk_score": 0.87}',
        ]
    else:
        pieces = [
            "Explain what this webhook payload means:\n\n",
            '{\n  "event": "customer.updated",\n  "event_id": "',
            g.uuid(),
            '",\n  "data": {\n    "full_name": "',
            c["name"],
            '",\n    "contact": {"email": "',
            c["email"],
            '", "mobile": "',
            c["phone"],
            '"},\n    "last_login_ip": "',
            c["ip"],
            '"\n  }\n}',
        ]
    return "json", "en" if lang != "ja" else "ja", pieces


def sql_record(g: Gen) -> tuple:
    rows: list[Piece] = []
    for i in range(g.r.randint(2, 4)):
        c = ctx(g, g.pick(EU_LANGS))
        rows += ["  (", str(1000 + i), ", '", c["name"], "', '", c["email"], "', '", c["phone2"],
                 "', '", c["iban"], "')", ",\n" if i < 3 else ";\n"]  # fmt: skip
    rows[-1] = ";\n"
    return (
        "sql",
        "en",
        [
            "Convert this seed script to a Django fixture:\n\nINSERT INTO customers (id, name, email, "
            "phone, iban) VALUES\n",
            rows,
        ],
    )


def billing_record(g: Gen) -> tuple:
    lang = g.pick(["en", "en", "de", "fr", "nl"])
    c = ctx(g, lang)
    templates = {
        "en": [
            "Reconcile these two refunds and tell me if anything is off: {price} back to card "
            "{card} for {name} (invoice {invoice}), and a bank transfer of the same amount to "
            "{iban}. Order {order} was only paid once.",
            "Our finance bot flagged a mismatch. Customer {name} paid with {card} but the "
            "chargeback mentions {card2}. Draft an email to {email} asking which card they used.",
            "Write a payment reminder for {name_t} ({email}): invoice {invoice} for {price} is "
            "overdue since {date}. Bank: {iban}.",
        ],
        "de": ["Schreibe eine Zahlungserinnerung an {name_t} ({email}): Die Rechnung {invoice} "
               "über {price} ist seit dem {date} fällig. Bitte überweisen auf {iban}.",
               "Prüfe diese Erstattung: {name} hat am {date} mit der Karte {card} bezahlt, die "
               "Gutschrift über {price} ging aber an die Karte {card2}."],
        "fr": ["Rédige une relance de paiement pour {name_t} ({email}) : la facture {invoice} "
               "de {price} est échue depuis le {date}. Virement sur {iban}, merci.",
               "Vérifie ce remboursement : {name} a payé avec la carte {card} le {date}, mais "
               "l'avoir de {price} a été crédité sur la carte {card2}."],
        "nl": ["Schrijf een betalingsherinnering aan {name_t} ({email}): factuur {invoice} van "
               "{price} staat sinds {date} open. Graag overmaken naar {iban}.",
               "Controleer deze terugbetaling: {name} betaalde op {date} met kaart {card}, maar "
               "de creditering van {price} ging naar kaart {card2}."],
    }  # fmt: skip
    return "prose", lang, fill(g.pick(templates[lang]), **c)


# Code and configuration with secrets; every secret is random.
CODE_VARIANTS = (
    "openai_py", "env_file", "aws_credentials", "git_remote", "slack_bot", "stripe_js",
    "firebase", "pem_paste", "jwt_curl", "compose", "django_settings", "terraform",
    "k8s_secret", "anthropic_ts", "github_actions", "celery_config", "connection_strings",
    "jwt_python", "pem_convert",
)  # fmt: skip


def code_record(g: Gen) -> tuple:
    # Variants in turn, so every secret shape gets a fair share of the records.
    variant = CODE_VARIANTS[g.code_turn % len(CODE_VARIANTS)]
    g.code_turn += 1
    s = g.secret
    if variant == "openai_py":
        pieces = ["Why does this raise AuthenticationError?\n\n```python\nfrom openai import "
                  "OpenAI\n\nclient = OpenAI(api_key=\"", s("openai"), "\")\nresp = client.chat."
                  "completions.create(model=\"gpt-4o-mini\", messages=[{\"role\": \"user\", "
                  "\"content\": \"hi\"}])\nprint(resp.choices[0].message.content)\n```"]  # fmt: skip
    elif variant == "env_file":
        pieces = ["Review this .env for problems before I deploy:\n\n```\nDEBUG=false\nPORT="
                  "8000\nOPENAI_API_KEY=", s("openai"), "\nANTHROPIC_API_KEY=", s("anthropic"),
                  "\nDATABASE_URL=", g.cred_url("postgres"), "\nSENTRY_RELEASE=", g.version(),
                  "\nALLOWED_HOSTS=app.example.com\n```"]  # fmt: skip
    elif variant == "aws_credentials":
        pieces = ["My boto3 script says the token is invalid. Here is ~/.aws/credentials:\n\n"
                  "[default]\naws_access_key_id = ", s("aws_id"), "\naws_secret_access_key = ",
                  s("aws_secret"), "\nregion = eu-central-1\n\n[staging]\naws_access_key_id = ",
                  s("aws_id"), "\naws_secret_access_key = ", s("aws_secret"),
                  "\nregion = us-east-1"]  # fmt: skip
    elif variant == "git_remote":
        token = g.secret("github").value
        pieces = ["git push fails with 403, what's wrong?\n\n$ git remote -v\norigin  ",
                  S(f"https://oauth2:{token}@github.com/acme-corp/billing-service.git", "SECRET",
                    "url"),
                  " (push)\n$ git log -1 --oneline\n", g.git_sha(short=True),
                  " Bump version to ", g.version()]  # fmt: skip
    elif variant == "slack_bot":
        pieces = ["Refactor this into a class:\n\n```python\nimport os\nfrom slack_sdk import "
                  "WebClient\n\nSLACK_BOT_TOKEN = \"", s("slack"), "\"\nclient = WebClient(token="
                  "SLACK_BOT_TOKEN)\nclient.chat_postMessage(channel=\"#alerts\", text=\"Deploy "
                  "finished\")\n```"]  # fmt: skip
    elif variant == "stripe_js":
        pieces = ["Convert this to TypeScript:\n\n```js\nconst stripe = require('stripe')('",
                  s("stripe"), "');\n\nasync function refund(chargeId) {\n  return stripe.refunds"
                  ".create({ charge: chargeId });\n}\n```"]  # fmt: skip
    elif variant == "firebase":
        pieces = ["Why is my Firebase init failing?\n\n```js\nconst firebaseConfig = {\n  apiKey:"
                  " \"", s("google"), "\",\n  authDomain: \"demo-shop-4821.firebaseapp.com\",\n  "
                  "projectId: \"demo-shop-4821\",\n  appId: \"1:", g.digits(12, "123456789"),
                  ":web:", g.chars(22, "0123456789abcdef"), "\"\n};\n```"]  # fmt: skip
    elif variant == "pem_paste":
        pieces = ["ssh says 'invalid format' for this key, is it corrupted?\n\n", g.pem(),
                  "\n\nI generated it on the build server yesterday."]  # fmt: skip
    elif variant == "jwt_python":
        pieces = ["This works in Postman but not in Python, why?\n\n```python\nimport requests"
                  "\n\nTOKEN = \"", g.jwt(), "\"\nr = requests.get(\"https://api.example.com/v2/"
                  "me\", headers={\"Authorization\": f\"Bearer {TOKEN}\"}, timeout=10)\n```"]  # fmt: skip
    elif variant == "pem_convert":
        pieces = ["Convert this key to PKCS#8 and tell me the openssl command:\n\n", g.pem(),
                  "\n\n(it is the deploy key from our CI variables)"]  # fmt: skip
    elif variant == "jwt_curl":
        pieces = ["Decode this token and tell me when it expires:\n\ncurl -H \"Authorization: "
                  "Bearer ", g.jwt(), "\" https://api.example.com/v2/orders?limit=50"]  # fmt: skip
    elif variant == "compose":
        pw = g.password()
        pieces = ["Add a healthcheck to this docker-compose file:\n\n```yaml\nservices:\n  db:\n"
                  "    image: postgres:16\n    environment:\n      POSTGRES_USER: app\n      "
                  "POSTGRES_PASSWORD: ", pw, "\n  api:\n    image: ghcr.io/acme-corp/api:",
                  g.version(), "\n    environment:\n      DATABASE_URL: ",
                  S(f"postgresql://app:{g.url_password()}@db:5432/app", "SECRET", "url"),
                  "\n      REDIS_URL: redis://cache:6379/0\n```"]  # fmt: skip
    elif variant == "django_settings":
        pieces = ["Split these settings into base/dev/prod:\n\n```python\nDEBUG = True\n"
                  "SECRET_KEY = \"", S(g.chars(50, ALNUM + "!@#%^*(-_=+)"), "SECRET", "entropy"),
                  "\"\nALLOWED_HOSTS = [\"*\"]\nEMAIL_HOST_PASSWORD = \"", g.password(),
                  "\"\nTIME_ZONE = \"Europe/Berlin\"\n```"]  # fmt: skip
    elif variant == "terraform":
        pieces = ["terraform plan complains about the provider block:\n\n```hcl\nprovider \"aws\""
                  " {\n  region     = \"eu-west-1\"\n  access_key = \"", s("aws_id"),
                  "\"\n  secret_key = \"", s("aws_secret"), "\"\n}\n```"]  # fmt: skip
    elif variant == "k8s_secret":
        pieces = ["Is this Kubernetes manifest valid?\n\n```yaml\napiVersion: v1\nkind: Secret\n"
                  "metadata:\n  name: payments\ntype: Opaque\nstringData:\n  STRIPE_SECRET_KEY: ",
                  s("stripe"), "\n  WEBHOOK_SIGNING_SECRET: ", s("entropy"),
                  "\n  LOG_LEVEL: info\n```"]  # fmt: skip
    elif variant == "anthropic_ts":
        pieces = ["Add streaming to this:\n\n```ts\nimport Anthropic from '@anthropic-ai/sdk';\n"
                  "const client = new Anthropic({ apiKey: '", s("anthropic"), "' });\nconst msg ="
                  " await client.messages.create({ model: 'claude-3-5-sonnet-latest', max_tokens:"
                  " 1024, messages: [{ role: 'user', content: 'Hello' }] });\n```"]  # fmt: skip
    elif variant == "github_actions":
        pieces = ["Why does the checkout step fail?\n\n```yaml\n- uses: actions/checkout@v4\n"
                  "  with:\n    token: ", s("github"), "\n    ref: ", g.git_sha(),
                  "\n```"]  # fmt: skip
    elif variant == "celery_config":
        pieces = ["Tune this Celery config for 8 workers:\n\n```python\nbroker_url = \"",
                  g.cred_url("amqp"), "\"\nresult_backend = \"", g.cred_url("redis"),
                  "\"\nworker_prefetch_multiplier = 1\ntask_acks_late = True\n```"]  # fmt: skip
    else:
        pieces = ["Which of these connection strings point at production?\n\n- reporting: ",
                  g.cred_url("mysql"), "\n- crm: ", g.cred_url("mongodb+srv"), "\n- grafana: ",
                  g.cred_url("https"), "\n- local: postgres://localhost:5432/dev"]  # fmt: skip
    kind = "config" if variant in ("env_file", "aws_credentials", "compose", "k8s_secret",
                                   "terraform", "github_actions") else "code"  # fmt: skip
    return kind, "en", pieces


def log_record(g: Gen) -> tuple:
    variant = g.pick(["nginx", "sshd", "app_json", "firewall", "postgres", "auth_audit"])
    lines: list[Piece] = []
    n = g.r.randint(3, 6)
    if variant == "nginx":
        intro = "Which clients are hammering the API? Access log:\n\n"
        for i in range(n):
            ua = ["Mozilla/5.0 (X11; Linux x86_64) Chrome/", g.build_no(), " Safari/537.36"]
            lines += [g.ip(), f" - - [12/Mar/2024:10:15:{30 + i:02d} +0000] \"GET /api/v1/orders"
                      f"?page={i + 1} HTTP/1.1\" {g.pick(['200', '200', '429', '500'])} "
                      f"{g.r.randint(200, 9000)} \"-\" \"", ua, "\"\n"]  # fmt: skip
    elif variant == "sshd":
        intro = "Summarise these auth failures:\n\n"
        for i in range(n):
            lines += [
                f"Mar 12 03:{10 + i:02d}:44 bastion-01 sshd[{g.r.randint(1000, 9000)}]: "
                f"Failed password for invalid user {g.pick(['admin', 'oracle', 'test'])} "
                "from ",
                g.ipv4("public"),
                f" port {g.r.randint(30000, 65000)} ssh2\n",
            ]
    elif variant == "app_json":
        intro = "Explain these login errors:\n\n"
        for _ in range(n):
            c = ctx(g, g.pick(EU_LANGS))
            lines += [
                '{"ts":"2024-06-0',
                str(g.r.randint(1, 9)),
                "T12:",
                str(g.r.randint(10, 59)),
                ':07Z","level":"warn","request_id":"',
                g.uuid(),
                '","user":"',
                c["email"],
                '","client_ip":"',
                g.ip(),
                '","msg":"login failed: bad password"}\n',
            ]
    elif variant == "firewall":
        intro = "Is this traffic suspicious?\n\n"
        for _ in range(n):
            lines += ["kernel: [UFW BLOCK] IN=eth0 OUT= MAC=", g.mac(), " SRC=", g.ipv4("public"),
                      " DST=", g.ipv4("private10"), f" LEN=60 PROTO=TCP SPT={g.r.randint(1024, 65000)}"
                      f" DPT={g.pick(['22', '3389', '5432', '6379'])}\n"]  # fmt: skip
    elif variant == "postgres":
        intro = "Why are connections being dropped?\n\n"
        for _ in range(n):
            lines += ["2024-03-12 10:15:32.118 UTC [", str(g.r.randint(1000, 9999)), "] LOG:  "
                      "connection received: host=", g.ipv4(g.pick(["private10", "private172"])),
                      f" port={g.r.randint(30000, 65000)}\n"]  # fmt: skip
    else:
        intro = "Turn this audit trail into a timeline:\n\n"
        for _ in range(n):
            c = ctx(g, g.pick(EU_LANGS))
            lines += [
                "2024-04-0",
                str(g.r.randint(1, 9)),
                " ",
                c["name"],
                " (",
                c["email"],
                ") ",
                g.pick(
                    ["signed in", "exported report", "changed MFA device", "downloaded invoices"]
                ),  # fmt: skip
                " from ",
                g.ip(),
                "\n",
            ]
    return "log", "en", [intro, lines]


def romanised_ja_record(g: Gen) -> tuple:
    c = ctx(g, "ja_latn")
    template = g.pick(TICKETS["ja_latn"] + [
        "Prepare a shipping label from this:\n\nConsignee: {name}\n{addr}\nTel {phone}\n"
        "E-mail {email}\nContents: 2 x ceramic vase, declared value {price}",
    ])  # fmt: skip
    return "form" if "Consignee" in template else "support_ticket", "en", fill(template, **c)


# --------------------------------------------------------------------------- hard negatives
# Records below carry no gold span at all: every value only looks like PII.


def ph(value: str) -> N:
    return N(value, "placeholder_secret")


NEG_CODE_VARIANTS = tuple(
    ["env_ref", "example_env", "actions", "docker_digest", "lockfile",
                      "git_ops", "public_key", "uuids", "checksums", "curl_placeholder"]
)  # fmt: skip


def neg_code_record(g: Gen) -> tuple:
    variant = NEG_CODE_VARIANTS[g.neg_code_turn % len(NEG_CODE_VARIANTS)]
    g.neg_code_turn += 1
    if variant == "env_ref":
        pieces = ["Why is the key empty in CI?\n\n```python\nimport os\nfrom openai import OpenAI"
                  "\n\nclient = OpenAI(api_key=os.environ[\"OPENAI_API_KEY\"])\n```\n\nThe README "
                  "says to run `export OPENAI_API_KEY=\"", ph("sk-..."), "\"` first, and the "
                  "Anthropic one starts with `", ph("sk-ant-"), "`. I'm on openai ", g.version(),
                  "."]  # fmt: skip
    elif variant == "example_env":
        pieces = ["Write docs for this .env.example:\n\n```\nOPENAI_API_KEY=", ph("YOUR_API_KEY"),
                  "\nSTRIPE_SECRET_KEY=", ph("sk_live_YOUR_KEY_HERE"), "\nAWS_ACCESS_KEY_ID=",
                  ph("<your-access-key-id>"), "\nDATABASE_URL=",
                  N("postgres://USER:PASSWORD@HOST:5432/DBNAME", "placeholder_url"),
                  "\nREDIS_URL=redis://localhost:6379/0\nSLACK_BOT_TOKEN=", ph("xoxb-your-token"),
                  "\n```"]  # fmt: skip
    elif variant == "actions":
        pieces = ["Explain this workflow step by step:\n\n```yaml\nname: release\non:\n  push:\n"
                  "    tags: ['v*']\njobs:\n  publish:\n    runs-on: ubuntu-24.04\n    steps:\n"
                  "      - uses: actions/checkout@", g.git_sha(), "\n      - run: make release "
                  "VERSION=", g.version(), "\n        env:\n          GITHUB_TOKEN: ${{ secrets."
                  "GITHUB_TOKEN }}\n          NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n```"]  # fmt: skip
    elif variant == "docker_digest":
        pieces = ["Pin these images properly:\n\n```dockerfile\nFROM python:3.12-slim@sha256:",
                  g.sha256(), "\nARG APP_VERSION=", g.version(), "\nENV PIP_NO_CACHE_DIR=1\n"
                  "COPY requirements.txt .\nRUN pip install -r requirements.txt\n```"]  # fmt: skip
    elif variant == "lockfile":
        integrity = base64.b64encode(g.r.randbytes(64)).decode()
        pieces = ["Why did this lockfile entry change?\n\n```json\n\"node_modules/left-pad\": {\n"
                  "  \"version\": \"", g.version().value.lstrip("v"), "\",\n  \"resolved\": "
                  "\"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz\",\n  \"integrity\":"
                  " \"", N("sha512-" + integrity, "integrity_hash"), "\"\n}\n```"]  # fmt: skip
    elif variant == "git_ops":
        pieces = ["How do I undo this?\n\n$ git log --oneline -3\n", g.git_sha(short=True),
                  " Merge pull request #", str(g.r.randint(100, 4000)), "\n",
                  g.git_sha(short=True), " Fix rounding in invoice totals\n", g.git_sha(short=True),
                  " Release ", g.version(), "\n$ git revert ", g.git_sha(), "\nerror: commit ",
                  g.git_sha(), " is a merge but no -m option was given."]  # fmt: skip
    elif variant == "public_key":
        body = base64.b64encode(b"\x00\x00\x00\x07ssh-rsa" + g.r.randbytes(270)).decode()
        cert = base64.b64encode(b"\x30\x82\x03\x5d\x30\x82\x02\x45" + g.r.randbytes(300)).decode()
        cert_lines = "\n".join(cert[i : i + 64] for i in range(0, len(cert), 64))
        pieces = ["Which of these should go into authorized_keys?\n\n",
                  N(f"ssh-rsa {body} deploy-key-2024", "public_key"), "\n\nand the server "
                  "certificate:\n\n", N(f"-----BEGIN CERTIFICATE-----\n{cert_lines}\n-----END "
                                        "CERTIFICATE-----", "certificate")]  # fmt: skip
    elif variant == "uuids":
        pieces = ["Make this config idempotent:\n\n```json\n{\n  \"tenant_id\": \"", g.uuid(),
                  "\",\n  \"workspace_id\": \"", g.uuid(), "\",\n  \"region\": \"eu-central-1\","
                  "\n  \"schema_version\": \"", g.version(), "\",\n  \"request_id\": \"req_",
                  N(g.chars(24, "0123456789abcdef"), "request_id"), "\"\n}\n```"]  # fmt: skip
    elif variant == "checksums":
        pieces = ["Verify these downloads:\n\n```\nsha256  ", g.sha256(), "  atp-",
                  g.version().value.lstrip("v"), "-linux-amd64.tar.gz\nsha256  ", g.sha256(),
                  "  atp-", g.version().value.lstrip("v"), "-darwin-arm64.tar.gz\n```\n\n"
                  "```python\nEXPECTED_CHECKSUM = \"", g.sha256(), "\"\n```"]  # fmt: skip
    else:
        pieces = ["Translate this curl into Python requests:\n\ncurl https://api.example.com/v1/"
                  "models \\\n  -H \"Authorization: Bearer $OPENAI_API_KEY\" \\\n  -H \"OpenAI-"
                  "Organization: ", ph("org-XXXXXXXX"), "\" \\\n  -H \"X-Api-Key: ",
                  ph("<YOUR_API_KEY>"), "\""]  # fmt: skip
    return "code" if variant not in ("example_env", "actions") else "config", "en", pieces


def neg_changelog_record(g: Gen) -> tuple:
    pieces = ["Turn this changelog into release notes for customers:\n\n## ", g.version(), " (",
              g.date("en"), ")\n- Fixed a crash on client build ", g.build_no(), "\n- Upgraded "
              "OpenSSL to ", g.version(), " and the bundled browser to ", g.build_no(), "\n- Invoice "
              "numbers now follow the pattern ", g.invoice_no(), "\n- Commit ", g.git_sha(short=True),
              " reverted the schema change from ", g.version(), "\n- See section 4.2.1 of the "
              "admin guide\n"]  # fmt: skip
    return "markdown", "en", pieces


NEG_ORDER = {
    "en": [
        "Summarise this shipping update: order {order} left our warehouse in {city} on {date}. "
        "Tracking {tracking}. Parcel weight 2.4 kg, 40 x 30 x 15 cm. Total {price} incl. VAT. "
        "Payment reference {badcard}. You can also collect it from the shop on {street0}.",
        "Customer asks why invoice {invoice} shows {price}. Order {order} was placed on {date} "
        "and shipped with tracking {tracking}. Reference number {badcard} belongs to the bank "
        "transfer batch. Please draft an answer (no personal data needed).",
    ],
    "de": [
        "Fasse die Versandinfo zusammen: Bestellung {order} hat am {date} unser Lager in {city} "
        "verlassen. Sendungsnummer {tracking}, Gewicht 3,2 kg. Gesamtbetrag {price}. "
        "Zahlungsreferenz {badcard}. Abholung auch in unserer Filiale in der {street0} möglich.",
    ],
    "fr": [
        "Résume ce suivi de colis : la commande {order} est partie de notre entrepôt de {city} le "
        "{date}. Numéro de suivi {tracking}. Montant {price}. Référence de paiement {badcard}. "
        "Retrait possible dans notre boutique du {street0}.",
    ],
    "es": [
        "Resume este aviso de envío: el pedido {order} salió de nuestro almacén de {city} el "
        "{date}. Número de seguimiento {tracking}. Importe {price}. Referencia de pago {badcard}."
        " También puede recogerlo en la tienda de la {street0}.",
    ],
    "it": [
        "Riassumi questo avviso di spedizione: l'ordine {order} è partito dal magazzino di {city} "
        "il {date}. Codice di tracciamento {tracking}. Importo {price}. Riferimento pagamento "
        "{badcard}. Ritiro possibile nel negozio di {street0}.",
    ],
    "nl": [
        "Vat deze verzendupdate samen: bestelling {order} is op {date} vertrokken uit ons "
        "magazijn in {city}. Track & trace {tracking}. Bedrag {price}. Betalingskenmerk "
        "{badcard}. Ophalen kan ook in de winkel aan de {street0}.",
    ],
    "pt": [
        "Resume esta atualização de envio: a encomenda {order} saiu do armazém de {city} no dia "
        "{date}. Código de seguimento {tracking}. Valor {price}. Referência de pagamento "
        "{badcard}. Também pode levantar na loja da {street0}.",
    ],
    "ja": [
        "次の配送連絡を要約してください。ご注文番号 {order} は{date}に大阪の倉庫から発送されました"
        "。追跡番号: {tracking}。お支払い金額: {price}。お支払い参照番号: {badcard}。郵便番号 "
        "{postcode} 宛ての配送は翌日到着予定です。",
    ],
}


def neg_order_record(g: Gen) -> tuple:
    lang = g.pick(list(NEG_ORDER))
    c = ctx(g, lang)
    region = {"en": "en_gb"}.get(lang, lang)
    c["street0"] = N(g.pick(STREETS[region]) if region in STREETS else "", "street_without_number")
    c["badcard"] = g.bad_card()
    return "support_ticket" if g.chance(0.5) else "email", lang, fill(g.pick(NEG_ORDER[lang]), **c)


def neg_log_record(g: Gen) -> tuple:
    lines: list[Piece] = []
    for i in range(g.r.randint(4, 7)):
        lines += [f"2024-05-1{g.r.randint(0, 9)}T10:15:{10 + i:02d}.{g.r.randint(100, 999)}Z "
                  f"{g.pick(['INFO', 'WARN', 'DEBUG'])} worker-{g.r.randint(1, 8)} request_id=",
                  g.uuid(), " ", g.pick(["cache miss", "retrying upstream", "job done",
                                         "slow query"]),
                  f" duration_ms={g.r.randint(3, 4000)} version=", g.version(), "\n"]  # fmt: skip
    lines += ["kernel: eth0: link up, MAC ", g.mac(), ", 1000 Mbps full duplex\n"]
    return "log", "en", ["Any anomaly in these logs?\n\n", lines]


NAME_WORDS = [
    "Will you {mark} the item as shipped once the courier confirms?",
    "Please {mark} the draft as final; the {bill} for the catering is still open.",
    "We {will} review the {summer} schedule next week.",
    "The {rose} garden tour starts at 10:00 and the gift shop sells {rose} water.",
    "Prices {rose} 4% in {april} while demand held steady through {june}.",
    "I {will} {bill} the client for the overtime, but not for the travel.",
    "There is a {grace} period of 14 days before late fees apply.",
    "Lift the car with a {jack} before removing the wheel.",
    "{may} we reschedule the call to Thursday?",
    "The {summer} sale ends on 31 August; {autumn} stock arrives in September.",
    "Customers can {sue} only after the arbitration step fails.",
    "Let's have a {frank} discussion about the roadmap.",
    "The script is written in {ruby} and deployed with {jenkins}.",
    "We hope the new release will {mark} a turning point.",
    "At {dawn} the delivery vans leave the depot in {florence}.",
    "Set the status light to {amber} when the battery is low.",
    "The {victoria} line is closed this weekend, so take the bus from {paris} Street car park.",
    "Our office in {georgia} moved; the team in {jordan} handles Middle East orders.",
    "Pat the fish dry and season it before grilling.",
    "The new {bill} of materials lists 42 parts.",
]
NAME_WORD_VALUES = {
    "mark": "mark", "bill": "bill", "will": "will", "summer": "summer", "rose": "rose",
    "april": "April", "june": "June", "grace": "grace", "jack": "jack", "may": "May",
    "autumn": "autumn", "sue": "sue", "frank": "frank", "ruby": "Ruby", "jenkins": "Jenkins",
    "dawn": "dawn", "florence": "Florence", "amber": "amber", "victoria": "Victoria",
    "paris": "Paris", "georgia": "Georgia", "jordan": "Jordan",
}  # fmt: skip
NAME_WORDS_INTL = [
    (
        "de",
        "Die Rose im Schaufenster ist verwelkt; bitte bis Freitag ersetzen. Frank und frei: "
        "das Budget reicht nicht.",
    ),
    ("fr", "La pierre de taille arrive lundi. Rose pâle ou blanc cassé pour la façade ?"),
    ("es", "Tengo dolores de cabeza desde el lunes. La Rosa de los vientos está en la portada."),
    ("it", "Il Natale è vicino: ordina le stelle di Natale entro venerdì."),
    ("nl", "Mark de taken als klaar en stuur de factuur naar de afdeling inkoop."),
    ("pt", "A Rosa dos Ventos fica no centro da praça. A Vitória foi celebrada no domingo."),
]
COMPANIES = [
    "Summarise: Morgan Stanley and Goldman Sachs both raised their targets after Johnson & "
    "Johnson reported earnings. Ernst & Young audits the books.",
    "Draft a tweet: Ben & Jerry's and Marks & Spencer team up for a summer flavour.",
    "Explain in plain words: the patient has early-onset Alzheimer's disease and a family "
    "history of Parkinson's disease; Crohn's disease was ruled out.",
    "Translate into French: the Max Planck Institute and the Fraunhofer Society signed the "
    "agreement in Munich.",
    "Compare Hewlett Packard Enterprise and Dell Technologies on their server warranty terms.",
    "Our supplier Procter & Gamble changed the pallet size; Mercedes-Benz Vans delivers on "
    "Tuesdays.",
    "Write a product description for a pudding mix in the style of Dr. Oetker.",
    "List the differences between the Wells Fargo and Charles Schwab savings accounts.",
    "Rewrite: the Walt Disney Company bought the studio; Jack Daniel's sponsors the event.",
    "Our Berlin office is on Karl-Marx-Allee and the Paris office near avenue Victor Hugo.",
]


def neg_words_record(g: Gen) -> tuple:
    roll = g.r.random()
    if roll < 0.5:
        picks = g.r.sample(NAME_WORDS, 3)
        pieces: list[Piece] = ["Fix the grammar in this paragraph:\n\n"]
        for template in picks:
            pieces += fill(
                template,
                **{k: N(v, "name_like_word") for k, v in NAME_WORD_VALUES.items()},
            )
            pieces.append(" ")
        return "prose", "en", pieces[:-1]
    if roll < 0.7:
        lang, text = g.pick(NAME_WORDS_INTL)
        return "prose", lang, [N(text, "name_like_word")]
    return "prose", "en", [N(g.pick(COMPANIES), "company_or_eponym")]


NEG_FORMAT_DOCS = [
    "Explain this validation error to a non-technical user:\n\nValidationError: iban '{bad_iban}'"
    " failed the mod-97 checksum; card '{bad_card}' failed the Luhn check.",
    "Write a unit test for our SSN validator. It must reject {bad_ssn} (area numbers 000, 666 "
    "and 900-999 are never issued) and also reject ITINs such as {bad_ssn2}.",
    "A US Social Security number has the form {ssn_pattern}. An IBAN starts with a two-letter "
    "country code and two check digits, e.g. {bad_iban} is rejected because its check digits "
    "are wrong. Explain both formats.",
    "The customer typed the IBAN {bad_iban} into the refund form and got 'invalid IBAN'. Write "
    "a friendly message explaining that one digit is probably wrong.",
    "Our test fixtures use {bad_card} and {bad_card2} (both fail Luhn) plus {bad_iban}, which "
    "has wrong check digits. Are these safe to commit?",
    "Regex review: does ^\\d{{3}}-\\d{{2}}-\\d{{4}}$ also match {bad_ssn}? That one should be "
    "rejected by the area rule.",
]


def neg_format_record(g: Gen) -> tuple:
    c = {
        "ssn_pattern": N("AAA-GG-SSSS", "format_pattern"),
        "bad_iban": g.bad_iban(g.pick(list(IBAN_LENGTHS))),
        "bad_card": g.bad_card(),
        "bad_card2": g.bad_card(),
        "bad_ssn": g.bad_ssn(),
        "bad_ssn2": N(f"9{g.digits(2)}-{g.pick(['70', '78', '88', '92'])}-{g.digits(4)}",
                      "invalid_ssn"),
    }  # fmt: skip
    return "prose", "en", fill(g.pick(NEG_FORMAT_DOCS), **c)


def neg_measure_record(g: Gen) -> tuple:
    variant = g.pick(["spec", "biblio", "recipe", "inventory", "geo"])
    if variant == "spec":
        pieces = ["Turn this spec into a table: model X-", str(g.r.randint(100, 999)), ", firmware ",
                  g.version(), ", 1920 x 1080 px, 27 in, 350 cd/m², 75 Hz, weight 4.6 kg, "
                  "price ", g.price("en"), ", product code ",
                  N(f"{g.chars(3, string.ascii_uppercase)}-{g.digits(4)}-{g.digits(2)}",
                    "product_code"), ", EAN ", g.neg(lambda: g.digits(13), "ean"),
                  "."]  # fmt: skip
    elif variant == "biblio":
        pieces = ["Format these references in APA style:\n\n1. Handbook of Data Quality, 3rd ed., "
                  "ISBN ", g.isbn(), ", 2021, pp. 145-162.\n2. Practical Cryptography, ISBN ",
                  g.isbn(), ", 2019.\n3. ISO 8601:2019 and RFC 5322 section 3.4.1."]  # fmt: skip
    elif variant == "recipe":
        pieces = ["Scale this recipe to 12 servings: 250 g flour, 2 eggs, 125 ml milk, bake at 180 "
                  "°C for 25-30 min; batch ", N(f"{g.digits(2)}-{g.digits(4)}-{g.digits(3)}",
                                                "lot_number"),
                  ", best before ", g.date("en"), "."]  # fmt: skip
    elif variant == "inventory":
        rows: list[Piece] = ["sku,ean,qty,unit_price,warehouse\n"]
        for _ in range(g.r.randint(3, 6)):
            rows += [N(f"SKU-{g.digits(5)}", "product_code"), ",",
                     g.neg(lambda: g.digits(13, "4"), "ean"),
                     f",{g.r.randint(0, 500)},{g.r.randint(1, 300)}.{g.digits(2)},",
                     N(g.pick(["Hamburg", "Rotterdam", "Lyon", "Milano", "Leeds"]), "city_alone"),
                     "\n"]  # fmt: skip
        return "csv", "en", ["Which SKUs are out of stock?\n\n", rows]
    else:
        pieces = ["Plot these points: depot A at 48.1372, 11.5756; depot B at 52.5200, 13.4050; "
                  "altitude 519 m; reading taken ", g.date("en"), " 14:32:05 UTC, firmware ",
                  g.version(), "."]  # fmt: skip
    return "prose", "en", pieces


def neg_ticket_record(g: Gen) -> tuple:
    lang = g.pick(["en", "en", "de", "fr", "es"])
    c = ctx(g, lang)
    templates = {
        "en": [
            "Summarise this bug report: after upgrading to {version} the export button times out "
            "for workspace {uuid}. Reproduced on build {build}. Ticket {ticket}. The customer "
            "says it worked in {version2}. No personal data attached.",
            "Triage: the customer (name withheld) says their card ending in {last4} was declined "
            "for order {order} on {date}. Amount {price}. They do not want to share more card "
            "details in the ticket.",
        ],
        "de": ["Fasse die Fehlermeldung zusammen: Seit Version {version} bricht der Export ab. "
               "Ticket {ticket}, Bestellung {order}, Betrag {price}. Der Kunde sitzt in {city}."],
        "fr": ["Résume ce rapport : depuis la version {version}, l'export échoue. Ticket {ticket},"
               " commande {order} du {date}, montant {price}. Client basé à {city}."],
        "es": ["Resume este informe: desde la versión {version} la exportación falla. Ticket "
               "{ticket}, pedido {order} del {date}, importe {price}. Cliente en {city}."],
    }  # fmt: skip
    c["version2"] = g.version()
    c["build"] = g.build_no()
    return "support_ticket", lang, fill(g.pick(templates[lang]), **c)


def neg_json_record(g: Gen) -> tuple:
    pieces = ["Describe what this API response contains:\n\n{\n  \"id\": \"", g.uuid(),
              "\",\n  \"object\": \"invoice\",\n  \"number\": \"", g.invoice_no(),
              "\",\n  \"amount_due\": ", str(g.r.randint(100, 90000)), ",\n  \"currency\": \"eur"
              "\",\n  \"created\": ", str(g.r.randint(1_700_000_000, 1_720_000_000)),
              ",\n  \"api_version\": \"2024-04-10\",\n  \"sdk\": \"stripe-python/",
              g.version().value.lstrip("v"), "\",\n  \"commit\": \"", g.git_sha(),
              "\",\n  \"customer_ref\": \"", g.uuid(), "\"\n}"]  # fmt: skip
    return "json", "en", pieces


def neg_chat_record(g: Gen) -> tuple:
    lang = g.pick(["en", "de", "fr", "nl"])
    c = ctx(g, lang)
    templates = {
        "en": "User: hey, the app says my payment failed\nAgent: Sorry about that! Which order?\n"
              "User: {order}, placed {date}\nAgent: I see a decline on the card ending {last4}. "
              "Could you try again or use another method?\nUser: ok, will do. Is {price} the "
              "final amount?\nAgent: Yes, including shipping to {city}.",
        "de": "Nutzer: Hallo, meine Zahlung ist fehlgeschlagen.\nAgent: Welche Bestellung?\n"
              "Nutzer: {order} vom {date}\nAgent: Die Karte mit Endziffern {last4} wurde "
              "abgelehnt. Betrag {price}.\nNutzer: Okay, ich versuche es später nochmal.",
        "fr": "Utilisateur : mon paiement a échoué\nAgent : Pour quelle commande ?\nUtilisateur "
              ": {order}, du {date}\nAgent : La carte se terminant par {last4} a été refusée. "
              "Montant : {price}.",
        "nl": "Gebruiker: mijn betaling is mislukt\nMedewerker: Welke bestelling?\nGebruiker: "
              "{order} van {date}\nMedewerker: De kaart eindigend op {last4} is geweigerd. "
              "Bedrag {price}.",
    }  # fmt: skip
    return "chat", lang, fill(templates[lang], **c)


def neg_ja_record(g: Gen) -> tuple:
    c = ctx(g, "ja")
    template = g.pick([
        "次の文を丁寧な表現に直してください。\n\n注文番号 {order} の件、{date}に発送済みです。"
        "追跡番号は {tracking} です。金額は {price}(税込)です。バージョン {version} で不具合は"
        "修正済みです。",
        "このお知らせを英訳してください。\n\n大阪と名古屋の倉庫は{date}から棚卸しのため休業し"
        "ます。郵便番号 {postcode} の地域は配送が1日遅れます。製品コード {code} は在庫切れです。",
    ])  # fmt: skip
    c["code"] = N(f"JP-{g.digits(4)}-{g.chars(2, string.ascii_uppercase)}", "product_code")
    return "prose", "ja", fill(template, **c)


US_TEMPLATES = [
    (
        "form",
        "Fill in a W-4 checklist from this onboarding message:\n\nHi HR, here are my details"
        " for payroll. Name: {name}. SSN: {ssn}. Address: {addr}. Filing status: married "
        "filing jointly. Spouse: {name2}, SSN {ssn2}.",
    ),
    (
        "form",
        "Summarise this loan application:\n\nPrimary applicant: {name}\nSSN: {ssn}\nDOB: "
        "{dob}\nCo-applicant: {name2}\nCo-applicant SSN: {ssn2}\nProperty: {addr}\nRequested"
        " amount: {price}\nContact: {phone}, {email}",
    ),
    (
        "form",
        "Check this benefits enrollment for errors:\n\nEmployee: {name} (SSN {ssn})\n"
        "Dependents:\n  1. {name2}, spouse, SSN {ssn2}\n  2. child, SSN {ssn3}\nPlan: PPO "
        "Gold, effective {date}\nMailing address: {addr}",
    ),
    (
        "chat",
        "Rate how the agent handled this chat:\n\nCaller: I need my tax transcript.\nAgent: "
        "I can help. Full name and Social Security number, please.\nCaller: {name}, "
        "{ssn_sp}\nAgent: Thank you. The transcript goes to the address on file, {addr}.",
    ),
    (
        "prose",
        "Draft a letter to the background check vendor asking them to re-run the check "
        "for {name} (SSN {ssn}, DOB {dob}). Their previous report listed the wrong "
        "address; the correct one is {addr}. Our reference: {ticket}.",
    ),
    (
        "support_ticket",
        "Classify this ticket:\n\nFrom: {email}\nSubject: Wrong SSN on my 1099\n\n"
        "The 1099 you sent lists SSN {ssn2}, but mine is {ssn}. Please correct "
        "it. {name}, {phone}",
    ),
]


def us_record(g: Gen) -> tuple:
    c = us_ctx(g, ctx(g, "en"))
    c["ssn2"], c["ssn3"] = g.ssn(), g.ssn()
    c["ssn_sp"] = g.ssn(sep=" ")
    kind, template = g.pick(US_TEMPLATES)
    return kind, "en", fill(template, **c)


# --------------------------------------------------------------------------- build

BUILDERS: list[tuple[Callable[[Gen], tuple], int]] = [
    (positive_template(TICKETS, "support_ticket"), 46),
    (positive_template(EMAILS, "email"), 33),
    (positive_template(FORMS, "form"), 30),
    (positive_template(CHATS, "chat"), 26),
    (note_record("hr_note"), 12),
    (note_record("medical_note"), 14),
    (us_record, 22),
    (csv_record, 16),
    (json_record, 16),
    (sql_record, 5),
    (billing_record, 18),
    (code_record, 57),
    (log_record, 24),
    (romanised_ja_record, 7),
    # hard negatives only
    (neg_code_record, 30),
    (neg_changelog_record, 8),
    (neg_order_record, 30),
    (neg_log_record, 12),
    (neg_words_record, 22),
    (neg_format_record, 18),
    (neg_measure_record, 14),
    (neg_ticket_record, 12),
    (neg_json_record, 8),
    (neg_chat_record, 10),
    (neg_ja_record, 8),
]


@dataclass
class Record:
    kind: str
    lang: str
    text: str
    spans: list[list]
    golds: list[S]
    negatives: list[N]


def check_record(rec: Record) -> None:
    last_end = 0
    for (start, end, label), gold in zip(rec.spans, rec.golds, strict=True):
        assert rec.text[start:end] == gold.value, (rec.text[start:end], gold.value)
        assert label == gold.type and label in TYPES
        assert start >= last_end, f"overlapping spans in {rec.text[:60]!r}"
        last_end = end
        check_gold(gold)
    for neg in rec.negatives:
        check_negative(neg)


def build() -> list[dict]:
    g = Gen(SEED)
    records: list[Record] = []
    seen: set[str] = set()
    for builder, count in BUILDERS:
        made = 0
        while made < count:
            kind, lang, pieces = builder(g)
            text, spans, golds, negatives = assemble(pieces)
            if text in seen:
                continue
            seen.add(text)
            rec = Record(kind, lang, text, spans, golds, negatives)
            check_record(rec)
            records.append(rec)
            made += 1
    known = {gold.value for rec in records for gold in rec.golds}
    for rec in records:
        problems = scan_unlabelled(rec.text, rec.spans, known)
        assert not problems, (problems, rec.text)
    g.r.shuffle(records)
    return [
        {"id": f"h-{i:04d}", "kind": rec.kind, "lang": rec.lang, "text": rec.text,
         "spans": rec.spans}
        for i, rec in enumerate(records, start=1)
    ], records  # fmt: skip


def summary(rows: list[dict], records: list[Record]) -> str:
    per_type = collections.Counter(label for row in rows for _, _, label in row["spans"])
    per_kind = collections.Counter(row["kind"] for row in rows)
    per_lang = collections.Counter(row["lang"] for row in rows)
    empty = sum(1 for row in rows if not row["spans"])
    with_neg = sum(1 for rec in records if rec.negatives)
    neg_only = sum(1 for rec in records if rec.negatives and not rec.spans)
    neg_cats = collections.Counter(n.category for rec in records for n in rec.negatives)
    lines = [
        f"records: {len(rows)}; without any gold span: {empty}; "
        f"holding hard negatives: {with_neg} (of which {neg_only} with no gold span)",
        "gold spans per type: "
        + ", ".join(f"{t} {per_type[t]}" for t in TYPES)
        + f" (total {sum(per_type.values())})",
        "records per kind: " + ", ".join(f"{k} {n}" for k, n in per_kind.most_common()),
        "records per lang: " + ", ".join(f"{k} {n}" for k, n in per_lang.most_common()),
        "hard-negative values per category: "
        + ", ".join(f"{k} {n}" for k, n in sorted(neg_cats.items())),
    ]
    return "\n".join(lines)


def main() -> int:
    rows, records = build()
    per_type = collections.Counter(label for row in rows for _, _, label in row["spans"])
    assert all(per_type[t] >= 40 for t in TYPES), per_type
    assert 350 <= len(rows) <= 500, len(rows)
    assert sum(1 for rec in records if rec.negatives and not rec.spans) * 3 >= len(rows)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    # Read back: offsets must survive the JSON round trip unchanged.
    for line, rec in zip(OUT.read_text(encoding="utf-8").splitlines(), records, strict=True):
        loaded = json.loads(line)
        for (start, end, _), gold in zip(loaded["spans"], rec.golds, strict=True):
            assert loaded["text"][start:end] == gold.value
    print(summary(rows, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
