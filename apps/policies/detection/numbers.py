"""Runs of digits: IPv4 addresses, US SSNs, payment cards and phone numbers.

The pre-scan hands over every run of digits and separators. Cheap checks decide what a run
could be (its shape, the characters around it, a few words before it); only then does a
library validate it: python-stdnum (Luhn, SSN ranges, ISBN), phonenumbers (whether a
number is assigned in some numbering plan), `ipaddress`. A run that has a card's shape but
fails Luhn is not read as anything else: it is the classic false positive.
"""

from __future__ import annotations

import re

Raw = list[tuple[int, int, str, float]]

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_DATE = re.compile(
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d\d)(?: \d{1,2})?"
)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_SSN_SPACED = re.compile(r"\d{3} \d{2} \d{4}|\d{9}")
_GROUPS = re.compile(r"\d+")
_NOT_DIGIT = re.compile(r"\D")
_GROUP_AFTER = re.compile(r",\d{1,3}(?!\d)")
# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Diners, Discover, JCB,
# UnionPay, Maestro, Mir); a Luhn-valid number outside them is some other identifier.
_CARD_IIN = re.compile(r"4|5[0-8]|2[2-7]|3[47]|3[068]|35|6|220")
_CARD_GROUPS = frozenset(
    {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3)}
)

_PHONE_WORDS = (
    "tel", "phone", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "ring",
    "reach", "contact", "hotline", "dial", "telefon", "handy", "mobil", "tél", "portable",
    "appel", "teléfono", "telefono", "móvil", "movil", "llam", "電話", "携帯", "番号",
    "numéro", "rufnummer", "número", "cellulare", "chiam",
)  # fmt: skip
_ID_WORDS = (
    "order", "invoice", "ref", "ticket", "tracking", "sku", "isbn", "id", "#", "no.", "nr",
    "serial", "batch", "build", "version", "commit", "case", "account", "bestell", "rechnung",
    "commande", "facture", "pedido", "factura", "注文", "product", "item", "part",
)  # fmt: skip
_SSN_WORDS = ("ssn", "social security", "soc. sec", "ss#", "ss #", "taxpayer")
_VERSION_BEFORE = re.compile(r"(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|==|>=|<=|~=|@)\s*$")

# Regions tried for a number written in national format. Plans with a trunk prefix of 0
# are only tried for numbers that start with it.
_ZERO_REGIONS = ("GB", "DE", "FR", "IT", "NL", "JP", "AU", "IN", "CH", "AT", "BE", "IE", "SE",
                 "BR", "ZA", "KR", "CN", "TR", "NZ", "FI")  # fmt: skip
_OTHER_REGIONS = ("US", "CA", "ES", "PL", "PT", "DK", "NO", "MX", "SG")


def classify(text: str, start: int, end: int, out: Raw) -> None:
    """Validate the digit run text[start:end] and append what it is to `out`."""
    while end > start and not text[end - 1].isdigit():
        end -= 1
    if start and text[start - 1] in "+(":
        start -= 1
        if start and text[start - 1] == "+":  # "+(49) ..."
            start -= 1
    if not _bounded_before(text, start):
        return
    while not _bounded_after(text, end):
        # "... 629 0d:3b:..." : the last group belongs to the next word.
        cut = text.rfind(" ", start, end)
        if cut < 0:
            return
        end = cut
        while end > start and not text[end - 1].isdigit():
            end -= 1
    value = text[start:end]
    if len(value) < 7 and "." not in value:  # counts, years, prices: most runs end here
        return
    if _one(text, start, end, value, out) or " " not in value:
        return
    if value[0] != "+" and _card_shaped(value.strip("()")) and len(_NOT_DIGIT.sub("", value)) >= 13:
        return  # a card number failing Luhn: none of its parts is anything else
    # A value followed by other numbers ("+31 6 12349824 5711,25 €"): without them.
    cut = end
    for _ in range(2):
        cut = text.rfind(" ", start, cut)
        if cut - start < 7:
            break
        if _one(text, start, cut, text[start:cut], out):
            return
    # Several values separated by spaces: each on its own.
    at = start
    for chunk in value.split(" "):
        if chunk:
            s = at
            e = s + len(chunk)
            while e > s and not text[e - 1].isdigit():
                e -= 1
            while s < e and text[s] in "()":
                s += 1
            if e - s >= 7:
                _one(text, s, e, text[s:e], out)
        at += len(chunk) + 1


def _bounded_before(text: str, start: int) -> bool:
    """Whether the run starts a value: not inside a word, a price, a decimal or a path."""
    if not start:
        return True
    before = text[start - 1]
    if before.isalnum() or before in "_#$€£¥/\\&%":
        return False
    return not (
        start > 1
        and (
            (before in ".," and text[start - 2].isdigit())
            or (before == "-" and text[start - 2].isalnum())
        )
    )


def _bounded_after(text: str, end: int) -> bool:
    if end >= len(text):
        return True
    after = text[end]
    if after.isalnum() or after in "_%€$£¥":
        return False
    if after in ".-" and text[end + 1 : end + 2].isdigit():
        return False
    # "1,299", "12,50": thousands or decimals
    return not (after == "," and _GROUP_AFTER.match(text, end))


def _one(text: str, start: int, end: int, value: str, out: Raw) -> bool:
    plus = value[0] == "+"
    if "." in value and not plus:
        if _IPV4.fullmatch(value) or ("/" in value and _IPV4.fullmatch(value.split("/", 1)[0])):
            return _ipv4(text, start, start + len(value.split("/", 1)[0]), out)
        if value.count(".") >= 3 and _IPV4.search(value):
            return False  # OIDs, long version strings
    digits = _NOT_DIGIT.sub("", value)
    n = len(digits)
    if n < 7 or n > 19:
        return False
    if not plus and _DATE.fullmatch(value):
        return False
    if _SSN_SHAPE.fullmatch(value):
        return _ssn(value) and _add(out, start, end, "SSN")
    context = text[max(0, start - 40) : start].lower()
    if n == 9 and _SSN_SPACED.fullmatch(value) and any(w in context for w in _SSN_WORDS):
        return _ssn(value) and _add(out, start, end, "SSN")
    if n >= 13 and value[0] not in "+(" and _card_shaped(value):
        return _card(digits) and _add(out, start, end, "CARD")
    if n in (10, 13) and (digits.startswith(("978", "979")) or "isbn" in context):
        from stdnum import isbn

        if isbn.is_valid(digits):
            return False
    if n <= 15:
        return _phone(value, digits, context) and _add(out, start, end, "PHONE")
    return False


def _add(out: Raw, start: int, end: int, kind: str) -> bool:
    out.append((start, end, kind, 1.0))
    return True


def _ipv4(text: str, start: int, end: int, out: Raw) -> bool:
    import ipaddress

    value = text[start:end]
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    if _VERSION_BEFORE.search(text[max(0, start - 12) : start].lower()):
        return False
    return _add(out, start, end, "IP")


def _ssn(value: str) -> bool:
    from stdnum.us import ssn

    return ssn.is_valid(value.replace(" ", "-") if " " in value else value)


def _card_shaped(value: str) -> bool:
    if value.isdigit():
        return True
    if any(c not in "0123456789 -" for c in value):
        return False
    sizes = tuple(len(g) for g in _GROUPS.findall(value))
    return sizes in _CARD_GROUPS


def _card(digits: str) -> bool:
    from stdnum import luhn

    return bool(_CARD_IIN.match(digits)) and luhn.is_valid(digits)


def _phone(value: str, digits: str, context: str) -> bool:
    groups = _GROUPS.findall(value)
    international = value[0] == "+" or (value.startswith("00") and len(digits) > 10)
    # The nearer of a phone word and an identifier word decides ("invoice 6232990925").
    said_phone = max(context.rfind(w) for w in _PHONE_WORDS)
    said_id = max(context[-24:].rfind(w) for w in _ID_WORDS)
    keyword = said_phone >= 0 and said_phone > said_id + len(context) - min(24, len(context))
    if not international:
        if value.count(".") == 1 and len(groups) == 2:
            return False  # a decimal number
        if len(groups) == 1 and not keyword:
            return False  # a bare run of digits is an identifier unless called a number
        if not keyword and said_id >= 0:
            return False
        if any(len(g) == 1 for g in groups[1:]) or len(groups) > 6:
            return False
    if international:
        return _international(digits[2:] if value[0] == "0" else digits)
    return any(True for _ in _regions(digits))


def _international(digits: str) -> bool:
    """Whether +`digits` is a number some region's numbering plan holds."""
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    for size in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions:
            return any(_holds(region, digits[size:]) for region in regions)
    return False


def _holds(region: str, nsn: str) -> bool:
    """phonenumbers' own test of a national significant number against a region's plan
    (its general description: every number type the region assigns)."""
    from phonenumbers import PhoneMetadata
    from phonenumbers.phonenumberutil import _is_number_matching_desc

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return False
    desc = meta.general_desc
    return len(nsn) in desc.possible_length and _is_number_matching_desc(nsn, desc)


def _regions(digits: str):
    """Regions whose numbering plan holds `digits` written in national format."""
    from phonenumbers import PhoneMetadata

    regions = _ZERO_REGIONS + ("IT",) if digits[0] == "0" else _OTHER_REGIONS + ("IT",)
    for region in regions:
        meta = PhoneMetadata.metadata_for_region(region)
        if meta is None:
            continue
        nsn = digits
        prefix = meta.national_prefix
        if prefix and digits.startswith(prefix):
            nsn = digits[len(prefix) :]
        elif prefix == "0":
            continue
        if _holds(region, nsn):
            yield region
