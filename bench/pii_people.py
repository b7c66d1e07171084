"""Speed, memory and quality of person-name and street-address detection
(`apps.policies.detection.people.find_people`).

    .venv/bin/python bench/pii_people.py [--calls 400] [--json]

Speed: p50 and p99 wall time (and p50 CPU time) per 2,000-token prompt (cl100k tokens, cut
exactly), one core,
for five prompt kinds: a business e-mail thread in the seven languages with a few names and
addresses; code with a few names in comments and strings; a CRM export (CSV rows of names and
addresses, the densest realistic case); records of the development set laid end to end (the
worst case: nearly every line holds a name); and prose with no personal data but many
capitalised words (headings, products, cities, sentence starts). Every call gets a fresh
prompt, drawn anew. Memory: the resident set the module and its data add to a fresh Python
process (measured in a child process). Quality: entity-level precision and recall on both
development sets (prose with titles and cues; exports, JSON, labels, forms, chat and Japanese)
for the detector and for a naive baseline (a known given name followed by a capitalised word;
a number, capitalised words and an English street type).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.policies.detection import Finding  # noqa: E402
from apps.policies.detection import people as P  # noqa: E402
from apps.policies.detection.evaluation import evaluate, load  # noqa: E402
from apps.providers.tokens import count_text, truncate_text  # noqa: E402

DEV = ROOT / "tests/policies/data/pii_people_dev.jsonl"
DEV2 = ROOT / "tests/policies/data/pii_people_dev2.jsonl"
KINDS = ("email", "code", "crm", "dense", "none")

SENTENCES = [
    "Thanks for the quick turnaround on the Q3 numbers.",
    "The Finance team will review the Budget Forecast on Monday.",
    "Please confirm that the Enterprise Plan includes Single Sign-On.",
    "Our offices in Paris, Berlin and Madrid close early on Friday.",
    "Die Rechnung für März ist im Kundenportal verfügbar.",
    "La réunion de suivi est prévue jeudi à Lyon.",
    "El informe trimestral incluye las cifras de Barcelona y Sevilla.",
    "Il contratto con Fastweb scade a Giugno.",
    "De offerte voor Rotterdam volgt volgende week.",
    "A proposta para Lisboa e Porto segue em anexo.",
    "Will the new Release Notes cover the Grace Period change?",
    "May we move the Summer Offsite to the Rose Garden room?",
    "Mark the ticket as resolved once Bill Payments confirms.",
]
HEADINGS = [
    "## Release Notes",
    "### Known Issues",
    "# Quarterly Business Review",
    "## Action Items",
    "### Summer Sale Campaign",
]
CODE = '''class InvoiceService(BaseService):
    """Creates invoices and sends them to the billing address on file."""

    def will_retry(self, attempt: int) -> bool:
        return attempt < self.MaxRetries and not self.Rose.grace_days

    def render(self, invoice: Invoice) -> str:
        template = Template("Dear {name},\\nYour invoice {number} is attached.")
        return template.render(name=invoice.customer.FullName, number=invoice.Number)

'''


def _names(r: random.Random, records: list[dict]) -> tuple[list[str], list[str]]:
    names, addresses = [], []
    for record in records:
        for s, e, kind in record["spans"]:
            (names if kind == "PERSON" else addresses).append(record["text"][s:e])
    return names, addresses


def make(kind: str, r: random.Random, records: list[dict], pools) -> str:
    names, addresses = pools
    parts: list[str] = []
    if kind == "email":
        while len(parts) < 400:
            parts.append(r.choice(HEADINGS) if r.random() < 0.05 else r.choice(SENTENCES))
            if r.random() < 0.06:
                parts.append(f"Please send it to {r.choice(names)} at {r.choice(addresses)}.")
            if r.random() < 0.03:
                parts.append(f"\nBest regards,\n{r.choice(names)}\n")
        text = " ".join(parts)
    elif kind == "code":
        while len(parts) < 60:
            parts.append(CODE)
            if r.random() < 0.2:
                parts.append(f'# Owner: {r.choice(names)}\nSHIP_FROM = "{r.choice(addresses)}"\n')
        text = "".join(parts)
    elif kind == "crm":
        parts.append("id,name,street,segment,owner")
        while len(parts) < 400:
            parts.append(
                f'{r.randint(1000, 99999)},{r.choice(names)},"{r.choice(addresses)}",'
                f"{r.choice(['Enterprise', 'SMB', 'Public Sector'])},{r.choice(names)}"
            )
        text = "\n".join(parts)
    elif kind == "dense":
        while sum(map(len, parts)) < 12000:
            parts.append(r.choice(records)["text"])
        text = "\n\n".join(parts)
    else:
        while len(parts) < 400:
            parts.append(r.choice(HEADINGS) if r.random() < 0.1 else r.choice(SENTENCES))
        text = " ".join(parts)
    while count_text(text) < 2000:
        text += "\n" + text
    return truncate_text(text, 2000)


def rss_added() -> float:
    """MiB of resident memory that importing the module and loading its data add."""
    code = (
        "import sys, resource\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "def rss():\n"
        "    with open('/proc/self/statm') as fh:\n"
        "        return int(fh.read().split()[1]) * resource.getpagesize()\n"
        "import re, unicodedata, threading, functools, pathlib\n"
        "before = rss()\n"
        "from apps.policies.detection import people\n"
        "people.find_people('Dear Dr. Maria Schmidt, 221B Baker Street, London NW1 6XE')\n"
        "print((rss() - before) / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


_BASE_NAME = re.compile(r"\b([A-Z][a-z]+) [A-Z][a-z]+")
_BASE_ADDRESS = re.compile(
    r"\b\d{1,5} (?:[A-Z][a-z]+ ){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Drive|Blvd|Way)\b"
)


def baseline(text: str) -> list[Finding]:
    lex = P._lexicon()
    out = [Finding("ADDRESS", m.start(), m.end()) for m in _BASE_ADDRESS.finditer(text)]
    for m in _BASE_NAME.finditer(text):
        if m.group(1).lower() in lex.given:
            out.append(Finding("PERSON", m.start(), m.end()))
    return out


def quality(records: list[dict]) -> dict:
    types = ("PERSON", "ADDRESS")
    ours = evaluate(records, lambda t: [Finding(k, s, e) for s, e, k in P.find_people(t)], types)
    base = evaluate(records, baseline, types)
    return {"detector": ours.as_dict(), "baseline": base.as_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="prompts per kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    records = load(DEV)
    r = random.Random(args.seed)
    pools = _names(r, records)
    start = time.perf_counter()
    P.find_people("warm-up: Dear Dr. Maria Schmidt")
    load_ms = (time.perf_counter() - start) * 1000
    results: dict = {"first_call_ms": round(load_ms, 1), "kinds": {}}
    for kind in KINDS:
        prompts = [make(kind, r, records, pools) for _ in range(min(args.calls, 50))]
        times, cpu = [], []
        for i in range(args.calls):
            text = prompts[i % len(prompts)]
            t0, c0 = time.perf_counter(), time.thread_time()
            P.find_people(text)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
        times.sort()
        cpu.sort()
        results["kinds"][kind] = {
            "chars": round(statistics.mean(len(p) for p in prompts)),
            "spans": round(statistics.mean(len(P.find_people(p)) for p in prompts), 1),
            "p50_ms": round(times[len(times) // 2], 2),
            "p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
            "cpu_p50_ms": round(cpu[len(cpu) // 2], 2),
        }
    results["rss_added_mib"] = round(rss_added(), 1)
    results["quality_dev"] = quality(records)
    results["quality_dev2"] = quality(load(DEV2))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"first call (data load) {results['first_call_ms']} ms")
    print(f"{'kind':<8}{'chars':>7}{'spans':>7}{'p50 ms':>9}{'p99 ms':>9}{'cpu p50':>9}")
    for kind, row in results["kinds"].items():
        print(
            f"{kind:<8}{row['chars']:>7}{row['spans']:>7}{row['p50_ms']:>9}{row['p99_ms']:>9}"
            f"{row['cpu_p50_ms']:>9}"
        )
    print(f"resident memory added: {results['rss_added_mib']} MiB")
    for name in ("quality_dev", "quality_dev2"):
        for who, report in results[name].items():
            for kind, s in report["types"].items():
                print(
                    f"{name[8:]:<5} {who:<9} {kind:<8} precision {s['precision']:.4f} "
                    f"recall {s['recall']:.4f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
