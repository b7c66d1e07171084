"""Provider faults under load: does one bad provider slow the gateway's other routes?

    .venv/bin/python bench/faults_under_load.py [--runs 3] [--seconds 10] [--faulty 300]

One ATP process (embedded SQLite, the machine's two cores shared with this script) serves
two kinds of traffic:

- the healthy route: `good`, a provider answering at once, called by 16 clients in a loop
  (non-streamed), whose latency is what the benchmark reports;
- the faulty providers, called by `--faulty` concurrent clients (300 by default), each
  sending at most one request a second (the next once its previous one ended), each
  provider failing in its own way:
  - `hang`: accepts the request and never answers;
  - `trickle`: streams one small event every half second, forever;
  - `reset`: streams two events, then resets the connection;
  - `garbage`: answers 200 with a body that is not JSON (streamed: events that are not);
  - `flood`: streams 20,000 events as fast as it can, whatever the request's max_tokens
    (256 here), which ATP cuts off at twice that plus 64;
  - and, as a control rather than a fault, `long`: a healthy provider's 512-chunk answer.

Each run measures the healthy route alone for `--seconds`, then again while the faulty
clients run, and reports requests per second, p50 and p99 of both phases and their ratio,
with the faulty requests' outcomes (status codes, time to the answer or error). The hard
case leads: circuit breakers off (`ATP_BREAKER_ENABLED=false`), so every faulty request
reaches its provider and waits out its timeouts (connect 2 s, first byte 2 s, total 5 s);
`--breakers` measures the default configuration, where open circuits answer at once.

Results are printed and written to bench/results/faults-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
KEY = "atp_bench-faults-key-5Lq9Xw2Vb7Nm4Tz8Rk3s"
MODES = ("hang", "trickle", "reset", "garbage", "flood")
# Not a fault: a healthy provider streaming a long answer (512 chunks), the control that
# shows what the flood's cut-off leaves it costing (`--modes long`).
CONTROLS = ("long",)
STREAMED = {
    "trickle": True, "reset": True, "flood": True, "hang": False, "garbage": False, "long": True,
}  # fmt: skip
GOOD_CLIENTS = 16
PACE_SECONDS = 1.0


# --- the upstreams ---------------------------------------------------------------------


def _completion(model: str) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris is the capital of France."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }


def _event(i: int) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


FLOOD = b"".join(_event(i) for i in range(20_000)) + b"data: [DONE]\n\n"


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    return response


async def upstream(request: web.Request) -> web.StreamResponse:
    mode = request.match_info["mode"]
    body = await request.json()
    stream = bool(body.get("stream"))
    if mode == "good":
        if not stream:
            return web.json_response(_completion(body["model"]))
        response = await _sse(request)
        for i in range(5):
            await response.write(_event(i))
        await response.write(b"data: [DONE]\n\n")
        return response
    if mode == "hang":
        await asyncio.sleep(3600)
    if mode == "garbage":
        if not stream:
            return web.Response(body=b"\x00<html>not json{{", content_type="application/json")
        response = await _sse(request)
        for _ in range(3):
            await response.write(b"data: {not json at all\n\n")
        return response
    response = await _sse(request)
    if mode == "trickle":
        for i in range(600):
            await response.write(_event(i))
            await asyncio.sleep(0.5)
    elif mode == "reset":
        await response.write(_event(0))
        await response.write(_event(1))
        request.transport.abort()
    elif mode == "long":
        for i in range(0, 512, 64):
            await response.write(b"".join(_event(j) for j in range(i, i + 64)))
        await response.write(b"data: [DONE]\n\n")
    elif mode == "flood":
        await response.write(FLOOD)  # made once: the upstream's own cost stays small
    return response


def _serve_upstream(port: int) -> None:
    """The upstreams, in a process of their own (so their work is not the load's)."""
    import uvloop

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - clients hanging up mid-answer

    app = web.Application()
    app.router.add_post("/{mode}/v1/chat/completions", upstream)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


def start_upstream() -> tuple[multiprocessing.Process, int]:
    port = _free_port()
    process = multiprocessing.Process(target=_serve_upstream, args=(port,), daemon=True)
    process.start()
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- the gateway -----------------------------------------------------------------------


def _config(upstream_port: int) -> str:
    lines = ["version: 1", "providers:"]
    for mode in ("good", *MODES, *CONTROLS):
        lines += [
            f"  - name: {mode}",
            "    kind: openai_compatible",
            f"    base_url: http://127.0.0.1:{upstream_port}/{mode}/v1",
            "    api_key: sk-bench-upstream",
            "    timeouts: {connect: 2, first_byte: 2, total: 5}",
            "    models:",
            f"      - name: {mode}",
            "        upstream: gpt-4o-mini",
            "        prices: {input: 0.15, output: 0.60}",
            "        capabilities: [chat, streaming]",
        ]
    lines += [
        "tenants:",
        "  - slug: bench",
        "    name: Benchmark",
        "    api_keys:",
        "      - name: bench",
        "        key: env:BENCH_ATP_KEY",
    ]
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gateway(
    work: Path, upstream_port: int, *, breakers: bool
) -> tuple[subprocess.Popen, str]:
    env = {"ATP_BREAKER_ENABLED": "true" if breakers else "false"}
    return serve_gateway(work, _config(upstream_port), env)


def serve_gateway(
    work: Path, config_text: str, extra_env: dict[str, str], *, cpu: str | None = None
) -> tuple[subprocess.Popen, str]:
    """An embedded ATP in `work` configured by `config_text` (its key: KEY), serving on a
    free port (pinned to CPU `cpu` when given); returns the process and its base URL."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "ATP_DATA_DIR": str(work),
        "ATP_LOCAL_BEAT": "false",
        "ATP_RETRY_MAX_ATTEMPTS": "1",
        "BENCH_ATP_KEY": KEY,
        "DJANGO_SETTINGS_MODULE": "atp_site.settings",
        **extra_env,
    }
    config = work / "atp.yaml"
    config.write_text(config_text)
    python = sys.executable
    for args in (["migrate", "--noinput"], ["atp_apply", str(config)]):
        subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    port = _free_port()
    log = open(work / "gateway.log", "w")  # noqa: SIM115 - the process owns it
    pin = ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []
    process = subprocess.Popen(
        [*pin, python, "-m", "uvicorn", "atp_site.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
         "--no-access-log"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / "gateway.log").read_text()) from None
            time.sleep(0.2)
    return process, base


# --- the load --------------------------------------------------------------------------


async def _good_client(session, base: str, until: float, latencies: list[float], errors: Counter):
    body = {"model": "good", "messages": [{"role": "user", "content": "Capital of France?"}]}
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            async with session.post(f"{base}/v1/chat/completions", json=body) as resp:
                await resp.read()
                if resp.status != 200:
                    errors[resp.status] += 1
                    continue
        except aiohttp.ClientError as exc:
            errors[type(exc).__name__] += 1
            continue
        latencies.append(time.monotonic() - started)


async def _faulty_client(session, base: str, mode: str, stop: asyncio.Event, outcomes: list):
    stream = STREAMED[mode]
    body = {
        "model": mode,
        "stream": stream,
        "max_tokens": 256,  # as callers set it; the flood sends 20,000 chunks regardless
        "messages": [{"role": "user", "content": "hi"}],
    }
    timeout = aiohttp.ClientTimeout(total=30)
    while not stop.is_set():
        started = time.monotonic()
        try:
            async with session.post(
                f"{base}/v1/chat/completions", json=body, timeout=timeout
            ) as resp:
                await resp.read()
                outcomes.append((mode, resp.status, time.monotonic() - started))
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcomes.append((mode, type(exc).__name__, time.monotonic() - started))
        # At most one request a second per client: faults arrive at a bounded rate (a
        # client retrying at once would measure a request flood, not a provider fault).
        await asyncio.sleep(max(0.0, PACE_SECONDS - (time.monotonic() - started)))


def _faulty_load(base: str, faulty: int, modes: tuple[str, ...], seconds: float, results) -> None:
    import uvloop

    async def load() -> list:
        stop = asyncio.Event()
        outcomes: list = []
        headers = {"Authorization": f"Bearer {KEY}"}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            tasks = [
                asyncio.ensure_future(
                    _faulty_client(session, base, modes[i % len(modes)], stop, outcomes)
                )
                for i in range(faulty)
            ]
            await asyncio.sleep(seconds)
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return outcomes

    results.put(uvloop.run(load()))


def _summary(latencies: list[float], seconds: float) -> dict:
    if not latencies:
        return {"requests": 0}
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "rps": round(len(ordered) / seconds, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


async def measure(base: str, seconds: float, faulty: int, modes: tuple[str, ...]) -> dict:
    headers = {"Authorization": f"Bearer {KEY}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        # Warm up: every route once (the faulty ones fail).
        await _good_client(session, base, time.monotonic() + 1.0, [], Counter())
        alone: list[float] = []
        errors_alone: Counter = Counter()
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_good_client(session, base, until, alone, errors_alone) for _ in range(GOOD_CLIENTS))
        )
        # The faulty clients run in a process of their own for the whole phase.
        results = multiprocessing.Queue()
        bad = multiprocessing.Process(
            target=_faulty_load, args=(base, faulty, modes, seconds + 2.0, results), daemon=True
        )
        bad.start()
        await asyncio.sleep(2.0)  # the faulty clients are all in flight
        under: list[float] = []
        errors_under: Counter = Counter()
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_good_client(session, base, until, under, errors_under) for _ in range(GOOD_CLIENTS))
        )
        outcomes = await asyncio.to_thread(results.get, True, 120)
        await asyncio.to_thread(bad.join, 30)
    by_mode: dict[str, dict] = {}
    for mode in modes:
        mine = [(status, took) for m, status, took in outcomes if m == mode]
        by_mode[mode] = {
            "answers": len(mine),
            "statuses": dict(Counter(str(s) for s, _ in mine)),
            "median_s": round(statistics.median(t for _, t in mine), 3) if mine else None,
        }
    return {
        "alone": _summary(alone, seconds) | {"errors": dict(errors_alone)},
        "under_faults": _summary(under, seconds) | {"errors": dict(errors_under)},
        "faulty": by_mode,
    }


async def run_once(seconds: float, faulty: int, breakers: bool, modes: tuple[str, ...]) -> dict:
    upstream_process, upstream_port = start_upstream()
    with tempfile.TemporaryDirectory(prefix="atp-faults-") as tmp:
        process, base = await asyncio.to_thread(
            start_gateway, Path(tmp), upstream_port, breakers=breakers
        )
        try:
            return await measure(base, seconds, faulty, modes)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            upstream_process.terminate()
            upstream_process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--faulty", type=int, default=300, help="concurrent faulty clients")
    parser.add_argument("--breakers", action="store_true", help="keep circuit breakers on")
    parser.add_argument("--modes", default=",".join(MODES), help="faults to inject")
    args = parser.parse_args()
    modes = tuple(m for m in args.modes.split(",") if m)
    if not modes or set(modes) - set(MODES) - set(CONTROLS):
        parser.error(f"--modes: choose among {', '.join(MODES + CONTROLS)}")
    runs = []
    for i in range(args.runs):
        result = asyncio.run(run_once(args.seconds, args.faulty, args.breakers, modes))
        runs.append(result)
        alone, under = result["alone"], result["under_faults"]
        print(
            f"run {i + 1}: alone {alone.get('rps')} req/s p50 {alone.get('p50_ms')} ms "
            f"p99 {alone.get('p99_ms')} ms | under {args.faulty} faulty clients "
            f"{under.get('rps')} req/s p50 {under.get('p50_ms')} ms p99 {under.get('p99_ms')} ms"
        )
        for mode, seen in result["faulty"].items():
            print(
                f"    {mode:8} {seen['answers']:6} answers {seen['statuses']} median {seen['median_s']} s"
            )
    ratios = {
        name: [r["under_faults"][name] / r["alone"][name] for r in runs if r["alone"].get(name)]
        for name in ("rps", "p50_ms", "p99_ms")
    }
    summary = {
        name: {
            "min": round(min(v), 2),
            "median": round(statistics.median(v), 2),
            "max": round(max(v), 2),
        }
        for name, v in ratios.items()
        if v
    }
    print("under faults / alone (min, median, max over runs):")
    for name, spread in summary.items():
        print(f"  {name:7} {spread['min']}  {spread['median']}  {spread['max']}")
    out = ROOT / "bench" / "results" / f"faults-{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {"args": vars(args), "runs": runs, "ratios": summary, "good_clients": GOOD_CLIENTS},
            indent=2,
        )
    )
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
