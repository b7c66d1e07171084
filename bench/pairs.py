"""Before/after pairs: the same ATP scenarios at two commits, interleaved, on one machine.

A change that should cost the hot path nothing (the write-behind work of issue 10, say) is
judged against run-to-run noise, which on these shared machines is larger than most
regressions. So both builds are started side by side and measured alternately, pair after
pair (before, after, before, after, ... with the order flipped every other pair so neither
always runs second); the report gives each side's median and spread and the median of the
per-pair ratios.

    python bench/pairs.py --before 6c4e0d5 --after HEAD --pairs 5
    python bench/pairs.py --before main~3 --scenarios json-0ms-16c,sse-0ms-16c --window 8

The commit checked out for `--before` (and `--after` unless it is the working tree, `.`)
goes into a temporary git worktree that shares this tree's virtualenv. Results go to
bench/results/pairs-<date>.json and .md. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402

DEFAULT_SCENARIOS = "json-0ms-16c,sse-0ms-16c,json-0ms-64c"


def checkout(ref: str, work: Path) -> Path:
    """A worktree of `ref` sharing this tree's virtualenv ('.' is this tree as it is)."""
    if ref == ".":
        return bench.ROOT
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", ref],
        cwd=bench.ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = work / f"tree-{sha}"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), sha],
        cwd=bench.ROOT,
        check=True,
        capture_output=True,
    )
    (path / ".venv").symlink_to(bench.ROOT / ".venv")
    return path


def remove_checkout(path: Path) -> None:
    if path == bench.ROOT:
        return
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(path)], cwd=bench.ROOT, capture_output=True
    )


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def render(meta: dict, table: list[dict]) -> str:
    lines = [
        f"# Before/after pairs, {meta['date']}",
        "",
        f"before: {meta['before']}  ",
        f"after: {meta['after']}  ",
        f"{meta['pairs']} interleaved pairs, {meta['window']} s measured per run, "
        "ATP pinned to CPU 0, upstream and wrk on CPU 1.",
        "",
        "| scenario | before req/s median (min-max) | after req/s median (min-max) "
        "| after/before req/s, median of pairs (min-max) "
        "| after/before req per CPU-second, median (min-max) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in table:
        b, a, r, c = row["before"], row["after"], row["ratio"], row["cpu_ratio"]
        lines.append(
            f"| {row['scenario']} | {b['median']:,.0f} ({b['min']:,.0f}-{b['max']:,.0f}) "
            f"| {a['median']:,.0f} ({a['min']:,.0f}-{a['max']:,.0f}) "
            f"| {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) "
            f"| {c['median']:.3f} ({c['min']:.3f}-{c['max']:.3f}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git ref of the baseline")
    p.add_argument("--after", default=".", help="git ref, or '.' for this tree (default)")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    p.add_argument("--window", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--out", default=str(bench.RESULTS))
    args = p.parse_args()
    scenarios = [bench.SCENARIO_BY_NAME[n.strip()] for n in args.scenarios.split(",")]
    # measure() reads these options from the run.py argument namespace.
    opts = argparse.Namespace(
        window=args.window, warmup=args.warmup, drain_fast=3.0, drain_slow=4.0, timeout=10.0
    )
    bench.ensure_apt("wrk", "wrk")
    bench.ensure_apt("node", "nodejs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="atp-pairs-"))
    started = dt.datetime.now(dt.UTC)
    trees: dict[str, Path] = {}
    rps: dict[tuple[str, str], list[float]] = {}
    per_cpu: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {s.name: [] for s in scenarios}
    cpu_ratios: dict[str, list[float]] = {s.name: [] for s in scenarios}
    versions: dict[str, str] = {}
    try:
        trees = {"before": checkout(args.before, work), "after": checkout(args.after, work)}
        upstream = bench.Upstream(bench.free_port())
        upstream.start()
        live = {}
        for side, tree in trees.items():
            target = bench.AtpTarget(upstream, work)
            target.name = f"atp-{side}"
            target.root = tree
            ep = target.start()
            bench.smoke_test(target.name, ep, upstream)
            versions[side] = ep.version
            live[side] = (target, ep)
        for index in range(args.pairs):
            order = ["before", "after"] if index % 2 == 0 else ["after", "before"]
            for sc in scenarios:
                got, got_cpu = {}, {}
                for side in order:
                    _target, ep = live[side]
                    row = bench.measure(f"atp-{side}", ep, sc, upstream, opts, None)
                    got[side] = row.rps
                    got_cpu[side] = row.req_per_cpu_s or 0.0
                    rps.setdefault((sc.name, side), []).append(row.rps)
                    per_cpu.setdefault((sc.name, side), []).append(got_cpu[side])
                ratios[sc.name].append(got["after"] / got["before"])
                if got_cpu["before"]:
                    cpu_ratios[sc.name].append(got_cpu["after"] / got_cpu["before"])
        for target, _ep in live.values():
            target.stop()
    finally:
        bench.PROCS.stop_all()
        for tree in trees.values():
            remove_checkout(tree)
        shutil.rmtree(work, ignore_errors=True)

    table = [
        {
            "scenario": sc.name,
            "before": summary(rps[(sc.name, "before")]),
            "after": summary(rps[(sc.name, "after")]),
            "ratio": summary(ratios[sc.name]),
            # Requests per CPU-second of the gateway process: what the change costs per
            # request, less sensitive than req/s to other load on the machine.
            "cpu_ratio": summary(cpu_ratios[sc.name] or [0.0]),
            "before_req_per_cpu_s": per_cpu[(sc.name, "before")],
            "after_req_per_cpu_s": per_cpu[(sc.name, "after")],
            "before_runs": rps[(sc.name, "before")],
            "after_runs": rps[(sc.name, "after")],
        }
        for sc in scenarios
    ]
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python bench/pairs.py", *sys.argv[1:]]),
        "before": versions.get("before", args.before),
        "after": versions.get("after", args.after),
        "pairs": args.pairs,
        "window": args.window,
        "cpus": os.cpu_count(),
    }
    stamp = started.strftime("%Y-%m-%dT%H%M%SZ")
    (out / f"pairs-{stamp}.json").write_text(
        json.dumps({"meta": meta, "results": table}, indent=2) + "\n"
    )
    md = render(meta, table)
    (out / f"pairs-{stamp}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        bench.PROCS.stop_all()
