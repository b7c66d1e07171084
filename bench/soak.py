"""Soak: 100,000 requests through one gateway process, its memory sampled as they go.

    .venv/bin/python bench/soak.py [--requests 100000] [--connections 16] [--stream]

One embedded ATP process (the default configuration: `make run`'s server, SQLite request
log, no Redis) pinned to CPU 0 in front of the fast fake upstream (bench/upstream.mjs) on
CPU 1, driven by wrk in 5-second rounds until `--requests` were answered. After each round
the process's resident memory (VmRSS) is read. Reported: resident memory after the
warm-up (the first 10% of the requests), at the end, the growth between them (target
under 10%), and the largest seen (target under 150 MiB). Results are printed and written
to bench/results/soak-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults_under_load import KEY, ROOT, serve_gateway  # noqa: E402
from overload import _config, start_upstream  # noqa: E402

ROUND_SECONDS = 5


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def round_of_requests(base: str, connections: int, stream: bool) -> tuple[int, int]:
    pin = ["taskset", "-c", "1"] if os.path.exists("/usr/bin/taskset") else []
    extra = ["stream"] if stream else []
    result = subprocess.run(
        [*pin, "wrk", "-t", "1", "-c", str(connections), "-d", str(ROUND_SECONDS + 2),
         "--timeout", "10s", "-s", str(ROOT / "bench" / "post.lua"),
         f"{base}/v1/chat/completions", "--", str(ROUND_SECONDS), *extra,
         f"authorization=Bearer%20{KEY}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            return data["responses"], data["non2xx"]
    raise RuntimeError(f"wrk printed no result: {result.stdout[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    upstream, port = start_upstream(delay_ms=0)
    samples: list[tuple[int, float]] = []
    errors = 0
    try:
        with tempfile.TemporaryDirectory(prefix="atp-soak-") as tmp:
            process, base = serve_gateway(Path(tmp), _config(port), {}, cpu="0")
            try:
                samples.append((0, rss_mib(process.pid)))
                done = 0
                started = time.monotonic()
                while done < args.requests:
                    answered, failed = round_of_requests(base, args.connections, args.stream)
                    done += answered
                    errors += failed
                    samples.append((done, rss_mib(process.pid)))
                    print(f"{done:>8} requests  {samples[-1][1]:7.1f} MiB resident")
                seconds = time.monotonic() - started
            finally:
                process.terminate()
                process.wait(30)
    finally:
        upstream.terminate()
    warm = next(mib for n, mib in samples if n >= args.requests // 10)
    end = samples[-1][1]
    summary = {
        "requests": samples[-1][0],
        "errors": errors,
        "seconds": round(seconds, 1),
        "start_mib": round(samples[0][1], 1),
        "after_warmup_mib": round(warm, 1),
        "end_mib": round(end, 1),
        "growth_after_warmup": round(end / warm - 1, 4),
        "peak_mib": round(max(mib for _, mib in samples), 1),
    }
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / f"soak-{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"args": vars(args), "summary": summary, "samples": samples}))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
