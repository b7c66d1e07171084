"""Entity-level quality of the detector on labelled records (used by bench/pii_eval.py and the
quality tests).

A record is `{"id", "kind", "lang", "text", "spans": [[start, end, "TYPE"], ...]}`. A
detection is correct when it overlaps a gold span of the same type; a gold span is found
when some detection of its type overlaps it. Over-redaction counts the characters inside
detections and outside every gold span (of any type), over all characters outside every
gold span.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass
class TypeScore:
    detected: int = 0  # detections of this type
    correct: int = 0  # detections overlapping a gold span of this type
    support: int = 0  # gold spans of this type
    found: int = 0  # gold spans overlapped by a detection of this type

    @property
    def precision(self) -> float:
        return self.correct / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.support if self.support else 1.0


@dataclass
class Report:
    types: dict[str, TypeScore] = field(default_factory=dict)
    outside_chars: int = 0  # characters outside every gold span
    over_chars: int = 0  # of those, characters inside a detection
    records: int = 0
    misses: list[tuple[str, str, int, int]] = field(default_factory=list)  # id, type, start, end
    false: list[tuple[str, str, int, int]] = field(default_factory=list)

    @property
    def over_redaction(self) -> float:
        return self.over_chars / self.outside_chars if self.outside_chars else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "over_redaction": round(self.over_redaction, 5),
            "types": {
                kind: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "support": s.support,
                    "detected": s.detected,
                }
                for kind, s in sorted(self.types.items())
            },
        }


def load(path: str | Path) -> list[Record]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def evaluate(
    records: Iterable[Record],
    detect: Callable[[str], Iterable[Any]],
    types: Collection[str],
) -> Report:
    """Score `detect` (text -> findings with type, start, end) on `records` for `types`."""
    report = Report(types={kind: TypeScore() for kind in types})
    for record in records:
        report.records += 1
        text = record["text"]
        gold = [(int(s), int(e), t) for s, e, t in record["spans"]]
        found = [(f.start, f.end, f.type) for f in detect(text) if f.type in report.types]
        for s, e, t in gold:
            if t not in report.types:
                continue
            score = report.types[t]
            score.support += 1
            if any(ft == t and _overlaps(s, e, fs, fe) for fs, fe, ft in found):
                score.found += 1
            else:
                report.misses.append((record["id"], t, s, e))
        for fs, fe, ft in found:
            score = report.types[ft]
            score.detected += 1
            if any(t == ft and _overlaps(s, e, fs, fe) for s, e, t in gold):
                score.correct += 1
            else:
                report.false.append((record["id"], ft, fs, fe))
        inside = bytearray(len(text))
        for s, e, _ in gold:
            inside[s:e] = b"\x01" * (e - s)
        redacted = bytearray(len(text))
        for fs, fe, _ in found:
            redacted[fs:fe] = b"\x01" * (fe - fs)
        outside = len(text) - inside.count(1)
        report.outside_chars += outside
        report.over_chars += sum(1 for g, r in zip(inside, redacted, strict=True) if r and not g)
    return report
