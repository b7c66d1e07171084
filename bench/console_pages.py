"""Console pages over a million request logs: p50/p95 server time of the request list and
detail on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atp_bench_console \\
        ATP_DATA_DIR=$(mktemp -d) .venv/bin/python bench/console_pages.py --rows 1000000

Creates the database named by DATABASE_URL afresh (dropping one of that name), migrates
it, makes five tenants, ten keys, six models and two routes through the services, then
seeds the request log with one INSERT ... SELECT over generate_series (a few tens of
seconds for a million rows) and ANALYZEs it. Each page is then requested through Django's
test client in this process (the whole view stack: middleware, permissions, filters,
query, template), warm-up requests first, then --runs timed requests, and the median and
95th percentile are printed per page. With --explain it prints the plan of each list
query, to check that every filter with the newest-first sort keeps to an index.
Pass --keep to reuse a seeded database (no drop, no seed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-3-5-sonnet", "gemini-flash", "llama")
ROUTES = ("auto", "team/coding", "")


def _recreate_database() -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _setup() -> dict:
    from django.contrib.auth import get_user_model
    from guardian.shortcuts import assign_perm

    from apps.providers.models import Provider
    from apps.providers.services import deployment_create, provider_create
    from apps.routing.route_services import route_create
    from apps.tenants.permissions import VIEW_TENANT
    from apps.tenants.services import api_key_create, tenant_create

    tenants = [tenant_create(slug=f"tenant-{i}", name=f"Tenant {i}") for i in range(5)]
    keys = [api_key_create(tenant=tenants[i % 5], name=f"key-{i}")[0] for i in range(10)]
    provider = provider_create(
        name="bench", kind=Provider.Kind.OPENAI_COMPATIBLE, base_url="http://127.0.0.1:9/v1"
    )
    deployments = [
        deployment_create(
            provider=provider, public_name=m, upstream_model=m, input_price=1, output_price=2
        )
        for m in MODELS
    ]
    route_create(name="team/coding", candidates=list(MODELS[:3]))
    users = get_user_model().objects
    admin = users.create_superuser("bench-admin")
    member = users.create_user("bench-member")
    assign_perm(VIEW_TENANT, member, tenants[0])
    return {
        "tenants": tenants,
        "keys": keys,
        "provider": provider,
        "deployments": deployments,
        "admin": admin,
        "member": member,
    }


def _seed(world: dict, rows: int) -> float:
    from django.db import connection

    tenants = [str(t.pk) for t in world["tenants"]]
    keys = [str(k.pk) for k in world["keys"]]
    deps = [str(d.pk) for d in world["deployments"]]
    decision = (
        '{"route": "auto", "strategy": "learned", "tier": "balanced", "model": "gpt-4o-mini",'
        ' "confidence": 0.71, "reasoning": ["task cluster 3 (code), similarity 0.62",'
        ' "gpt-4o-mini has the best learnt utility"], "ranking": [{"model": "gpt-4o-mini",'
        ' "provider": "bench", "score": 0.81, "rank": 1, "chosen": true, "confidence": 0.71,'
        ' "estimated_cost_usd": 0.0002, "estimated_latency_ms": 310.0}, {"model": "gpt-4o",'
        ' "provider": "bench", "score": 0.64, "rank": 2, "chosen": false, "confidence": 0.29,'
        ' "estimated_cost_usd": 0.002, "estimated_latency_ms": 620.0}]}'
    )
    sql = """
        INSERT INTO routing_requestlog (
            request_id, created_at, completed_at, endpoint, tenant_id, api_key_id, end_user,
            requested_model, model, upstream_model, deployment_id, provider_id, stream, status,
            http_status, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
            reasoning_tokens, usage_estimated, cost_usd, latency_ms, ttft_ms, error_type,
            error_message, route, decision, task_cluster, cache, shadow_of)
        SELECT
            'req-' || g,
            now() - make_interval(secs => g * 2.5),
            now() - make_interval(secs => g * 2.5) + interval '400 milliseconds',
            'chat.completions',
            (%(tenants)s::uuid[])[1 + g %% 5],
            (%(keys)s::uuid[])[1 + g %% 10],
            'user-' || (g %% 5000),
            CASE WHEN g %% 3 = 0 THEN 'auto' ELSE (%(models)s::text[])[1 + g %% 6] END,
            (%(models)s::text[])[1 + g %% 6],
            (%(models)s::text[])[1 + g %% 6],
            (%(deps)s::uuid[])[1 + g %% 6],
            %(provider)s::uuid,
            g %% 2 = 0,
            CASE WHEN g %% 50 = 0 THEN 'error' WHEN g %% 401 = 0 THEN 'cancelled'
                 ELSE 'success' END,
            CASE WHEN g %% 50 = 0 THEN 502 ELSE 200 END,
            (g * 7919) %% 4000, (g * 104729) %% 1200, 0, 0, 0, false,
            ((g * 7919) %% 100000) / 1000000.0,
            50 + (g * 31) %% 3000,
            CASE WHEN g %% 2 = 0 THEN 20 + (g * 17) %% 400 END,
            CASE WHEN g %% 50 = 0 THEN 'upstream_error' ELSE '' END,
            CASE WHEN g %% 50 = 0 THEN 'Upstream answered 502.' ELSE '' END,
            (%(routes)s::text[])[1 + g %% 3],
            CASE WHEN g %% 3 <> 2 THEN %(decision)s::jsonb END,
            CASE WHEN g %% 3 <> 2 THEN g %% 12 END,
            CASE WHEN g %% 10 = 0 THEN 'hit' ELSE 'miss' END,
            ''
        FROM generate_series(1::bigint, %(rows)s::bigint) AS g
    """
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "tenants": tenants,
                "keys": keys,
                "models": list(MODELS),
                "deps": deps,
                "provider": str(world["provider"].pk),
                "routes": list(ROUTES),
                "decision": decision,
                "rows": rows,
            },
        )
        cursor.execute("ANALYZE routing_requestlog")
    return time.perf_counter() - started


def _world_again() -> dict:
    from django.contrib.auth import get_user_model

    from apps.tenants.models import ApiKey, Tenant

    users = get_user_model().objects
    return {
        "tenants": list(Tenant.objects.order_by("slug")),
        "keys": list(ApiKey.objects.order_by("name")),
        "admin": users.get(username="bench-admin"),
        "member": users.get(username="bench-member"),
    }


def _time(client, url: str, params: dict, runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        response = client.get(url, params)
        assert response.status_code == 200, (url, params, response.status_code)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _explain(client, url: str, params: dict) -> str:
    """The plan of the page's main query (the one cut with LIMIT)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url, params)
    pages = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "routing_requestlog"' in q["sql"] and "LIMIT 51" in q["sql"]
    ]
    if not pages:
        return "(no page query)"
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + pages[-1])
        lines = [r[0] for r in cursor.fetchall()]
    return "\n".join("      " + line for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse a seeded database")
    parser.add_argument("--explain", action="store_true", help="print each list query's plan")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database this benchmark may drop and create.")
    if not args.keep:
        _recreate_database()

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from apps.routing.models import RequestLog
    from atp_site.console.tables import _encode

    if not args.keep:
        call_command("migrate", verbosity=0)
        world = _setup()
        seconds = _seed(world, args.rows)
        print(f"seeded {args.rows:,} request logs in {seconds:.1f} s")
    else:
        world = _world_again()
    total = RequestLog.objects.count()

    admin = Client()
    admin.force_login(world["admin"])
    member = Client()
    member.force_login(world["member"])
    url = reverse("routing:requestlog-list")
    now_row = RequestLog.objects.order_by("-created_at").only("created_at").first()
    middle = RequestLog.objects.filter(request_id=f"req-{total // 2}").only("created_at").first()
    deep = _encode([middle.created_at, middle.pk])
    day_ago = (now_row.created_at.replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M")
    since = (middle.created_at).strftime("%Y-%m-%dT%H:%M")
    tenant = world["tenants"][1]
    key = world["keys"][3]
    some = RequestLog.objects.filter(request_id=f"req-{total // 3}").only("pk").first()

    cases = [
        ("list, unfiltered", admin, url, {}),
        ("list, tenant", admin, url, {"tenant": tenant.pk}),
        ("list, key", admin, url, {"api_key": key.pk}),
        ("list, model", admin, url, {"model": "claude-3-5-haiku"}),
        ("list, route", admin, url, {"route": "team/coding"}),
        ("list, status=error", admin, url, {"status": "error"}),
        ("list, status=cancelled", admin, url, {"status": "cancelled"}),
        ("list, time range (older half)", admin, url, {"until": since}),
        ("list, time range (last minutes)", admin, url, {"since": day_ago}),
        ("list, cost >= 0.09", admin, url, {"min_cost": "0.09"}),
        ("list, cost 0.01..0.011", admin, url, {"min_cost": "0.01", "max_cost": "0.011"}),
        ("list, search model", admin, url, {"q": "gemini-flash"}),
        ("list, search request id", admin, url, {"q": f"req-{total // 4}"}),
        ("list, search end user", admin, url, {"q": "user-42"}),
        ("list, deep page (cursor at middle)", admin, url, {"cursor": deep}),
        ("list, deep page + model", admin, url, {"cursor": deep, "model": "gpt-4o"}),
        ("list, sorted by cost", admin, url, {"sort": "-cost_usd"}),
        ("list, tenant member (scoped)", member, url, {}),
        ("list, tenant member, status=error", member, url, {"status": "error"}),
        ("detail", admin, reverse("routing:requestlog-detail", args=[some.pk]), {}),
    ]
    print(f"request log: {total:,} rows on PostgreSQL; {args.runs} timed runs per page\n")
    print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for name, client, page_url, params in cases:
        samples = _time(client, page_url, params, args.runs)
        p50, p95 = statistics.median(samples), _pct(samples, 0.95)
        worst = max(worst, p95)
        print(f"{name:40} {p50:8.1f} {p95:8.1f} {max(samples):8.1f}")
        if args.explain and page_url == url:
            print(_explain(client, page_url, params))
    print(f"\nworst p95: {worst:.1f} ms (aim: under 150 ms)")


if __name__ == "__main__":
    main()
