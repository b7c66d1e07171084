"""Overload: offered more than one gateway process can serve, what happens to what it
admits?

    .venv/bin/python bench/overload.py [--runs 3] [--seconds 15] [--factor 1.5]

One embedded ATP process pinned to CPU 0 in front of a fake OpenAI upstream that answers
after 300 ms (bench/upstream.mjs, on CPU 1 with this script). Each run:

1. measures the process's capacity with overload control off: answered requests per
   second with 1,024 connections in a closed loop (wrk) for `--seconds`;
2. offers an open-loop constant rate of `--factor` times that capacity for `--seconds`
   (each request sent at its scheduled time whatever the answers before it: callers do
   not slow down because a gateway is overloaded), and reports the admitted requests' p50
   and p99 (from the time each was due), the share refused (503 `overloaded`, 429
   `tier_share_exhausted`) and any other outcome;
3. does the same with overload control off (`ATP_OVERLOAD_MAX_IN_FLIGHT=0`), where the
   process queues everything.

Targets (issue 14): admitted p99 under 1 s and under 3x p50. Results are printed and
written to bench/results/overload-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faults_under_load import KEY, ROOT, serve_gateway  # noqa: E402

UPSTREAM_DELAY_MS = 300
CLOSED_LOOP_CLIENTS = 1024
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "Hello"}]}


def start_upstream(delay_ms: int = UPSTREAM_DELAY_MS) -> tuple[subprocess.Popen, int]:
    """bench/upstream.mjs on CPU 1, answering after `delay_ms`; its process and port."""
    pin = ["taskset", "-c", "1"] if os.path.exists("/usr/bin/taskset") else []
    process = subprocess.Popen(
        [*pin, "node", str(ROOT / "bench" / "upstream.mjs"), "--port", "0",
         "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        process.kill()
        raise RuntimeError(f"the upstream did not start: {line}")
    return process, int(line[1])


def _config(upstream_port: int) -> str:
    text = (ROOT / "bench" / "atp.yaml").read_text()
    text = text.replace("http://127.0.0.1:9/v1", f"http://127.0.0.1:{upstream_port}/v1")
    return text.replace("env:BENCH_UPSTREAM_API_KEY", "sk-bench-upstream")


def capacity(base: str, seconds: float) -> float:
    """Answered requests per second with 1,024 connections in a closed loop (wrk on CPU 1,
    overload control off: the process's own limit)."""
    pin = ["taskset", "-c", "1"] if os.path.exists("/usr/bin/taskset") else []
    result = subprocess.run(
        [*pin, "wrk", "-t", "1", "-c", str(CLOSED_LOOP_CLIENTS), "-d", str(int(seconds) + 5),
         "--timeout", "10s", "-s", str(ROOT / "bench" / "post.lua"),
         f"{base}/v1/chat/completions", "--", str(int(seconds)),
         f"authorization=Bearer%20{KEY}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            return (data["in_window"] - data["non2xx"]) / int(seconds)
    raise RuntimeError(f"wrk printed no result: {result.stdout[-500:]}")


async def open_loop(base: str, rate: float, seconds: float) -> dict:
    """Send `rate` requests a second on schedule; outcomes and latencies from when due."""
    latencies: list[float] = []
    outcomes: Counter = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {KEY}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def one(due: float) -> None:
            try:
                async with session.post(f"{base}/v1/chat/completions", json=BODY) as resp:
                    await resp.read()
                    outcomes[str(resp.status)] += 1
                    if resp.status == 200:
                        latencies.append(time.monotonic() - due)
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcomes[type(exc).__name__] += 1

        tasks = []
        start = time.monotonic() + 0.1
        total = int(rate * seconds)
        behind = 0.0  # how late this generator itself sent a request, at worst
        for i in range(total):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            tasks.append(asyncio.ensure_future(one(due)))
        await asyncio.gather(*tasks)
    latencies.sort()
    n = len(latencies)
    sent = sum(outcomes.values())
    refused = outcomes.get("503", 0) + outcomes.get("429", 0)
    return {
        "offered_rps": round(rate, 1),
        "generator_behind_ms": round(behind * 1000, 1),
        "sent": sent,
        "outcomes": dict(outcomes),
        "refused_share": round(refused / sent, 3) if sent else None,
        "admitted_rps": round(n / seconds, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 1) if n else None,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 1) if n else None,
    }


async def run_once(seconds: float, factor: float, upstream_port: int) -> dict:
    out: dict = {}
    off = {"ATP_OVERLOAD_MAX_IN_FLIGHT": "0"}
    for name, env in (("control_off", off), ("control_on", {})):
        with tempfile.TemporaryDirectory(prefix="atp-overload-") as tmp:
            process, base = await asyncio.to_thread(
                serve_gateway, Path(tmp), _config(upstream_port), env, cpu="0"
            )
            try:
                if name == "control_off":
                    out["capacity_rps"] = round(await asyncio.to_thread(capacity, base, seconds), 1)
                rate = factor * out["capacity_rps"]
                out[name] = await open_loop(base, rate, seconds)
            finally:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--factor", type=float, default=1.5)
    args = parser.parse_args()
    upstream, upstream_port = start_upstream()
    runs = []
    try:
        for i in range(args.runs):
            result = asyncio.run(run_once(args.seconds, args.factor, upstream_port))
            runs.append(result)
            print(f"run {i + 1}: capacity {result['capacity_rps']} req/s")
            for name in ("control_on", "control_off"):
                r = result[name]
                print(
                    f"    {name:11} offered {r['offered_rps']} req/s, admitted "
                    f"{r['admitted_rps']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                    f"refused {r['refused_share']}, {r['outcomes']}, "
                    f"generator behind by up to {r['generator_behind_ms']} ms"
                )
    finally:
        upstream.terminate()
    on = [r["control_on"] for r in runs if r["control_on"]["p50_ms"]]
    if on:
        p99 = [r["p99_ms"] for r in on]
        ratio = [r["p99_ms"] / r["p50_ms"] for r in on]
        print(
            f"admitted p99 (ms) min/median/max: {min(p99)} / {statistics.median(p99)} / "
            f"{max(p99)}; p99/p50: {min(ratio):.2f} / {statistics.median(ratio):.2f} / "
            f"{max(ratio):.2f}"
        )
    out = ROOT / "bench" / "results" / f"overload-{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
