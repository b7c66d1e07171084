"""The pre-scan: one pass of cheap byte operations that finds every candidate.

Python's `re` spends 10 to 20 ns on each character a pattern may start at, so a pattern
that may start at any letter or digit costs more than the whole budget on a long prompt.
The pre-scan therefore maps the text once to a byte string of character classes (every
digit becomes `0`, every upper-case letter `A`, every lower-case one `a`; one byte per
character, so offsets stay character offsets) and looks in it only for patterns that start
with a literal byte, which `re` and `bytes.find` skip to in C:

- `@` for e-mail addresses, `://` for credentials in URLs, `-----BEGIN` for key blocks;
- `0` (a digit) for numbers: IPv4 addresses, SSNs, card numbers, phone numbers;
- `AA00` (two capitals and two digits) for IBANs;
- `:` followed by a colon within five characters for IPv6 addresses;
- twenty token characters in a row (a second class map) for API keys and tokens;
- a few keywords (`pass`, `secret`, `pwd`) for passwords in assignments and connection
  strings.

Candidates are then validated one by one (`numbers`, `secrets`, this module for e-mail,
IBAN and IPv6), so the slow libraries only ever see short strings that already look right.
"""

from __future__ import annotations

import functools
import re

from apps.policies.detection import numbers, secrets

Raw = list[tuple[int, int, str, float]]


def _class_table() -> bytes:
    table = bytearray(range(256))
    for c in b"0123456789":
        table[c] = 0x30
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = 0x41
    for c in range(ord("a"), ord("z") + 1):
        table[c] = 0x61
    return bytes(table)


_CLASSES = _class_table()
# At least four digits, with up to three separators between two of them.
# Not inside a word or a decimal (the look-behinds; after a comma between digits the run
# may be a thousands group or a CSV field, which `numbers` tells apart), not an ISO date (the look-ahead; "0450-98-52-52" is a
# Belgian phone number, not a date followed by a number): these are checked
# again later, but rejecting them here spares a Python call for each hex id and timestamp.
_NUMBER_RUN = re.compile(
    rb"0(?<![0Aa_]0)(?<!0[-./]0)(?!000-00-00(?!-0))(?:[ .\-/()]{0,3}0){3,}[0 .\-/()]*"
)
_IBAN_START = re.compile(rb"AA00")
_WORD = re.compile(rb"[0Aa_+\-]+")  # "/" ends a word too: "wa.me/447700900123"
# "::" or four groups in a row: times ("10:22:31") and dictionaries never start one.
_IPV6_TRIGGER = re.compile(rb"::|:[0Aa]{1,4}:[0Aa]{1,4}:[0Aa]{1,4}:")

_DASHES = ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\uff0d")
_SPACES = ("\u00a0", "\u202f", "\u2009", "\u2007", "\u3000")
# Full-width forms, as Japanese, Chinese and Korean text writes numbers ("０９０－１２３４－
# ５６７８", "（０３）", "＋８１"): digits, plus, parentheses and the full stop.
_FULL_WIDTH = {0xFF10 + i: str(i) for i in range(10)} | {
    0xFF0B: "+", 0xFF08: "(", 0xFF09: ")", 0xFF0E: ".", 0xFF0F: "/",
}  # fmt: skip
_TYPOGRAPHIC_TABLE = {ord(d): "-" for d in _DASHES} | {ord(c): " " for c in _SPACES} | _FULL_WIDTH
_TYPOGRAPHIC = re.compile("[" + "".join(map(chr, _TYPOGRAPHIC_TABLE)) + "]")

NUMERIC = frozenset({"PHONE", "CARD", "SSN", "IP"})


def find_structured(text: str, wanted: frozenset[str]) -> Raw:
    """Candidate findings of the structured types in `wanted`, possibly overlapping."""
    if not text.isascii() and _TYPOGRAPHIC.search(text):
        # Typographic dashes ("123–45–6789", "030 – 1234567") read as hyphens, non-breaking
        # and thin spaces ("01 23 45 67 89" in French typography) as spaces, full-width
        # digits as digits; one character for one, so offsets are kept.
        text = text.translate(_TYPOGRAPHIC_TABLE)
    # One byte per character: characters outside Latin-1 become "?", so offsets are kept.
    raw = text.encode("latin-1", "replace")
    cls = raw.translate(_CLASSES)
    out: Raw = []
    if "EMAIL" in wanted and "@" in text:
        _emails(text, out)
    runs = secrets.token_runs(raw)
    if "SECRET" in wanted:
        secrets.find(text, raw, runs, out)
    if "IBAN" in wanted:
        for m in _IBAN_START.finditer(cls):
            _iban(text, m.start(), out)
    if not wanted.isdisjoint(NUMERIC) and b"0" in cls:
        digits = cls
        if runs:
            # Digits inside long words with letters (hex ids, hashes, keys, paths) are no
            # numbers; "=", "." and "/" end such a word ("SUPPORT_PHONE=+4930...",
            # "HOST=10.0.0.1").
            blanked = bytearray(cls)
            for s, e in runs:
                run = cls[s:e]
                if b"0" not in run or (b"a" not in run and b"A" not in run):
                    continue
                if b"=" not in run and b"." not in run:
                    blanked[s:e] = b"A" * (e - s)
                else:
                    for w in _WORD.finditer(cls, s, e):
                        ws, we = w.span()
                        if b"a" in cls[ws:we] or b"A" in cls[ws:we]:
                            blanked[ws:we] = b"A" * (we - ws)
            digits = bytes(blanked)
        # The digits of an IBAN found above are no other number (its groups look like
        # phone numbers to the validators, which would try several regions on each).
        ibans = [(f[0], f[1]) for f in out if f[2] == "IBAN"]
        memo: dict = {}
        for m in _NUMBER_RUN.finditer(digits):
            start, end = m.span()
            if end - start < 7:  # the shortest value is an IPv4 address ("8.8.8.8")
                continue
            if ibans:
                last = end  # the run's last digit
                while digits[last - 1] != 0x30:
                    last -= 1
                if any(s <= start and last <= e for s, e in ibans):
                    continue
            numbers.classify(text, start, end, out, memo)
    if "IP" in wanted and b":" in raw:
        _ipv6(text, cls, out)
    if len(wanted) < 7:
        out = [f for f in out if f[2] in wanted]
    return out


# --- e-mail ---------------------------------------------------------------------------------

_LOCAL_REVERSED = re.compile(r"[\w.%+\-']{1,64}")
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w\-])")
# Retina asset names ("logo@2x.png") have an e-mail address's shape.
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "pdf", "js", "css"})


def _emails(text: str, out: Raw) -> None:
    at = text.find("@")
    while at >= 0:
        nxt = text.find("@", at + 1)
        local = _LOCAL_REVERSED.match(text[max(0, at - 64) : at][::-1])
        if local is not None:
            start = at - local.end()
            while start < at and text[start] in ".'":
                start += 1
            domain = _DOMAIN.match(text, at + 1)
            if start < at and domain is not None:
                end = domain.end()
                tld = text[text.rfind(".", at, end) + 1 : end].lower()
                local_part = text[start:at]
                # The password of "scheme://user:password@host" is a secret, not a mailbox.
                scheme = text.rfind("://", max(0, at - 200), at)
                in_url = scheme >= 0 and not any(c in text[scheme + 3 : at] for c in "/ \n\t")
                if (
                    not in_url
                    and ".." not in local_part
                    and tld not in _FILE_SUFFIXES
                    and not (local_part == "git" and text[end : end + 1] == ":")
                ):
                    out.append((start, end, "EMAIL", 1.0))
        at = nxt


# --- IBAN -----------------------------------------------------------------------------------

_IBAN_BODY = re.compile(r"[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){10,32}")
_IBAN_CHAR = re.compile(r"[A-Z0-9]")


def _iban(text: str, start: int, out: Raw) -> None:
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return
    m = _IBAN_BODY.match(text, start)
    if m is None:
        return
    body = m.group()
    # The longest prefix whose ISO 7064 mod 97 check holds, ending at a character; the
    # greedy body may have swallowed a following word ("DE89 ... 00 BIC").
    compact = body.replace(" ", "").replace("-", "")
    positions = [i for i, ch in enumerate(body) if ch not in " -"]
    for n in range(len(compact), 14, -1):
        end = start + positions[n - 1] + 1
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            continue
        candidate = compact[:n]
        if _mod97(candidate) and _iban_valid(candidate):
            out.append((start, end, "IBAN", 1.0))
            return


_IBAN_DIGITS = {c: str(int(c, 36)) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _mod97(iban: str) -> bool:
    moved = iban[4:] + iban[:4]
    return int("".join(map(_IBAN_DIGITS.__getitem__, moved))) % 97 == 1


def _iban_valid(iban: str) -> bool:
    """The country's length and format (python-stdnum's IBAN registry); the mod 97 check is
    `_mod97`. The national check digits inside some BBANs (Belgium, France, Spain...) are
    not required."""
    pattern = _bban_pattern(iban[:2])
    return pattern is not None and pattern.match(iban[4:]) is not None


@functools.cache
def _bban_pattern(country: str) -> re.Pattern[str] | None:
    """The BBAN structure python-stdnum registers for a country, compiled once (its own
    `is_valid` looks the registry up on every call, 80 µs)."""
    from stdnum import iban as stdnum_iban

    info = stdnum_iban._ibandb.info(country)
    structure = info[0][1].get("bban") if info and info[0][0] == country else None
    return stdnum_iban._struct_to_re(structure) if structure else None


# --- IPv6 -----------------------------------------------------------------------------------

_V6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_V6_TAIL = re.compile(r"[0-9A-Fa-f:.]*(?:%[\w.\-]+)?")


def _ipv6(text: str, cls: bytes, out: Raw) -> None:
    import ipaddress

    done = -1
    for m in _IPV6_TRIGGER.finditer(cls):
        if m.start() < done:
            continue
        start = m.start()
        floor = max(0, start - 40)
        while start > floor and text[start - 1] in _V6_CHARS:
            start -= 1
        tail = _V6_TAIL.match(text, m.start())
        end = tail.end()
        done = end
        while end > start and text[end - 1] in ".:":
            if text[end - 2 : end] == "::" and text[end - 3 : end - 2] != ":":
                break
            end -= 1
        while start < end and text[start] == ".":
            start += 1
        if text[start : start + 1] == ":" and text[start : start + 2] != "::":
            start += 1
        if end - start < 3:
            continue
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if before.isalnum() or before in "_.-" or after.isalnum() or after in "_-":
            continue
        value = text[start:end]
        address = value.split("%", 1)[0]
        groups = [g for g in address.split(":") if g]
        # "::1" is the loopback address; "::2" is more often a Python slice.
        if len(groups) < 2 and address != "::1":
            continue
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            continue
        out.append((start, end, "IP", 1.0))
