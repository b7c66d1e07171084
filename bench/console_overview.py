"""Server time of the overview and its figures endpoint with a busy hour in the store.

Seeds the live store (Redis with REDIS_URL, else memory) as PROCESSES gateway processes
would leave it after an hour of traffic spread over many routes, models and tenants, then
times GET / and GET /overview/figures/ for a superuser through Django's test client
(the figures' one-second cache is cleared before each call, so every call reads the
store; the sum of closed minutes, recomputed once a minute, is kept as in production).

    DATABASE_URL=... REDIS_URL=... python bench/console_overview.py --calls 50

Needs a migrated database (python manage.py migrate).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")


def seed(store, processes: int, routes: int, models: int, tenants: list[str], rng) -> None:
    from atp_site.console.live import samples
    from atp_site.console.live.store import MINUTE, SECOND

    now = int(time.time())
    this_minute = now - now % MINUTE

    def sample(requests: int) -> dict:
        out: dict = {}
        for _ in range(requests):
            samples.add_row(
                out,
                {
                    "status": "error" if rng.random() < 0.02 else "success",
                    "input_tokens": rng.randint(10, 2000),
                    "output_tokens": rng.randint(10, 800),
                    "cost_usd": rng.random() / 1000,
                    "cache": rng.choice(("miss", "hit", "")),
                    "latency_ms": rng.lognormvariate(5.5, 0.8),
                    "ttft_ms": rng.lognormvariate(4.5, 0.6),
                    "route": f"route-{rng.randrange(routes)}",
                    "model": f"model-{rng.randrange(models)}",
                    "tenant_id": rng.choice(tenants),
                },
            )
        return out

    for p in range(processes):
        buckets = {(SECOND, s): sample(20) for s in range(now - 70, now)}
        buckets |= {(MINUTE, this_minute - MINUTE * i): sample(400) for i in range(60)}
        store.publish(f"bench-{p}", buckets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.tenants.models import Tenant
    from atp_site.console.live import figures
    from atp_site.console.live.store import get_store

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    rng = random.Random(7)
    tenants = [str(pk) for pk in Tenant.objects.values_list("pk", flat=True)[: args.tenants]]
    tenants += [
        str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(args.tenants - len(tenants))
    ]
    store = get_store()
    seed(store, args.processes, args.routes, args.models, tenants, rng)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-overview", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)
    print(
        f"store: {type(store).__name__}; {args.processes} processes, {args.routes} routes, "
        f"{args.models} models, {args.tenants} tenants; {args.calls} calls each"
    )
    for path in ("/", "/overview/figures/"):
        client.get(path)  # warm
        took = []
        for _ in range(args.calls):
            figures.clear_cache(closed=False)
            started = time.perf_counter()
            response = client.get(path)
            took.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        took.sort()
        p95 = took[max(0, int(len(took) * 0.95) - 1)]
        print(f"GET {path:<20} p50 {statistics.median(took):7.1f} ms   p95 {p95:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
