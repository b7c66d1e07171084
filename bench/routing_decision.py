"""Routing decision time: 200 models, 50 routes, 50 policy-like constraints, 500-token prompts.

Measures what the data plane runs inline for every routed request: hint parsing and need
detection, task features and cluster, candidate filtering (health, policy, key,
capabilities, region, context window, cost), scoring, the bandit's choice and the
RouteDecision with its explanation and response headers. Pinned to one core with taskset
when it is available. See docs/benchmarks.md, "Routing".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "eu-north-1", "ap-northeast-1"]
CAPABILITY_SETS = [
    {"chat", "streaming"},
    {"chat", "streaming", "tools", "json"},
    {"chat", "streaming", "tools", "json", "vision"},
    {"chat", "streaming", "json"},
]
STRATEGIES = ["learned", "learned", "score", "cheapest", "lowest_latency", "ordered", "weighted"]


def build_world(rng: random.Random):
    """200 deployments, 50 routes with precomputed candidates, 50 policy-like rules."""
    from apps.costs.pricing import Prices
    from apps.providers.adapters.base import Target
    from apps.routing.engine.router import BUILTIN_ROUTES, RouteConfig
    from apps.routing.snapshot import DeploymentInfo

    deps = []
    for i in range(200):
        provider = f"provider-{i % 40}"
        price_in = round(10 ** rng.uniform(-1.5, 1.2), 4)
        target = Target(
            provider_id=provider,
            provider_name=provider,
            kind="openai_compatible",
            base_url="http://127.0.0.1:9/v1",
            upstream_model=f"model-{i}",
        )
        deps.append(
            DeploymentInfo(
                id=f"dep-{i}",
                public_name=f"model-{i}",
                aliases=(),
                provider_id=provider,
                provider_name=provider,
                target=target,
                prices=Prices(
                    input=Decimal(str(price_in)), output=Decimal(str(round(price_in * 3, 4)))
                ),
                capabilities=frozenset(rng.choice(CAPABILITY_SETS)),
                context_window=rng.choice([16_000, 32_000, 128_000, 200_000]),
                weight=100,
                region=rng.choice(REGIONS),
                quality=round(rng.uniform(0.4, 0.95), 2),
                created=0,
            )
        )

    # Routes: the four built-ins over every model, 46 admin routes over 5-60 models each
    # (a list or a filter, both resolved to candidates when the configuration snapshot is
    # built, as the data plane does).
    routes: list[tuple[RouteConfig, list]] = [(cfg, deps) for cfg in BUILTIN_ROUTES.values()]
    for r in range(46):
        size = rng.randint(5, 60)
        if r % 2:
            members = rng.sample(deps, size)
        else:
            region = rng.choice(REGIONS).rsplit("-", 1)[0]
            members = [d for d in deps if d.region.startswith(region)][:size] or deps[:size]
        routes.append(
            (
                RouteConfig(
                    f"team-{r}/route",
                    strategy=rng.choice(STRATEGIES),
                    tier=rng.choice(["fast", "balanced", "high"]),
                    exploration=rng.random() > 0.2,
                ),
                members,
            )
        )

    # 50 policy-like rules over 10 tenants: deny a provider, deny a region, an allow-list of
    # models, a price ceiling. The policy engine of a later issue compiles its rules into
    # per-tenant predicates the same way: set look-ups, no per-request rule walk.
    rules = []
    for p in range(50):
        tenant = f"tenant-{p % 10}"
        kind = p % 4
        if kind == 0:
            rules.append((tenant, "deny_provider", f"provider-{rng.randrange(40)}"))
        elif kind == 1:
            rules.append((tenant, "deny_region", rng.choice(REGIONS)))
        elif kind == 2:
            rules.append(
                (tenant, "allow_models", frozenset(d.public_name for d in rng.sample(deps, 150)))
            )
        else:
            rules.append((tenant, "max_input_price", rng.uniform(2.0, 12.0)))
    return deps, routes, rules


def compile_policy(rules, tenant: str):
    """One predicate for a tenant's rules: the denial reason, or None."""
    providers: set[str] = set()
    regions: set[str] = set()
    allowed: frozenset[str] | None = None
    max_price = float("inf")
    for owner, kind, value in rules:
        if owner != tenant:
            continue
        if kind == "deny_provider":
            providers.add(value)
        elif kind == "deny_region":
            regions.add(value)
        elif kind == "allow_models":
            allowed = value if allowed is None else allowed & value
        else:
            max_price = min(max_price, value)
    ceiling = Decimal(str(max_price)) if max_price != float("inf") else None

    def policy(dep) -> str | None:
        if dep.provider_id in providers:
            return "provider denied"
        if dep.region in regions:
            return "region denied"
        if allowed is not None and dep.public_name not in allowed:
            return "model not on the allow-list"
        if ceiling is not None and dep.prices.input > ceiling:
            return "above the tenant's price ceiling"
        return None

    return policy


def make_requests(rng: random.Random, n: int) -> list[dict]:
    """Chat requests of about 500 prompt tokens: earlier turns of the same kind of task
    before the latest one, as a conversation that grew."""
    from routing_quality import CATEGORY_NAMES, make_prompt

    from apps.providers.tokens import estimate_prompt_tokens

    bodies = []
    while len(bodies) < n:
        category = rng.choice(CATEGORY_NAMES)
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        body: dict = {"model": "auto", "messages": messages}
        turns = [make_prompt(rng, category, 2)]
        while estimate_prompt_tokens(body) < 450:
            messages[1:] = []
            for turn in turns[:-1]:
                messages.append({"role": "user", "content": turn})
                messages.append({"role": "assistant", "content": "Done: " + turn[:200]})
            messages.append({"role": "user", "content": turns[-1]})
            turns.insert(0, make_prompt(rng, category, 1))
        if estimate_prompt_tokens(body) > 650:
            continue
        body["max_tokens"] = rng.choice([256, 512, 1024])
        if rng.random() < 0.3:
            body["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        if rng.random() < 0.2:
            body["response_format"] = {"type": "json_object"}
        if rng.random() < 0.3:
            body["atp"] = {"max_cost_usd": 0.05, "quality": rng.choice(["fast", "high"])}
        bodies.append(body)
    return bodies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def warm(engine, deps, routes, bodies, key, tracker, rng) -> None:
    """Teach the clusters and the bandit on every learned route first, as a running
    gateway would have."""
    from apps.routing.engine.hints import parse_hints

    for dep in deps:
        for _ in range(5):
            tracker.record(dep.id, latency_ms=rng.uniform(200, 3000), success=rng.random() > 0.02)
    for body in bodies:
        route, members = rng.choice(routes)
        request = parse_hints(body, {}, key)
        try:
            decision = engine.decide(members, request, route, stats=tracker)
        except Exception:
            continue
        engine.learn(decision)
        await engine.record_outcome(
            decision,
            success=True,
            latency_ms=rng.uniform(200, 3000),
            cost_usd=decision.estimated_cost_usd,
            score=rng.random(),
        )


def run(args) -> dict:
    from apps.providers.tokens import estimate_prompt_tokens, preload
    from apps.routing.engine.hints import parse_hints
    from apps.routing.engine.router import RoutingEngine
    from apps.routing.engine.stats import ObservedStats
    from apps.routing.snapshot import KeyInfo
    from atp_site.lib.errors import ATPError

    preload()
    rng = random.Random(7)
    deps, routes, rules = build_world(rng)
    tenants = [f"tenant-{t}" for t in range(10)]
    policies = {t: compile_policy(rules, t) for t in tenants}
    keys = {
        t: KeyInfo(
            id=f"key-{t}",
            tenant_id=t,
            tenant_slug=t,
            name="bench",
            allowed_models=None,
            expires_at=None,
            revoked=False,
            tenant_active=True,
            cost_mode=rng.choice(["aggressive", "balanced", "quality_first"]),
            preferred_regions=("eu",) if rng.random() < 0.5 else (),
            carbon_aware=rng.random() < 0.3,
        )
        for t in tenants
    }
    open_circuits = {d.id for d in rng.sample(deps, 10)}

    def health(dep) -> bool:
        return dep.id not in open_circuits

    tracker = ObservedStats()
    engine = RoutingEngine(rng=random.Random(11))
    warm_bodies = make_requests(rng, args.warm)
    asyncio.run(warm(engine, deps, routes, warm_bodies, keys[tenants[0]], tracker, rng))
    bodies = make_requests(rng, args.prompts)
    token_counts = [estimate_prompt_tokens(b) for b in bodies]
    headers = {b"x-atp-latency-slo-ms": b"4000"}

    plan = [
        (
            bodies[i % len(bodies)],
            token_counts[i % len(bodies)],
            rng.choice(routes),
            rng.choice(tenants),
        )
        for i in range(args.requests)
    ]

    def measure(count_tokens: bool, only: list | None = None) -> tuple[list, list, int]:
        """Wall-clock and CPU microseconds per decision, and how many were refused."""
        wall, cpu = [], []
        errors = 0
        items = plan if only is None else only
        gc.collect()
        for body, tokens, (route, members), tenant in items:
            start = time.perf_counter_ns()
            start_cpu = time.thread_time_ns()
            try:
                request = parse_hints(
                    body, headers, keys[tenant], prompt_tokens=None if count_tokens else tokens
                )
                # The data plane builds the route's pool per request (key allow-list,
                # capability): a new list with the same deployments.
                decision = engine.decide(
                    list(members),
                    request,
                    route,
                    health=health,
                    stats=tracker,
                    policy=policies[tenant],
                    key=keys[tenant],
                )
                decision.headers()
            except ATPError:
                errors += 1
            cpu.append((time.thread_time_ns() - start_cpu) / 1000)
            wall.append((time.perf_counter_ns() - start) / 1000)
        return wall, cpu, errors

    def summary(wall: list, cpu: list, errors: int) -> dict:
        return {
            "p50_us": round(percentile(wall, 0.50), 1),
            "p90_us": round(percentile(wall, 0.90), 1),
            "p99_us": round(percentile(wall, 0.99), 1),
            "max_us": round(max(wall), 1),
            "cpu_p50_us": round(percentile(cpu, 0.50), 1),
            "cpu_p99_us": round(percentile(cpu, 0.99), 1),
            "requests": len(wall),
            "refused": errors,
        }

    measure(False, plan[:500])  # warm caches
    result = {}
    for name, count_tokens in (("decision", False), ("decision_with_token_count", True)):
        result[name] = summary(*measure(count_tokens))
    builtin = [p for p in plan if p[2][0].name in ("auto", "atp/balanced")]
    result["builtin_routes_200_candidates"] = summary(*measure(False, builtin))
    # Parts, on the same prompts.
    texts = [parse_hints(b, {}, keys[tenants[0]], prompt_tokens=1).prompt_text for b in bodies]
    parts = {}
    for part, fn in (
        ("features", lambda t: engine.clusters.featurizer.transform(t)),
        ("features_and_cluster", lambda t: engine.clusters.classify(t)),
    ):
        samples = []
        for text in texts * 5:
            start = time.perf_counter_ns()
            fn(text)
            samples.append((time.perf_counter_ns() - start) / 1000)
        parts[part] = {
            "p50_us": round(percentile(samples, 0.5), 1),
            "p99_us": round(percentile(samples, 0.99), 1),
        }
    samples = []
    for body in bodies * 3:
        start = time.perf_counter_ns()
        estimate_prompt_tokens(body)
        samples.append((time.perf_counter_ns() - start) / 1000)
    parts["token_count_tiktoken"] = {
        "p50_us": round(percentile(samples, 0.5), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
    }
    samples = []
    for body, tokens, (route, members), tenant in plan[:3000]:
        request = parse_hints(body, headers, keys[tenant], prompt_tokens=tokens)
        try:
            decision = engine.decide(members, request, route, health=health, stats=tracker)
        except ATPError:
            continue
        if decision.task is None:
            continue  # only learned routes classify, and so learn
        start = time.perf_counter_ns()
        engine.learn(decision)
        samples.append((time.perf_counter_ns() - start) / 1000)
    parts["cluster_learning_after_answer"] = {
        "p50_us": round(percentile(samples, 0.5), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
    }
    result["parts"] = parts
    result["setup"] = {
        "models": len(deps),
        "routes": len(routes),
        "policies": len(rules),
        "prompt_tokens_mean": round(statistics.fmean(token_counts), 1),
        "requests": len(plan),
        "task_clusters": len(engine.clusters.clusters),
        "python": platform.python_version(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "nice": os.nice(0),
        "load_average": os.getloadavg(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--core", type=int, default=0, help="CPU to pin to with taskset")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--nice", type=int, default=-10, help="priority change (needs root when negative); 0: none"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if not args.no_pin and shutil.which("taskset") and not os.environ.get("ATP_BENCH_PINNED"):
        os.environ["ATP_BENCH_PINNED"] = "1"
        os.execvp(
            "taskset", ["taskset", "-c", str(args.core), sys.executable, __file__, *sys.argv[1:]]
        )
    if args.nice:
        # On a shared machine other processes preempt the measured one; a higher CFS
        # weight keeps the figures about this code rather than about the neighbours.
        try:
            os.nice(args.nice)
        except OSError:
            print("could not change the priority; measuring at the default one", file=sys.stderr)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    os.environ.pop("REDIS_URL", None)  # the decision path reads local statistics only
    import django

    django.setup()
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    result["date"] = stamp
    (out / "routing_decision.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
