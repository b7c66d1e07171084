"""Values every database takes: text, JSON and numbers made storable by construction.

PostgreSQL refuses NUL in text and `\\u0000` in jsonb, psycopg cannot encode a lone
surrogate, a varchar(n) refuses a longer string, an integer or numeric(p, s) column
refuses a number out of its range, and orjson refuses deep nesting, integers beyond 64
bits, non-string keys and types it does not know. A write-behind batch goes in as one
COPY, so one such value would fail every row queued with it. The row inserter passes
every value through here; a clean value (nearly all of them) leaves as it came after a
check or two done in C.

What is changed: NUL and lone surrogates become U+FFFD, text is cut to the column's
length, integers and decimals are held to the column's range, JSON is rebuilt from
JSON-native values (unknown types as their text, containers nested deeper than MAX_DEPTH
replaced by a marker). Each function is idempotent: cleaning a cleaned value changes
nothing, which the audit chain relies on (it hashes the cleaned values, then stores them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
# Containers nested deeper than this are replaced (orjson itself stops at 255 levels).
MAX_DEPTH = 128
TOO_DEEP = "[nested too deep to store]"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson serialises


def clean_text(value: str, max_length: int | None = None) -> str:
    """`value` without NUL or lone surrogates, cut to `max_length` characters."""
    if value.isascii():  # O(1) in CPython: a flag on the string
        if "\x00" in value:
            value = value.replace("\x00", REPLACEMENT)
    elif _UNSTORABLE.search(value) is not None:
        value = _UNSTORABLE.sub(REPLACEMENT, value)
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value


def text_adapter(max_length: int | None):
    """A column adapter: str values cleaned, None passed through, anything else stored as
    its text (what the database would make of it)."""

    def adapt(value: Any) -> Any:
        if value.__class__ is str:
            if (
                value.isascii()
                and "\x00" not in value
                and (max_length is None or len(value) <= max_length)
            ):
                return value
            return clean_text(value, max_length)
        if value is None:
            return None
        # A str subclass (a TextChoices member) or a number: as the database would store it.
        return clean_text(str(value), max_length)

    return adapt


def int_adapter(low: int, high: int):
    """A column adapter: integers clamped to [low, high]; numbers and numeric text made
    integers; anything else None (the column's own rule decides whether that is allowed)."""

    def adapt(value: Any) -> Any:
        if value.__class__ is int and low <= value <= high:
            return value
        if value is None:
            return None
        return _clamp(value, low, high)

    return adapt


def _clamp(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(number, low), high)


def decimal_clamp(field: Any):
    """A DecimalField adapter: values beyond the column's digits (numeric(p, s) refuses
    them) are held to its largest value, keeping the sign; non-finite ones become None."""
    whole = field.max_digits - field.decimal_places
    largest = Decimal(10) ** whole - Decimal(1).scaleb(-field.decimal_places)

    def clamp(value: Any) -> Any:
        if value.__class__ is Decimal and value.is_finite() and -largest <= value <= largest:
            return value
        if value is None:
            return None
        try:
            number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        except (InvalidOperation, TypeError, ValueError):
            return None
        if not number.is_finite():
            return None
        return max(min(number, largest), -largest)

    return clamp


def clean_json(value: Any, _depth: int = 0, *, keep: tuple[type, ...] = ()) -> Any:
    """A copy of `value` made only of JSON-native values orjson and jsonb both take.

    Values of the `keep` types are left as they are (for encoders that handle them).
    """
    cls = value.__class__
    if cls is str:
        return clean_text(value)
    if value is None or cls is bool or cls is float:
        return value
    if cls is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, Mapping):
        if _depth >= MAX_DEPTH:
            return TOO_DEEP
        return {
            clean_text(k if k.__class__ is str else str(k)): clean_json(v, _depth + 1, keep=keep)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        if _depth >= MAX_DEPTH:
            return TOO_DEEP
        return [clean_json(v, _depth + 1, keep=keep) for v in value]
    if keep and isinstance(value, keep):
        return value
    if isinstance(value, int):
        return clean_json(int(value), _depth)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return clean_text(bytes(value).decode("utf-8", "replace"))
    return clean_text(str(value))


def json_text(value: Any) -> str | None:
    """`value` as JSON text any backend stores (jsonb from COPY's text format included)."""
    if value is None:
        return None
    try:
        out = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: surrogates, depth, big ints, unknown types
        out = orjson.dumps(clean_json(value))
    else:
        # jsonb refuses the NUL escape. Most JSON has no backslash at all, and looking for
        # one byte is a memchr; a literal backslash-u0000 in a string (escaped as
        # `\\u0000`) also matches, and its clean copy is then the same value.
        if b"\\" in out and b"\\u0000" in out:
            out = orjson.dumps(clean_json(value))
    return out.decode()


def storable_json(value: Any) -> Any:
    """`value` itself when json_text would store it unchanged, else its clean copy."""
    if value is None:
        return None
    try:
        out = orjson.dumps(value)
    except TypeError:
        return clean_json(value)
    return clean_json(value) if b"\\" in out and b"\\u0000" in out else value
