"""Redis goes away while traffic flows, then comes back (a private redis-server on a free
port): rate limits fail open and budgets fail closed as configured, the response cache is
bypassed, and when Redis returns everything recovers by itself. No accepted request's
record is lost."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import threading
import time
import uuid

import httpx
import pytest

from apps.tenants.keys import generate_api_key
from tests.e2e.conftest import free_port, redis_answers, run_manage

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

SETUP = """
from decimal import Decimal
from apps.costs import services as costs
from apps.tenants import services as tenants
from atp_site.lib import config_version

tenant = tenants.tenant_create(slug="outage-{tag}", name="Redis outage")
limited, _ = tenants.api_key_create(tenant=tenant, name="limited", plaintext="{limited}")
budgeted, _ = tenants.api_key_create(tenant=tenant, name="budgeted", plaintext="{budgeted}")
costs.rate_limit_create(scope="key", tenant=tenant, api_key=limited, requests_per_minute=100000)
costs.budget_create(
    scope="key", tenant=tenant, api_key=budgeted, name="ample", period="total",
    limit_usd=Decimal("1000"),
)
config_version.bump()
"""


def _redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not redis_answers(port):
        assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _chat(client: httpx.Client, base: str, key: str, content: str, **extra) -> httpx.Response:
    return client.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "team/sim", "messages": [{"role": "user", "content": content}], **extra},
        timeout=30,
    )


def test_traffic_survives_redis_going_away_and_coming_back(live):
    tag = uuid.uuid4().hex[:8]
    keys = {"limited": generate_api_key(), "budgeted": generate_api_key()}
    port = free_port()
    redis_process = _redis(port)
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "ATP_REDIS_PREFIX": f"atp-outage-{tag}",
        "ATP_RATE_LIMITS_ON_REDIS_ERROR": "open",
        "ATP_BUDGETS_ON_REDIS_ERROR": "closed",
        "ATP_CELERY_EAGER": "true",
        "ATP_LOCAL_BEAT": "false",
    }
    server = None
    try:
        run_manage(
            {**live.env, **env}, "shell", "-c", textwrap.dedent(SETUP.format(tag=tag, **keys))
        )
        server = live.start_server(**env)
        live.extra_servers.append(server)
        base = server.base_url
        accepted: list[str] = []
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            """Requests keep coming throughout, on the limited key."""
            with httpx.Client() as client:
                i = 0
                while not stop.is_set():
                    resp = _chat(client, base, keys["limited"], f"background {i}")
                    statuses.append(resp.status_code)
                    if resp.status_code == 200:
                        accepted.append(resp.headers["x-request-id"])
                    i += 1

        background = threading.Thread(target=traffic)
        background.start()
        with httpx.Client() as client:
            question = f"Name a prime number ({tag})"
            assert _chat(client, base, keys["budgeted"], "before").status_code == 200
            first = _chat(client, base, keys["limited"], question, temperature=0)
            assert first.headers["x-atp-cache"] == "miss"
            deadline = time.monotonic() + 10
            while (
                _chat(client, base, keys["limited"], question, temperature=0).headers["x-atp-cache"]
                != "hit"
            ):
                assert time.monotonic() < deadline, "the answer was never cached"
                time.sleep(0.1)

            _stop(redis_process)  # Redis goes away under traffic
            time.sleep(1.0)
            during = [_chat(client, base, keys["limited"], f"during {i}") for i in range(5)]
            for resp in during:  # rate limits fail open
                assert resp.status_code == 200, resp.text
                accepted.append(resp.headers["x-request-id"])
            cached = _chat(client, base, keys["limited"], question, temperature=0)
            assert cached.status_code == 200 and cached.headers["x-atp-cache"] != "hit"
            accepted.append(cached.headers["x-request-id"])
            refused = _chat(client, base, keys["budgeted"], "during")  # budgets fail closed
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "limits_unavailable"
            assert refused.headers["retry-after"] == "1"
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 503

            redis_process = _redis(port)  # Redis returns, empty
            deadline = time.monotonic() + 20
            while True:
                back = _chat(client, base, keys["budgeted"], "after")
                if back.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert back.status_code == 200, back.text
            accepted.append(back.headers["x-request-id"])
            deadline = time.monotonic() + 20
            while (ready := httpx.get(f"{base}/readyz", timeout=10)).status_code != 200:
                assert time.monotonic() < deadline, f"never ready again: {ready.text}"
                time.sleep(0.2)
        stop.set()
        background.join(60)
        assert statuses and set(statuses) == {200}, sorted(set(statuses))

        # Every accepted request has its record (written behind, so wait for it).
        rows = live.log_rows(accepted, timeout=30)
        missing = set(accepted) - set(rows)
        assert not missing, f"{len(missing)} of {len(accepted)} accepted requests have no record"
    finally:
        if server is not None:
            server.stop()
        _stop(redis_process)
