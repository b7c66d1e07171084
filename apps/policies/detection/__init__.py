"""Detection of personal data and secrets in text: the entity types, `Finding` and `detect`.

Structured types (e-mail, phone, card, IBAN, SSN, IP, secrets) are found by one cheap
pre-scan over the text (`scan`), whose candidates are validated by well-kept libraries
(phonenumbers, python-stdnum, detect-secrets, the standard library's `ipaddress`). Person
names and street addresses come from `apps.policies.detection.people`, imported only when
asked for. Findings carry offsets only: no value is ever logged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection
from dataclasses import dataclass

ENTITY_TYPES: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "CARD",
    "IBAN",
    "SSN",
    "IP",
    "SECRET",
    "PERSON",
    "ADDRESS",
)
PEOPLE: frozenset[str] = frozenset({"PERSON", "ADDRESS"})
STRUCTURED: frozenset[str] = frozenset(ENTITY_TYPES) - PEOPLE

# On two overlapping findings of equal length the more specific type is kept: a card number
# is a more precise reading of a digit run than a phone number.
_SPECIFICITY = {
    "SECRET": 8,
    "CARD": 7,
    "IBAN": 6,
    "SSN": 5,
    "EMAIL": 4,
    "IP": 3,
    "PHONE": 2,
    "ADDRESS": 1,
    "PERSON": 0,
}


class DetectorUnavailable(ImportError):
    """An entity type was asked for whose detector is not installed."""


@dataclass(frozen=True, slots=True)
class Finding:
    type: str  # one of ENTITY_TYPES
    start: int  # character offsets into the text, end exclusive
    end: int
    score: float = 1.0


def detect(text: str, types: Collection[str] | None = None) -> list[Finding]:
    """Findings sorted by start, never overlapping (on overlap keep the longer, then the
    more specific type). types=None means STRUCTURED. PERSON / ADDRESS are delegated to
    apps.policies.detection.people.find_people(text) -> list[tuple[int, int, str]]
    when asked for (import it lazily; if the module is missing, raise a clear error)."""
    if types is None:
        wanted = STRUCTURED
    else:
        wanted = frozenset(types)
        unknown = wanted.difference(ENTITY_TYPES)
        if unknown:
            raise ValueError(f"Unknown entity types: {', '.join(sorted(unknown))}.")
    if not text or not wanted:
        return []
    found: list[tuple[int, int, str, float]] = []
    if not wanted.isdisjoint(STRUCTURED):
        from apps.policies.detection.scan import find_structured

        found = find_structured(text, wanted)
    if not wanted.isdisjoint(PEOPLE):
        found.extend(_people(text, wanted))
    if not found:
        return []
    return _resolve(found)


def _people(text: str, wanted: frozenset[str]) -> list[tuple[int, int, str, float]]:
    try:
        from apps.policies.detection import people
    except ModuleNotFoundError as exc:
        if exc.name != "apps.policies.detection.people":
            raise
        raise DetectorUnavailable(
            "PERSON and ADDRESS detection needs the module apps.policies.detection.people, "
            "which is not installed."
        ) from exc
    return [(s, e, t, 1.0) for s, e, t in people.find_people(text) if t in wanted and e > s]


def _resolve(found: list[tuple[int, int, str, float]]) -> list[Finding]:
    """Keep the longer (then the more specific) of overlapping findings."""
    if len(found) == 1:
        s, e, t, score = found[0]
        return [Finding(t, s, e, score)]
    ranked = sorted(found, key=lambda f: (f[0] - f[1], -_SPECIFICITY[f[2]], f[0]))
    # Kept findings never overlap, so a candidate only needs checking against its two
    # neighbours in start order (a prompt may hold hundreds of findings: a table).
    starts: list[int] = []
    kept: list[tuple[int, int, str, float]] = []
    for f in ranked:
        s, e = f[0], f[1]
        i = bisect_right(starts, s)
        if (i and kept[i - 1][1] > s) or (i < len(kept) and kept[i][0] < e):
            continue
        starts.insert(i, s)
        kept.insert(i, f)
    return [Finding(t, s, e, score) for s, e, t, score in kept]
