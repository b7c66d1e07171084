"""Cached answers as compact bytes: orjson, zlib-compressed above a size threshold."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

_JSON = b"j"
_ZLIB = b"z"


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached chat.completion and where it came from."""

    response: dict[str, Any]  # the final OpenAI chat.completion body, usage included
    model: str  # public name of the model that served it
    provider: str
    cost: Decimal  # what the original call cost; a hit costs nothing
    created: float  # epoch seconds when it was stored


def encode(entry: Entry, *, compress_above: int) -> bytes:
    raw = orjson.dumps(
        {
            "r": entry.response,
            "m": entry.model,
            "p": entry.provider,
            "c": str(entry.cost),
            "t": entry.created,
        }
    )
    if len(raw) > compress_above:
        packed = zlib.compress(raw, 1)
        if len(packed) < len(raw):
            return _ZLIB + packed
    return _JSON + raw


def decode(data: bytes) -> Entry:
    """The entry in `data`; ValueError when it is not one of ours."""
    tag, body = data[:1], data[1:]
    if tag == _ZLIB:
        body = zlib.decompress(body)
    elif tag != _JSON:
        raise ValueError("not a cache entry")
    value = orjson.loads(body)
    return Entry(
        response=value["r"],
        model=value["m"],
        provider=value["p"],
        cost=Decimal(value["c"]),
        created=float(value["t"]),
    )
