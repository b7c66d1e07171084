"""Runs of digits: IPv4 addresses, US SSNs, payment cards and phone numbers.

The pre-scan hands over every run of digits and separators. Cheap checks decide what a run
could be (its shape, the characters around it, a few words before it); only then does a
library validate it: python-stdnum (Luhn, SSN ranges, ISBN), phonenumbers (whether a
number is assigned in some numbering plan), `ipaddress`. A run that has a card's shape but
fails Luhn is not read as anything else: it is the classic false positive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

Raw = list[tuple[int, int, str, float]]

_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_DATE = re.compile(
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)?\d\d)(?: \d{1,2})?"
)
# "20240315", "20240315 1022": compact dates and timestamps.
_COMPACT_DATE = re.compile(
    r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[ T\-]?\d{4,6})?"
)
_NUMBER_IN_LABEL = re.compile(r"\d{3}")
_LABEL_ENDS = ("ssn", "ss", "tel", "fax")
_DOTTED_PHONE = re.compile(r"0\d(?:\.\d\d){4}")  # "01.23.45.67.89"
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_GROUPS = re.compile(r"\d+")
_NOT_DIGIT = re.compile(r"\D")
# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Diners, Discover, JCB,
# UnionPay, Maestro, Mir); a Luhn-valid number outside them is some other identifier.
_CARD_IIN = re.compile(r"4|5[0-8]|2[2-7]|3[47]|3[068]|35|6|220")
_CARD_GROUPS = frozenset(
    {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3)}
)

# Words that call a number a phone number, at the start of a word ("Telefon", "SUPPORT_PHONE",
# not "Bestellung", "Calle", "iPhone").
_PHONE_WORDS = re.compile(
    r"(?<![^\W\d_])(?:tel\b|tel\.|tél|telefo|teléfo|telepho|phone|call(?:ed|ing|s|back)?\b|mobile"
    r"|mobil|mob\.|cell\b|cellul|celular|fax|whatsapp|sms\b|text me|ring\b|reach|contact"
    r"|kontakt|hotline|dial\b|handy|portable|appel|móvil|movil|llam|ligue|bel me|zadzwoń"
    r"|komórk|numéro|rufnummer|número|chiam|llám|office|direct|desk|switchboard|zentrale"
    r"|durchwahl|standard|ph\b|ph\.|tlf|тел|nå meg|når mig|når mej|fange mig|erreich|bereik|mobiel|dzwoni)|電話|电话|携帯|手机|☎|📞"
)
_ID_WORDS = (
    "order", "invoice", "ref", "ticket", "tracking", "sku", "isbn", "id", "#", "no.", "nr",
    "serial", "batch", "build", "version", "commit", "case", "account", "bestell", "rechnung",
    "commande", "facture", "pedido", "factura", "注文", "product", "item", "part", "loan",
    "routing", "zip", "plz", "postal", "postcode", "ein", "vat",
    "ordine", "bestelling", "zamówieni", "encomenda", "n°", "nº", "auftrag", "dossier",
)  # fmt: skip
# One search, not 50; an HTML "href" holds no "ref", and "Schmid" or "David" no "id". Every
# alternative starts with a literal (the look-behinds come after it), so `re` skips to the
# positions where one can start: three times faster than a leading look-behind.
_ID_SPELLING = {"ref": "ref(?<!href)", "id": "id(?<![a-z]id)(?![a-z])"}
_ID_WORD = re.compile("|".join(_ID_SPELLING.get(w, re.escape(w)) for w in _ID_WORDS))
_SSN_WORDS = (
    "ssn", "social security", "social-security", "soc. sec", "soc sec", "ss#", "ss #",
    "ss no", "ss-no", "taxpayer", "seguro social", "s.s.n", "social sec",
    "sozialversicherung", "sécurité sociale", "securite sociale", "previdenza sociale",
    "seguridad social", "segurança social", "社会保障", "社會安全", "社会安全", "사회보장",
    "социального страхования", "социальной защиты", "ubezpieczenia społecznego",
    "sosyal güvenlik", "an sinh xã hội", "الضمان الاجتماعي", "सामाजिक सुरक्षा",
    # "Social: ...", "socialSecurityNumber" (lower-cased)
    "social",
)  # fmt: skip
# Every word of _SSN_WORDS contains one of these: most contexts have none, and a handful of
# substring tests spares the two dozen searches for the words themselves.
_SSN_HINTS = ("ss", "s.s", "soc", "tax", "sozial", "社", "사회", "социал", "społ", "sosyal",
              "an sinh", "الضمان", "सामाजिक")  # fmt: skip
# An individual's tax id is an SSN when written as one ("Tax ID: 123-45-6789"; an EIN is
# written 12-3456789).
_TAX_ID = re.compile(r"tax(?:payer)?[ \-]?(?:id\b|identification)")
# Short labels, as whole words: "tin" (taxpayer identification number), "nss".
_SSN_SHORT = re.compile(r"\b(?:tin|nss)\b")
# Earlier SSNs of a list after one label ("SSNs: 123-45-6789, 234-56-7890 and ...").
_SSN_LIST = re.compile(r"(?:(?<!\d)\d{3}([- .]?)\d{2}\1\d{4}\s*(?:[,;/&]|\band\b|\bor\b)\s*)+$")
_VERSION_BEFORE = re.compile(r"(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|==|>=|<=|~=|@)\s*$")
# A one-letter label at the start of a line or after a "|", as in e-mail signatures ("T: ",
# "M +44 ...", "D 0121 ...", "... | F 914 ...").
_LINE_LABEL = re.compile(r"(?:^|\n|[|·])\s*[TMPFDtmpfd][.:]?\s*$")
# The text of a link to a number: '<a href="tel:+34612650194">612 90 64 15</a>'.
_TEL_LINK = re.compile(r"href=[\"']?tel:[^\"'<>\s]*[\"']?>$")
# North American numbers written as such: "(415) 555-0123", "415-555-0123", "1-415-555-0123".
_NANP = re.compile(
    r"(?:1[-. ])?(?:\(\d{3}\) ?\d{3}[-. ]\d{4}|\d{3}-\d{3}-\d{4}|\d{3}\.\d{3}\.\d{4})"
)

# Regions tried for a number written in national format. Plans with a trunk prefix of 0
# are only tried for numbers that start with it.
_ZERO_REGIONS = ("GB", "DE", "FR", "IT", "NL", "JP", "AU", "IN", "CH", "AT", "BE", "IE", "SE",
                 "BR", "ZA", "KR", "CN", "TR", "NZ", "FI")  # fmt: skip
_OTHER_REGIONS = ("US", "CA", "ES", "PL", "PT", "DK", "NO", "MX", "SG")


def classify(text: str, start: int, end: int, out: Raw, memo: dict | None = None) -> None:
    """Validate the digit run text[start:end] and append what it is to `out` (`memo` caches
    table headers for this text)."""
    if memo is None:
        memo = {}
    while end > start and not text[end - 1].isdigit():
        end -= 1
    if start and text[start - 1] in "+(":
        start -= 1
        if start and text[start - 1] == "+":  # "+(49) ..."
            start -= 1
    if not _bounded_before(text, start):
        return
    while not _bounded_after(text, start, end):
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
    if _one(text, start, end, value, out, memo) or " " not in value:
        return
    if value[0] != "+" and _card_shaped(value.strip("()")) and len(_NOT_DIGIT.sub("", value)) >= 13:
        return  # a card number failing Luhn: none of its parts is anything else
    if " / " in value:  # a list: "187 14 9901 / 019 13 4902"
        at = start
        for piece in value.split(" / "):
            if piece.strip():
                classify(text, at, at + len(piece), out, memo)
            at += len(piece) + 3
        return
    # A value followed by other numbers ("+31 6 12349824 5711,25 €"): without them.
    cut = end
    for _ in range(3):
        cut = text.rfind(" ", start, cut)
        while cut > start and text[cut - 1] == " ":
            cut -= 1
        last = cut
        while last > start and not text[last - 1].isdigit():
            last -= 1
        if last - start < 7:
            break
        if _one(text, start, last, text[start:last], out, memo):
            if _LIST_SEPARATOR.match(text, last, end):
                # A list of values ("123-45-6789 / 234-56-7890"): the others on their own.
                _rest(text, last, end, out, memo)
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
                _one(text, s, e, text[s:e], out, memo)
        at += len(chunk) + 1


# Chinese, Japanese and Korean script has no spaces between words: "電話番号は090-...です".
_CJK = "\u2e80"


_LIST_SEPARATOR = re.compile(r"\s*[/,;]\s*[+(]?\d")


def _rest(text: str, at: int, end: int, out: Raw, memo: dict) -> None:
    """Classify the values of text[at:end] after a list separator."""
    while at < end and not (text[at].isdigit() or text[at] in "+("):
        at += 1
    if end - at >= 7:
        classify(text, at, end, out, memo)


def _bounded_before(text: str, start: int) -> bool:
    """Whether the run starts a value: not inside a word, a price, a decimal or a path."""
    if not start:
        return True
    before = text[start - 1]
    if before in "#-" and text[max(0, start - 4) : start - 1].lower().endswith(_LABEL_ENDS):
        return True  # "SSN#123-45-6789", "SSN-123456789", "Tel#..."
    if (before.isalnum() and before < _CJK) or before in "_#$€£¥/\\&%":
        return before == "/" and text.endswith("wa.me/", 0, start)  # WhatsApp links
    if before == "," and start > 1 and text[start - 2].isdigit():
        return _comma_ends_field(text, start)
    return not (
        start > 1
        and (
            (before == "." and text[start - 2].isdigit())
            or (before == "-" and text[start - 2].isalnum())
        )
    )


def _comma_ends_field(text: str, start: int) -> bool:
    """Whether the comma before `start`, between two digits, ends a field of a delimited
    row ("12345,546-90-5932", "7,030 5328206" under a header of as many commas) rather than
    a thousands group ("1,234 567") or a decimal. A thousands group is three digits; any
    other count after the comma is a field (or too short to be anything)."""
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    if end - start != 3:
        return True
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    commas = text.count(",", line_start, line_end)
    if commas >= 3:
        return True
    if commas < 2 or not line_start:
        return False
    above = text.rfind("\n", 0, line_start - 1) + 1
    return text.count(",", above, line_start - 1) == commas


def _bounded_after(text: str, start: int, end: int) -> bool:
    if end >= len(text):
        return True
    after = text[end]
    if (after.isalnum() and after < _CJK) or after in "_%€$£¥":
        return False
    if after in ".-" and text[end + 1 : end + 2].isdigit():
        return False
    if after != ",":
        return True
    # "12,50" and "1 234,5" are decimals, "1,299" a thousands group: the run goes on. A field
    # of a CSV row ("...0958,07.11.2019", "...0958,120,") is not.
    m = _GROUP_AFTER.match(text, end)
    if m is None or any(c in "-/()" for c in text[start:end]):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    if text.count(",", line_start, line_end if line_end >= 0 else len(text)) >= 3:
        return True  # a delimited row: the comma ends the field
    if m.end() - end == 4:  # three digits: thousands only after a group of at most three
        last = end
        while last > start and text[last - 1].isdigit():
            last -= 1
        return end - last > 3
    return False


_GROUP_AFTER = re.compile(r",\d{1,3}(?![\d])(?![.\-/:,]\d)")


_HAS_DIGIT = re.compile(r"\d")


def _context(text: str, start: int, size: int = 64) -> str:
    """The words before `start` on its line (or, for a value alone at the start of its
    line, the line before: "Telefon:\n030 ..."), lower-cased."""
    floor = max(0, start - size)
    line = text.rfind("\n", floor, start)
    if line < 0:
        return text[floor:start].lower()
    prefix = text[line + 1 : start]
    if prefix.strip(" \t"):
        # An answer to the line before ("What's the best callback number?\nCaller: It's ..."):
        # that question is the context.
        if len(prefix) <= 24 and text[line - 1 : line] == "?" and not _HAS_DIGIT.search(prefix):
            above = text.rfind("\n", floor, line)
            return (text[above + 1 if above >= 0 else floor : line] + " " + prefix).lower()
        return prefix.lower()
    above = text.rfind("\n", floor, line)
    return text[above + 1 if above >= 0 else floor : line].lower() + " "


def _one(text: str, start: int, end: int, value: str, out: Raw, memo: dict) -> bool:
    plus = value[0] == "+" or text.endswith("wa.me/", 0, start)  # WhatsApp links omit the +
    if "." in value and not plus:
        if _IPV4.fullmatch(value) or ("/" in value and _IPV4.fullmatch(value.split("/", 1)[0])):
            return _ipv4(text, start, start + len(value.split("/", 1)[0]), out)
        if value.count(".") >= 3 and _IPV4.search(value) and not _DOTTED_PHONE.fullmatch(value):
            return False  # OIDs, long version strings
    digits = _NOT_DIGIT.sub("", value)
    n = len(digits)
    if n < 7 or n > 19:
        return False
    bare = value.lstrip("(")
    if not plus and (_DATE.fullmatch(bare) or _COMPACT_DATE.fullmatch(bare)):
        return False
    context = _context(text, start)
    if n == 9 and not plus and _SSN_ANY.fullmatch(value):
        named = (
            _names_ssn(context)
            or (
                not _names_other(context)
                and _header_says(_names_ssn, _column(text, start, memo), memo)
            )
            # The last of a long list: its label further back ("SSNs: ..., ... and ...").
            or (_SSN_LIST.search(context) is not None and _names_ssn(_context(text, start, 240)))
            or (context.endswith("'") and _names_ssn(_sql_column(text, start)))
            # A label further back on the line ("Social Security Number (as shown on your
            # card, without dashes): 123456789"); no other number may stand between.
            or (len(context) >= 60 and _names_ssn(_context(text, start, 200)))
        )
        if named and _ssn(digits):
            return _add(out, start, end, "SSN")
        if _SSN_SHAPE.fullmatch(value) and (
            not _ID_WORD.search(context, len(context) - 16)
            or _TAX_ID.search(context, len(context) - 24)
        ):
            return _ssn(digits) and _add(out, start, end, "SSN")
    if n >= 13 and not plus and value[0] != "(" and _card_shaped(value):
        return _card(digits) and _add(out, start, end, "CARD")
    if n in (10, 13) and (digits.startswith(("978", "979")) or "isbn" in context):
        from stdnum import isbn

        if isbn.is_valid(digits):
            return False
    if n <= 15:
        return _phone(text, start, value, digits, context, memo) and _add(out, start, end, "PHONE")
    return False


_SSN_ANY = re.compile(r"\d{3}([- .]?)\d{2}\1\d{4}")


_SQL_VALUES = re.compile(r"(?i)\(([\w\s,`\"\[\]]+)\)\s*values\s*(?:\([^()]*\),\s*)*\(")


def _sql_column(text: str, start: int) -> str:
    """The column of an SQL INSERT a quoted value is in: "INSERT INTO t (id, name, ssn)
    VALUES (1, 'Ana', '123456789')" -> "ssn"; "" otherwise."""
    at = text.rfind("(", max(0, start - 200), start)
    if at < 0 or "values" not in text[max(0, at - 400) : at].lower():
        return ""
    head = None
    for found in _SQL_VALUES.finditer(text, max(0, at - 400), at + 1):
        head = found  # the last: the tuple the value is in
    if head is None or head.end() != at + 1:
        return ""
    index = len(_cells(text[at + 1 : start], ",")) - 1
    columns = head.group(1).split(",")
    return columns[index].strip(' `"[]\n').lower() if index < len(columns) else ""


def _names_ssn(context: str) -> bool:
    context = context.replace("_", " ")
    at = (
        max(context.rfind(w) for w in _SSN_WORDS)
        if any(hint in context for hint in _SSN_HINTS)
        else -1
    )
    if at < 0 and ("tin" in context or "nss" in context):
        for m in _SSN_SHORT.finditer(context):
            at = m.start()
    if at < 0:
        return False
    # The label must be this value's, not an earlier one's ("SSN: ..., routing 123456789");
    # "SSN (9 digits):" is still the value's own, and so is a list of SSNs after one label.
    if _NUMBER_IN_LABEL.search(context, at) is None:
        return True
    listed = _SSN_LIST.search(context, at)
    return listed is not None and _NUMBER_IN_LABEL.search(context, at, listed.start()) is None


# A label right before the value ("routing 123456789", "EIN: ..."): a table header above it
# is then not its name. Wide gaps (fixed-width tables) and cell separators are no label.
_OWN_LABEL = re.compile(r"[^\W\d_][.)]?(?: ?[:=#])? ?$")


def _names_other(context: str) -> bool:
    return bool(_OWN_LABEL.search(context))


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


def _ssn(digits: str) -> bool:
    """A US SSN by python-stdnum: area (not 000, 666 or 9xx), group and serial ranges, and
    not one of the numbers known to be invalid ("078-05-1120", advertising numbers), also
    when labelled as an SSN."""
    from stdnum.us import ssn

    return ssn.is_valid(digits)


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


# --- table columns --------------------------------------------------------------------------


def _column(text: str, start: int, memo: dict) -> str:
    """The header of the table column `start` is in (CSV, TSV, semicolons, Markdown pipes or
    fixed-width columns), lower-cased; "" when `start` is not in a table row."""
    found = memo.get(start)
    if found is None:
        found = memo[start] = _find_column(text, start, memo)
    return found


def _find_column(text: str, start: int, memo: dict) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    row = memo.get(("row", line_start))
    if row is None:
        row = memo[("row", line_start)] = _row(text, line_start, start, memo)
    delim, names, header, quoted = row
    if delim:
        if not names:
            return ""
        if quoted:
            line_end = text.find("\n", start)
            line = text[line_start : line_end if line_end >= 0 else len(text)]
            index = _cell_index(line, start - line_start, delim)
        else:
            index = text.count(delim, line_start, start)
        return names[index] if index < len(names) else ""
    return _word_at(header, start - line_start).lower() if header else ""


def _row(text: str, line_start: int, start: int, memo: dict) -> tuple[str, list[str], str, bool]:
    """What the cells of the line at `line_start` need, worked out once per line: its
    delimiter ("" for fixed-width columns), its header's column names (lower-cased; none
    when the line heads its block or the header is no header) or, fixed-width, the header
    line, and whether the line quotes cells."""
    line_end = text.find("\n", start)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    delim = next((d for d in "\t|;," if _delimits(line, d)), "")
    index = _cell_index(line, start - line_start, delim) if delim else 0
    key = (line_start, delim)
    header_start = memo.get(key)
    if header_start is None:
        header_start = memo[key] = _header_start(text, line_start, delim, index, memo)
    quoted = '"' in line
    if header_start == line_start:
        return delim, [], "", quoted
    header = text[header_start : text.find("\n", header_start)]
    if not delim:
        return "", [], header, quoted
    names = memo.get((delim, header_start, "cells"))
    if names is None:
        cells = _cells(header, delim)
        # A header names short columns; a sentence with a comma in it is no header.
        names = memo[(delim, header_start, "cells")] = (
            [c.strip().lower() for c in cells]
            if len(cells) >= 3 and all(len(c) <= 40 for c in cells)
            else []
        )
    return delim, names, header, quoted


def _header_says(test: Callable[[str], bool], header: str, memo: dict) -> bool:
    """`test(header)`, answered once per header and text (a table repeats its header for
    every cell)."""
    if not header:
        return False
    key = (test, header)
    said = memo.get(key)
    if said is None:
        said = memo[key] = test(header)
    return said


def _delimits(line: str, delim: str) -> bool:
    """Whether `delim` separates cells in `line` (a comma between digits is a number's)."""
    at = line.find(delim)
    while at >= 0:
        if not (0 < at < len(line) - 1 and line[at - 1].isdigit() and line[at + 1].isdigit()):
            return True
        # Between digits: a thousands group has three ("1,234"); "12345,546905932" is two
        # fields.
        end = at + 1
        while end < len(line) and line[end].isdigit():
            end += 1
        if end - at - 1 > 3:
            return True
        at = line.find(delim, end)
    return False


def column_header(text: str, start: int, memo: dict | None = None) -> str:
    """The header of the table column `start` is in, lower-cased ("" outside a table)."""
    return _column(text, start, {} if memo is None else memo)


def _header_start(text: str, line_start: int, delim: str, index: int, memo: dict) -> int:
    """The first line of the block of table rows that ends with the line at `line_start`
    (`memo`: the answers for lines above, so a long table is walked once)."""
    top = line_start
    at = line_start
    for _ in range(60):
        if at == 0:
            break
        prev_start = text.rfind("\n", 0, at - 1) + 1
        known = memo.get((prev_start, delim))
        if known is not None:
            return known  # the row above is in this block: its header is this one's
        prev = text[prev_start : at - 1]
        if not prev.strip():
            break
        if delim:
            if delim not in prev or len(_cells(prev, delim)) <= index:
                break
            if not prev.strip(" |-:\t"):
                at = prev_start  # a Markdown rule "|---|---|"
                continue
        top = prev_start
        at = prev_start
    return top


def _cells(line: str, delim: str) -> list[str]:
    if '"' not in line:
        return line.split(delim)
    cells, cell, quoted = [], [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delim and not quoted:
            cells.append("".join(cell))
            cell = []
            continue
        cell.append(ch)
    cells.append("".join(cell))
    return cells


def _cell_index(line: str, col: int, delim: str) -> int:
    if '"' not in line[:col]:
        return line.count(delim, 0, col)
    return len(_cells(line[:col], delim)) - 1


def _word_at(header: str, col: int) -> str:
    """The header words above column `col` of a fixed-width table."""
    if col >= len(header) or header[col] == " ":
        return ""
    s = col
    while s > 0 and (header[s - 1] != " " or (s > 1 and header[s - 2] != " ")):
        s -= 1
    e = col
    while e < len(header) and (header[e] != " " or header[e + 1 : e + 2] not in (" ", "")):
        e += 1
    return header[s:e].strip()


# --- phones ---------------------------------------------------------------------------------


def _said_phone(context: str) -> bool:
    """Whether the words before a number (or its column header) call it a phone number: a
    phone word with no other number and no identifier word ("order", "invoice") after it.
    A phone word in a call's name ("parse_phone(") says nothing about the argument."""
    said = None
    for match in _PHONE_WORDS.finditer(context):
        said = match
    if said is None:
        return bool(_LINE_LABEL.search(context))
    after = context[said.end() :]
    if any(c.isdigit() for c in after) or _CALL_ARGUMENT.search(after):
        return bool(_LINE_LABEL.search(context))
    return not _ID_WORD.search(after)


_CALL_ARGUMENT = re.compile(r"^\w*\(\s*[\"']?$")


def _phone(text: str, start: int, value: str, digits: str, context: str, memo: dict) -> bool:
    groups = _GROUPS.findall(value)
    if "(0)" in value and value[0] == "+":  # "+49 (0)30 1234567": the trunk prefix is dropped
        digits = _NOT_DIGIT.sub("", value.replace("(0)", "", 1))
        groups = _GROUPS.findall(value.replace("(0)", "", 1))
    international = (
        value[0] == "+"
        or (value.startswith("00") and len(digits) > 10)
        or text.endswith("wa.me/", 0, start)
    )
    if international:
        digits = digits[2:] if value[0] == "0" else digits
        if _international(digits):
            return True
        # "+44 020 7946 0958": the national trunk prefix written after the country code.
        cc = groups[0][2:] if value[0] == "0" else groups[0]
        rest = digits[len(cc) :]
        return len(groups) > 1 and rest[:1] == "0" and _international(cc + rest[1:])
    if value.count(".") == 1 and len(groups) == 2:
        return False  # a decimal number
    if any(len(g) == 1 for g in groups[1:]) or len(groups) > 6:
        return False
    named = _said_phone(context) or (context[-1:] == ">" and bool(_TEL_LINK.search(context)))
    if not named and not _names_other(context):
        named = _header_says(_said_phone, _column(text, start, memo), memo)
    if named:
        return any(True for _ in _regions(digits))
    # Without a word saying so, only a number written as phone numbers are: a trunk prefix
    # and groups ("030 1234567", "06-12 34 56 78"), or the North American "(415) 555-0123".
    tail = context[-24:]
    if _ID_WORD.search(tail):
        return False
    if _NANP.fullmatch(value):
        nsn = digits[1:] if len(digits) == 11 else digits
        return _holds("US", nsn) or _holds("CA", nsn)
    if digits[0] != "0" or digits[1] == "0" or len(groups) < 2 or len(groups[0]) > 5:
        return False
    seps = {value[i] for i in range(1, len(value)) if not value[i].isdigit()} - {"(", ")"}
    if len(seps) > 1 and seps != {" ", "-"} and seps != {"/", " "}:
        return False
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
    plan = _plan(region)
    if plan is None:
        return False
    _, lengths, desc = plan
    from phonenumbers.phonenumberutil import _is_number_matching_desc

    return len(nsn) in lengths and _is_number_matching_desc(nsn, desc)


@cache
def _plan(region: str):
    """A region's trunk prefix, possible lengths and general description, looked up once."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None
    desc = meta.general_desc
    return meta.national_prefix, frozenset(desc.possible_length), desc


def _regions(digits: str):
    """Regions whose numbering plan holds `digits` written in national format."""
    regions = _ZERO_REGIONS + ("IT",) if digits[0] == "0" else _OTHER_REGIONS + ("IT",)
    for region in regions:
        plan = _plan(region)
        if plan is None:
            continue
        prefix = plan[0]
        nsn = digits
        if prefix and digits.startswith(prefix):
            nsn = digits[len(prefix) :]
        elif prefix == "0":
            continue
        if _holds(region, nsn):
            yield region
