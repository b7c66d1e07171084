"""Speed of the PII detector on 2,000-token prompts (about 8,000 characters).

    .venv/bin/python bench/pii_detect.py [--calls 3000] [--json]

Six prompt kinds: prose, code, JSON, a chat transcript (each with a few PII items), a CSV
table full of numbers (ids, postcodes, amounts, dates, a phone and an SSN column: the
column-header lookups) and a prompt with no PII at all. Every call gets a fresh prompt (PII values and filler drawn
anew), so nothing is measured warm that would be cold in production. Reports p50 and p99
per kind for the structured types (the gateway's default), on one core. The baseline is
what the pre-scan replaces: phonenumbers' own matcher run over the whole prompt.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.policies.detection import detect  # noqa: E402

WORDS = (  # noqa: SIM905
    "the request was routed to the cheaper model because the latency budget allowed it and "
    "the customer asked for a summary of the quarterly report with the churn figures per "
    "region please keep the answer short and cite the tables we discussed yesterday"
).split()
CODE = '''def handle(request, retries=3):
    """Fetch the user's orders and retry on timeouts."""
    for attempt in range(retries):
        try:
            resp = session.get(f"{BASE_URL}/v2/orders/{request.user_id}", timeout=10)
            resp.raise_for_status()
            return [Order.from_json(o) for o in resp.json()["orders"]]
        except TimeoutError as exc:  # see issue 4821, build 2024.11.3
            log.warning("attempt %d failed: %s", attempt, exc)
    raise RuntimeError("gave up after 3 attempts")

'''


def pii(r: random.Random) -> list[str]:
    alnum = string.ascii_letters + string.digits
    return [
        f"{r.choice(['ana', 'bob', 'li'])}.{r.randint(1, 999)}@example.org",
        f"+44 20 7946 {r.randint(0, 9999):04d}",
        f"AKIA{''.join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
        f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
        f"sk-proj-{''.join(r.choice(alnum) for _ in range(40))}",
    ]


def prose(r: random.Random, n: int, items: list[str]) -> str:
    out: list[str] = []
    size = 0
    while size < n:
        w = r.choice(WORDS)
        if r.random() < 0.02:
            w = str(r.randint(1, 2025))
        out.append(w)
        size += len(w) + 1
    for item in items:
        out.insert(r.randrange(len(out)), item)
    return " ".join(out)


def make(kind: str, r: random.Random, n: int = 8000) -> str:
    items = pii(r)[: r.randint(2, 4)] if kind != "none" else []
    if kind in ("prose", "none"):
        return prose(r, n, items)
    if kind == "code":
        text = CODE * (n // len(CODE))
        return text + "\n# contact " + " ".join(items) + "\n"
    if kind == "json":
        rows = []
        while sum(map(len, rows)) < n:
            rows.append(json.dumps({
                "id": f"{r.getrandbits(128):032x}", "created": "2025-03-14T10:22:31Z",
                "total": round(r.uniform(1, 999), 2), "status": r.choice(["paid", "open"]),
                "note": prose(r, 60, []),
            }))  # fmt: skip
        rows.insert(r.randrange(len(rows)), json.dumps({"contact": items}))
        return "[" + ",\n".join(rows) + "]"
    if kind == "csv":
        rows = ["customer_id,name,phone,ssn,zip,order,amount,date"]
        while sum(map(len, rows)) < n:
            rows.append(
                f"{r.randint(10000, 99999)},{r.choice(WORDS)} {r.choice(WORDS)},"
                f"030 {r.randint(1000000, 9999999)},{r.randint(100, 665)}{r.randint(10, 99)}"
                f"{r.randint(1000, 9999)},{r.randint(10000, 99999)},{r.randint(10**6, 10**9)},"
                f"{r.randint(1, 9999)}.{r.randint(0, 99):02d},2025-{r.randint(1, 12):02d}-"
                f"{r.randint(1, 28):02d}"
            )
        return "\n".join(rows)
    turns = []
    while sum(map(len, turns)) < n:
        turns.append(f"user: {prose(r, 200, [])}\nassistant: {prose(r, 300, [])}\n")
    turns.insert(r.randrange(len(turns)), "user: my details are " + ", ".join(items) + "\n")
    return "".join(turns)


def measure(kind: str, calls: int, seed: int) -> dict[str, float]:
    r = random.Random(seed)
    prompts = [make(kind, r) for _ in range(calls)]
    for p in prompts[:50]:  # imports and lazily loaded metadata
        detect(p)
    times = []
    for p in prompts:
        t = time.perf_counter_ns()
        detect(p)
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return {
        "chars": round(statistics.mean(len(p) for p in prompts)),
        "p50_us": times[len(times) // 2] / 1000,
        "p99_us": times[int(len(times) * 0.99)] / 1000,
    }


def baseline(calls: int) -> dict[str, float]:
    import phonenumbers

    r = random.Random(7)
    prompts = [make("prose", r) for _ in range(calls)]
    times = []
    for p in prompts:
        t = time.perf_counter_ns()
        list(phonenumbers.PhoneNumberMatcher(p, "GB"))
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return {"p50_us": times[len(times) // 2] / 1000, "p99_us": times[int(len(times) * 0.99)] / 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description="PII detector speed")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {
        k: measure(k, args.calls, i)
        for i, k in enumerate(["prose", "code", "json", "chat", "csv", "none"])
    }
    results["baseline: phonenumbers matcher, prose"] = baseline(min(args.calls, 100))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'prompt':<40}{'chars':>7}{'p50 us':>10}{'p99 us':>10}")
    for kind, m in results.items():
        print(f"{kind:<40}{m.get('chars', ''):>7}{m['p50_us']:>10.1f}{m['p99_us']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
