"""What governance costs the gateway on a realistic prompt: every target is sent the same
2,000-token support request holding personal data (bench/governance_prompt.json), and ATP
runs with Redis twice, once without policies (atp-redis) and once with a tenant of 100
policies in scope and PII redaction on (atp-governed, see bench/run.py), beside Portkey's
gateway.

    python bench/governance_runs.py               # 3 runs, 0 ms upstream, 16 and 64 conns
    python bench/governance_runs.py --runs 5 --window 8

Each run starts the three gateways and measures every scenario against each in turn; the
order of the two ATP targets flips from one run to the next. The report gives, per
scenario, each run's req/s and the ratios' median and spread, and writes
bench/results/governance-<date>.json and .md. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import paired_runs
from paired_runs import BENCH, RESULTS, SCENARIOS, spread

PROMPT = BENCH / "governance_prompt.json"
GOVERNED, PLAIN, PORTKEY = "atp-governed", "atp-redis", "portkey"


def one_run(order: list[str], scenarios: str, window: float) -> list[dict]:
    return paired_runs.one_run(
        [PORTKEY, *order], scenarios, window, env={"BENCH_BODY_FILE": str(PROMPT)}, keep=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=SCENARIOS)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()

    runs = []
    for i in range(args.runs):
        order = [PLAIN, GOVERNED] if i % 2 == 0 else [GOVERNED, PLAIN]
        rows = one_run(order, args.scenarios, args.window)
        runs.append({(r["target"], r["scenario"]): r for r in rows})

    table = []
    for scenario in args.scenarios.split(","):
        rps = {
            name: [run[(name, scenario)]["rps"] for run in runs]
            for name in (GOVERNED, PLAIN, PORTKEY)
        }
        errors = sum(run[(GOVERNED, scenario)].get("errors", 0) for run in runs)
        table.append(
            {
                "scenario": scenario,
                "rps": {k: [round(v, 1) for v in vs] for k, vs in rps.items()},
                "governed_vs_portkey": spread(
                    [g / p for g, p in zip(rps[GOVERNED], rps[PORTKEY], strict=True)]
                ),
                "governed_vs_plain": spread(
                    [g / p for g, p in zip(rps[GOVERNED], rps[PLAIN], strict=True)]
                ),
                "governed_errors": errors,
            }
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (RESULTS / f"governance-{stamp}.json").write_text(json.dumps(table, indent=2))
    lines = [
        f"# Governance on the hot path, {stamp}",
        "",
        f"{args.runs} runs; every target sent bench/governance_prompt.json (about 2,000 "
        "tokens with personal data). atp-governed: 100 policies in scope and PII redaction "
        "on; atp-redis: the same ATP without policies. req/s per run; ratios as median "
        "(min to max).",
        "",
        "| scenario | atp-governed req/s | atp-redis req/s | portkey req/s "
        "| governed / Portkey | governed / no policies | governed errors |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in table:
        a, b = row["governed_vs_portkey"], row["governed_vs_plain"]
        lines.append(
            f"| {row['scenario']} | "
            + " | ".join(
                ", ".join(f"{v:,.0f}" for v in row["rps"][n]) for n in (GOVERNED, PLAIN, PORTKEY)
            )
            + f" | {a['median']:.2f}x ({a['min']:.2f} to {a['max']:.2f})"
            + f" | {b['median']:.2f} ({b['min']:.2f} to {b['max']:.2f})"
            + f" | {row['governed_errors']} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"governance-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
