"""One instance, several worker processes (uvicorn --workers 2, ATP_METRICS_DIR): a scrape
of any worker counts the requests every worker served."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from tests.e2e.conftest import ROOT, free_port

pytestmark = pytest.mark.live

REQUESTS = 24


def _served(text: str) -> float:
    pattern = r'atp_requests_total\{endpoint="chat.completions",model="[^"]+",route="team/sim",status="success"\} ([0-9.]+)'
    return sum(float(v) for v in re.findall(pattern, text))


def test_a_scrape_counts_the_requests_of_every_worker(live, tmp_path):
    metrics_dir = tmp_path / "metrics"
    port = free_port()
    log_path = tmp_path / "workers.log"
    env = {**live.env, "ATP_METRICS_DIR": str(metrics_dir), "ATP_METRICS_WRITE_SECONDS": "0.2"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "atp_site.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2", "--lifespan", "on", "--no-access-log"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(list(metrics_dir.glob("*.json"))) < 2:  # both workers are up and writing
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        body = {"model": "team/sim", "messages": [{"role": "user", "content": "hello"}]}
        per_worker: Counter[str] = Counter()
        for _ in range(REQUESTS):
            # A connection per request, so the kernel spreads them over both workers.
            with httpx.Client(headers={"Authorization": f"Bearer {live.key}"}) as client:
                resp = client.post(f"{base}/v1/chat/completions", json=body, timeout=30)
            assert resp.status_code == 200, resp.text
            per_worker[resp.headers["x-request-id"][:20]] += 1  # the id's prefix is per process
        deadline = time.monotonic() + 15
        while True:
            text = httpx.get(f"{base}/metrics", timeout=10).text
            if _served(text) == REQUESTS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert _served(text) == REQUESTS, text
        assert "atp_request_duration_seconds_bucket" in text
        assert len(per_worker) == 2, f"one worker served every request: {per_worker}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
