"""Quality of the PII detector on labelled JSONL files: precision, recall and support per
entity type, and over-redaction.

    .venv/bin/python bench/pii_eval.py tests/policies/data/pii_dev.jsonl [more.jsonl ...]
    .venv/bin/python bench/pii_eval.py --json tests/policies/data/pii_dev.jsonl

Structured types by default; `--types` names others (PERSON and ADDRESS need the people
module). Only offsets and types are printed, never the values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.policies.detection import ENTITY_TYPES, STRUCTURED, detect  # noqa: E402
from apps.policies.detection.evaluation import evaluate, load  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--types", help="comma-separated entity types (default: structured)")
    parser.add_argument("--misses", action="store_true", help="list missed and false spans")
    args = parser.parse_args(argv)
    types = tuple(args.types.split(",")) if args.types else tuple(sorted(STRUCTURED))
    if any(t not in ENTITY_TYPES for t in types):
        parser.error(f"types must be among {', '.join(ENTITY_TYPES)}")
    results = {}
    for name in args.files:
        report = evaluate(load(name), lambda text: detect(text, types), types)
        results[name] = report
    if args.json:
        print(json.dumps({name: r.as_dict() for name, r in results.items()}, indent=2))
        return 0
    for name, report in results.items():
        print(f"{name}: {report.records} records")
        print(f"  {'type':<8}{'precision':>10}{'recall':>9}{'support':>9}{'detected':>10}")
        for kind, s in sorted(report.types.items()):
            print(f"  {kind:<8}{s.precision:>10.4f}{s.recall:>9.4f}{s.support:>9}{s.detected:>10}")
        print(f"  over-redaction {report.over_redaction:.4%} of non-PII characters")
        if args.misses:
            for rid, kind, s, e in report.misses:
                print(f"  missed {kind} {rid} [{s}:{e}]")
            for rid, kind, s, e in report.false:
                print(f"  false  {kind} {rid} [{s}:{e}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
