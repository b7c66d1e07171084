"""A $1.00 budget under 200 concurrent requests across two gateway processes that share
PostgreSQL and Redis: the settled spend never passes the budget by more than one request's
maximum cost, and the ledger equals the request log to the cent."""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from decimal import Decimal

import httpx
import pytest

from apps.tenants.keys import generate_api_key
from tests.e2e.conftest import run_manage

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL")
        or not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs the shared counters of Redis and a PostgreSQL both processes write to",
    ),
]

# Prices high enough that a request's cost is visible: $1,000 / $2,000 per million tokens.
INPUT_PRICE, OUTPUT_PRICE = Decimal(1000), Decimal(2000)
MAX_TOKENS = 12
BUDGET = Decimal("1.00")

SETUP = """
from decimal import Decimal
from apps.costs import services as costs
from apps.providers.models import ModelDeployment, Provider
from apps.tenants import services as tenants
from atp_site.lib import config_version

provider = Provider.objects.create(name="sim-budget", kind="simulator", options={{"latency_ms": 40}})
ModelDeployment.objects.create(
    provider=provider, public_name="sim-metered", upstream_model="sim-metered",
    input_price=Decimal("{inp}"), output_price=Decimal("{out}"), capabilities=["chat"],
)
tenant = tenants.tenant_create(slug="metered", name="Metered")
tenants.api_key_create(tenant=tenant, name="metered", plaintext="{key}")
costs.budget_create(
    scope="tenant", tenant=tenant, name="one-dollar", period="total", limit_usd=Decimal("{budget}")
)
config_version.bump()
print(tenant.pk)
"""


def _wait_until_served(base_urls: list[str], key: str) -> None:
    """Both processes have picked up the new configuration (their snapshots poll it)."""
    deadline = time.monotonic() + 30
    for base in base_urls:
        while True:
            resp = httpx.get(
                f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5
            )
            if resp.status_code == 200 and "sim-metered" in resp.text:
                break
            assert time.monotonic() < deadline, resp.text
            time.sleep(0.2)


async def _burst(base_urls: list[str], key: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            return await client.post(
                f"{base_urls[i % len(base_urls)]}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "model": "sim-metered",
                    "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": f"Count to ten, please ({i})."}],
                },
            )

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_two_processes_never_overspend_a_shared_budget(live):
    key = generate_api_key()
    out = run_manage(
        live.env,
        "shell",
        "-c",
        textwrap.dedent(SETUP.format(inp=INPUT_PRICE, out=OUTPUT_PRICE, key=key, budget=BUDGET)),
    )
    tenant_id = out.stdout.strip().splitlines()[-1]
    second = live.start_server()
    live.extra_servers.append(second)
    bases = [live.base_url, second.base_url]
    _wait_until_served(bases, key)

    responses = asyncio.run(_burst(bases, key, 200))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert served and refused, "a $1 budget serves some of 200 requests and refuses the rest"
    for r in refused:
        error = r.json()["error"]
        assert error["code"] == "budget_exceeded", error
        assert r.headers["x-should-retry"] == "false"
    # Both processes answered from the one budget (which of them got the spend first
    # depends on scheduling).
    assert {r.url.port for r in responses} == {httpx.URL(b).port for b in bases}

    # Every answered request reaches the request log and the ledger (written behind).
    deadline = time.monotonic() + 30
    while True:
        (logged,) = live.db.query(
            "SELECT COUNT(*) FROM routing_requestlog WHERE tenant_id = %s", (tenant_id,)
        )
        (booked,) = live.db.query(
            "SELECT COUNT(*) FROM costs_usagerecord WHERE tenant_id = %s", (tenant_id,)
        )
        if (logged[0], booked[0]) == (200, len(served)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert logged[0] == 200 and booked[0] == len(served)

    ((log_total,),) = live.db.query(
        "SELECT SUM(cost_usd) FROM routing_requestlog WHERE tenant_id = %s", (tenant_id,)
    )
    ((ledger_total,),) = live.db.query(
        "SELECT SUM(cost_usd) FROM costs_usagerecord WHERE tenant_id = %s", (tenant_id,)
    )
    assert Decimal(ledger_total) == Decimal(log_total)
    header_total = sum(Decimal(r.headers["x-atp-cost-usd"]) for r in served)
    assert header_total == Decimal(ledger_total)

    # A request's maximum cost: its prompt (as counted) plus MAX_TOKENS of output.
    prompt = max(r.json()["usage"]["prompt_tokens"] for r in served)
    one_request_max = (prompt * INPUT_PRICE + MAX_TOKENS * OUTPUT_PRICE) / 1_000_000
    assert Decimal(ledger_total) <= BUDGET + one_request_max
    # Reservations were at the maximum, so the budget is used well but never overrun.
    assert Decimal(ledger_total) > BUDGET / 2
