"""What rate limits and budgets cost the gateway: ATP with Redis and no limits against ATP
with Redis where every request goes through a key with rate limits (requests, tokens,
concurrency), a tenant budget and a project budget, beside Portkey's gateway.

    python bench/limits_pairs.py               # 3 runs, 0 ms upstream, 16 and 64 conns
    python bench/limits_pairs.py --runs 5 --window 8

Each run starts the three gateways and measures every scenario against each in turn, so
the two ATP targets of a scenario are measured back to back (a pair); the order of the two
flips from one run to the next so neither always goes second. The report gives, per
scenario, each pair's ratios and their median and spread, and writes
bench/results/limits-<date>.json and .md. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import paired_runs
from paired_runs import RESULTS, SCENARIOS, spread

LIMITS, NO_LIMITS, PORTKEY = "atp-limits", "atp-redis", "portkey"


def one_run(order: list[str], scenarios: str, window: float) -> list[dict]:
    return paired_runs.one_run([PORTKEY, *order], scenarios, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=SCENARIOS)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()

    runs = []
    for i in range(args.runs):
        order = [NO_LIMITS, LIMITS] if i % 2 == 0 else [LIMITS, NO_LIMITS]
        rows = one_run(order, args.scenarios, args.window)
        runs.append({(r["target"], r["scenario"]): r["rps"] for r in rows})

    table = []
    for scenario in args.scenarios.split(","):
        vs_redis = [run[(LIMITS, scenario)] / run[(NO_LIMITS, scenario)] for run in runs]
        vs_portkey = [run[(LIMITS, scenario)] / run[(PORTKEY, scenario)] for run in runs]
        table.append(
            {
                "scenario": scenario,
                "rps": {
                    name: [round(run[(name, scenario)], 1) for run in runs]
                    for name in (LIMITS, NO_LIMITS, PORTKEY)
                },
                "limits_vs_no_limits": spread(vs_redis),
                "limits_vs_portkey": spread(vs_portkey),
            }
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (RESULTS / f"limits-{stamp}.json").write_text(json.dumps(table, indent=2))
    lines = [
        f"# Limits and budgets on the hot path, {stamp}",
        "",
        f"{args.runs} runs, the two ATP targets measured back to back in each scenario, their "
        "order flipped every run. req/s per run; ratios as median (min to max).",
        "",
        "| scenario | atp-limits req/s | atp-redis req/s | portkey req/s "
        "| limits / no limits | limits / Portkey |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for row in table:
        a, b = row["limits_vs_no_limits"], row["limits_vs_portkey"]
        lines.append(
            f"| {row['scenario']} | "
            + " | ".join(
                ", ".join(f"{v:,.0f}" for v in row["rps"][n]) for n in (LIMITS, NO_LIMITS, PORTKEY)
            )
            + f" | {a['median']:.2f} ({a['min']:.2f} to {a['max']:.2f})"
            + f" | {b['median']:.2f}x ({b['min']:.2f} to {b['max']:.2f}) |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / f"limits-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
