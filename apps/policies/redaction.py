"""Redaction of what a request sends and restoration of what its answer brings back.

A `Redaction` belongs to one request. `redact_text` replaces each finding of the detector
(apps.policies.detection) by what its entity type's mode says:

| mode   | the provider sees                    | restored in the answer |
| ------ | ------------------------------------ | ---------------------- |
| mask   | a numbered placeholder `[EMAIL_1]`   | yes, when allowed      |
| hash   | `[EMAIL_5f1c9a02]` (keyed HMAC)      | no                     |
| remove | nothing (the characters are dropped) | no                     |
| block  | nothing: the request is refused 403 `pii_blocked` | -         |

One value gets one placeholder for the whole request, wherever it appears, so the model
can still tell two people apart and refer back to them. Placeholders are restored in the
answer (`restore`, or `StreamRestorer` for a streamed answer, which holds back a piece of
text that might be the start of a placeholder split across chunks). Only placeholders
this request issued are restored: a placeholder-looking string the model invents stays.

`EgressScanner` is the other direction: it masks secrets and configured personal data in
an answer before the caller sees it (streamed answers through a bounded look-behind
window), and runs before placeholders are restored, so a value the caller sent is never
mistaken for a leak.

Counts per entity type (never the values) are the request's redaction evidence.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from atp_site.lib.errors import ATPError

_PLACEHOLDER = re.compile(r"\[([A-Z]{2,10})_(\d{1,6})\]")
# The longest text that may still grow into a placeholder: "[" + type + "_" + digits.
_PARTIAL = re.compile(r"\[(?:[A-Z]{0,10}(?:_\d{0,6})?)?$")


class PIIBlocked(ATPError):
    status = 403
    type = "permission_error"
    code = "pii_blocked"


Finder = Callable[[str], list]


class Redaction:
    """What one request redacted, and how to put masked values back."""

    __slots__ = ("modes", "finder", "key", "counts", "_issued", "_by_value", "_next")

    def __init__(self, modes: Mapping[str, str], finder: Finder, key: bytes = b"") -> None:
        self.modes = dict(modes)  # entity type -> mode
        self.finder = finder  # text -> findings (type, start, end)
        self.key = key  # HMAC key of the hash mode
        self.counts: Counter[str] = Counter()
        self._issued: dict[str, str] = {}  # placeholder -> original
        self._by_value: dict[tuple[str, str], str] = {}
        self._next: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.counts)

    @property
    def restorable(self) -> bool:
        return bool(self._issued)

    def _placeholder(self, kind: str, value: str) -> str:
        known = self._by_value.get((kind, value))
        if known is None:
            self._next[kind] += 1
            known = f"[{kind}_{self._next[kind]}]"
            self._by_value[(kind, value)] = known
            self._issued[known] = value
        return known

    def _hashed(self, kind: str, value: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:8]}]"

    def redact_text(self, text: str) -> str:
        """`text` with every finding of a type this redaction covers replaced."""
        modes = self.modes
        findings = [f for f in self.finder(text) if f.type in modes]
        if not findings:
            return text
        blocked = sorted({f.type for f in findings if modes[f.type] == "block"})
        if blocked:
            raise PIIBlocked(
                "The request contains data this gateway's policy does not allow to be sent: "
                + ", ".join(blocked)
                + ".",
                details={"entities": blocked},
            )
        out: list[str] = []
        at = 0
        for f in findings:
            out.append(text[at : f.start])
            value = text[f.start : f.end]
            mode = modes[f.type]
            if mode == "mask":
                out.append(self._placeholder(f.type, value))
            elif mode == "hash":
                out.append(self._hashed(f.type, value))
            # "remove": nothing in its place
            self.counts[f.type] += 1
            at = f.end
        out.append(text[at:])
        return "".join(out)

    def redact_slots(self, slots: Iterable[tuple[Any, Any]]) -> None:
        """Redact in place every string `container[key]` of `slots`."""
        for container, key in slots:
            value = container[key]
            new = self.redact_text(value)
            if new is not value:
                container[key] = new

    def restore(self, text: str) -> str:
        """`text` with this request's placeholders put back."""
        if not self._issued or "[" not in text:
            return text
        issued = self._issued
        return _PLACEHOLDER.sub(lambda m: issued.get(m.group(0), m.group(0)), text)

    def evidence(self) -> dict[str, int]:
        """How many values of each entity type were redacted (never the values)."""
        return dict(sorted(self.counts.items()))


class StreamRestorer:
    """Restores placeholders in a streamed answer whose pieces may split them."""

    __slots__ = ("redaction", "_held")

    def __init__(self, redaction: Redaction) -> None:
        self.redaction = redaction
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece if self._held else piece
        if "[" not in text:
            self._held = ""
            return text
        tail = _PARTIAL.search(text, max(0, len(text) - 18))
        if tail is not None:
            self._held = text[tail.start() :]
            text = text[: tail.start()]
        else:
            self._held = ""
        return self.redaction.restore(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self.redaction.restore(held)


class EgressBlocked(PIIBlocked):
    """An answer refused by the egress guard (same code as a refused request)."""


class EgressScanner:
    """Masks (or refuses) secrets and configured personal data in an answer.

    For a stream, `feed` releases text only once it lies more than `window` characters
    behind the newest text, unless a finding reaches into that window, in which case the
    release stops before the finding: a value split across chunks is seen whole before any
    of it is released. `flush` releases the rest at the end.
    """

    __slots__ = ("types", "mode", "finder", "window", "counts", "_held")

    def __init__(self, types: Iterable[str], mode: str, finder: Finder, window: int = 256) -> None:
        self.types = frozenset(types)
        self.mode = mode  # "mask" or "block"
        self.finder = finder
        self.window = window
        self.counts: Counter[str] = Counter()
        self._held = ""

    def _mask(self, text: str, findings: list) -> str:
        if not findings:
            return text
        if self.mode == "block":
            kinds = sorted({f.type for f in findings})
            raise EgressBlocked(
                "The answer contained data this gateway's policy does not allow to be returned: "
                + ", ".join(kinds)
                + ".",
                details={"entities": kinds},
            )
        out: list[str] = []
        at = 0
        for f in findings:
            out.append(text[at : f.start])
            out.append(f"[REDACTED_{f.type}]")
            self.counts[f.type] += 1
            at = f.end
        out.append(text[at:])
        return "".join(out)

    def _find(self, text: str) -> list:
        types = self.types
        return [f for f in self.finder(text) if f.type in types]

    def scan(self, text: str) -> str:
        return self._mask(text, self._find(text))

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = len(text) - self.window
        if cut <= 0:
            self._held = text
            return ""
        findings = self._find(text)
        for f in findings:
            if f.end > cut:
                cut = min(cut, f.start)
                break
        released = [f for f in findings if f.end <= cut]
        self._held = text[cut:]
        return self._mask(text[:cut], released)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self.scan(held) if held else ""
