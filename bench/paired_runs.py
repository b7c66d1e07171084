"""What bench/limits_pairs.py and bench/governance_runs.py share: one run of bench/run.py
over a set of targets, and the median and spread of a ratio over several runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SCENARIOS = "json-0ms-16c,json-0ms-64c,sse-0ms-16c,sse-0ms-64c"


def one_run(
    targets: list[str],
    scenarios: str,
    window: float,
    *,
    env: dict[str, str] | None = None,
    keep: bool = True,
) -> list[dict]:
    """Run bench/run.py once over `targets` (in that order) and return its result rows;
    `keep=False` removes the run's own result file (the caller reports every figure)."""
    before = set(RESULTS.glob("*.json"))
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--targets",
            ",".join(targets),
            "--scenarios",
            scenarios,
            "--window",
            str(window),
        ],
        check=True,
        env={**os.environ, **(env or {})},
    )
    (new,) = [p for p in set(RESULTS.glob("*.json")) - before if p.name[0].isdigit()]
    rows = json.loads(new.read_text())["results"]
    if not keep:
        new.unlink()
    return rows


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
