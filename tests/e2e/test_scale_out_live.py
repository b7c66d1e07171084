"""Two gateway processes on one PostgreSQL and one Redis act as one gateway: a key revoked
through one is refused by the other within the snapshot check interval plus a second, an
answer cached by one is a hit on the other, one rate limit counts the requests of both,
and one scrape of either shows the requests of both (ATP_METRICS_DIR). Budgets and circuit
breakers shared across processes have their own tests (test_budget_live.py,
test_resilience_live.py)."""

from __future__ import annotations

import os
import re
import textwrap
import time
import uuid

import httpx
import pytest

from apps.tenants.keys import generate_api_key
from tests.e2e.conftest import run_manage

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL")
        or not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="two processes act as one through a shared PostgreSQL and Redis",
    ),
]

CHECK_SECONDS = 0.5
RPM = 4

SETUP = """
from apps.costs import services as costs
from apps.tenants import services as tenants
from atp_site.lib import config_version

tenant = tenants.tenant_create(slug="scale-{tag}", name="Scale out")
limited, _ = tenants.api_key_create(tenant=tenant, name="limited", plaintext="{limited}")
tenants.api_key_create(tenant=tenant, name="revoked", plaintext="{revoked}")
tenants.api_key_create(tenant=tenant, name="plain", plaintext="{plain}")
costs.rate_limit_create(scope="key", tenant=tenant, api_key=limited, requests_per_minute={rpm})
config_version.bump()
"""

REVOKE = """
from apps.tenants.models import ApiKey
from apps.tenants import services as tenants
tenants.api_key_revoke(api_key=ApiKey.objects.get(name="revoked", tenant__slug="scale-{tag}"))
"""


def _chat(base: str, key: str, content: str, **extra) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "team/sim", "messages": [{"role": "user", "content": content}], **extra},
        timeout=30,
    )


def _served(text: str) -> float:
    pattern = r'atp_requests_total\{endpoint="chat.completions",model="[^"]+",route="team/sim",status="success"\} ([0-9.]+)'
    return sum(float(v) for v in re.findall(pattern, text))


def test_two_processes_act_as_one_gateway(live, tmp_path):
    tag = uuid.uuid4().hex[:8]
    keys = {name: generate_api_key() for name in ("limited", "revoked", "plain")}
    run_manage(live.env, "shell", "-c", textwrap.dedent(SETUP.format(tag=tag, rpm=RPM, **keys)))
    shared = {
        "ATP_METRICS_DIR": str(tmp_path / "metrics"),
        "ATP_METRICS_WRITE_SECONDS": "0.2",
        "ATP_SNAPSHOT_CHECK_SECONDS": str(CHECK_SECONDS),
        # A Redis prefix of their own: the limit's counters and the cache start empty.
        "ATP_REDIS_PREFIX": f"atp-scale-{tag}",
    }
    first = live.start_server(**shared)
    second = live.start_server(**shared)
    live.extra_servers += [first, second]
    a, b = first.base_url, second.base_url

    # Both have the new keys.
    for base in (a, b):
        deadline = time.monotonic() + 30
        while _chat(base, keys["plain"], "warm up").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)

    # A deterministic answer cached by one is a hit on the other.
    question = f"What is the capital of France? ({tag})"
    miss = _chat(a, keys["plain"], question, temperature=0)
    assert miss.status_code == 200 and miss.headers["x-atp-cache"] == "miss", miss.headers
    deadline = time.monotonic() + 10
    while True:  # the answer is stored behind the response
        hit = _chat(b, keys["plain"], question, temperature=0)
        if hit.headers.get("x-atp-cache") == "hit" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert hit.status_code == 200 and hit.headers["x-atp-cache"] == "hit", hit.headers
    assert hit.json()["choices"] == miss.json()["choices"]

    # One limit of 4 requests a minute counts the requests of both processes.
    statuses = [
        _chat((a, b)[i % 2], keys["limited"], f"limited {i}").status_code for i in range(RPM)
    ]
    assert statuses == [200] * RPM
    refused = [_chat(base, keys["limited"], "one more") for base in (a, b)]
    for resp in refused:
        assert resp.status_code == 429, resp.text
        assert resp.headers["x-ratelimit-limit-requests"] == str(RPM)
        assert resp.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(resp.headers["retry-after"]) >= 1

    # A key revoked in the database is refused by both within the check interval + 1 s.
    assert _chat(b, keys["revoked"], "before").status_code == 200
    run_manage({**live.env, **shared}, "shell", "-c", textwrap.dedent(REVOKE.format(tag=tag)))
    revoked_at = time.monotonic()
    for base in (b, a):
        while _chat(base, keys["revoked"], "after").status_code != 401:
            assert time.monotonic() - revoked_at < 10, "the revoked key was still accepted"
            time.sleep(0.05)
    assert time.monotonic() - revoked_at <= CHECK_SECONDS + 1 + 2  # + the shell's start-up

    # One scrape of either process counts the requests both served.
    total = 2 + 2 + RPM + 1  # warm-ups, cache miss and hit, limited, the revoked key's first
    for base in (a, b):
        deadline = time.monotonic() + 10
        while True:
            text = httpx.get(f"{base}/metrics", timeout=10).text
            if _served(text) >= total or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert _served(text) >= total, text
    assert len(list((tmp_path / "metrics").glob("*.json"))) == 2
