"""Policy evaluation speed: one request against 100 policies in scope, on one core.

    .venv/bin/python bench/policy_eval.py [--policies 100] [--requests 20000] [--seeds 5]

Each seed builds 100 random policies in scope of the request's tenant (half global, half the
tenant's; 1 to 3 rules each, every rule with at least 3 conditions over subject and request
attributes, every operator represented; effects of every kind, a tenth log-only), plus 100
policies of other tenants that must cost nothing. Requests are drawn at random (dirty ones
too: hints of the wrong type, unknown classifications), so most rules fail somewhere in
their conditions and some match.

The walks of the request's tenant are compiled before timing (`Evaluator.warm`; in the
gateway each is built on its first use, and that cost is reported separately). Scenarios,
each timed request by request (perf_counter_ns around one `evaluate`; the timer's
own cost, measured, is subtracted):
- compiled: apps.policies.engine as the gateway runs it;
- compiled, worst case: requests built to pass the first two conditions of every rule, so
  every condition is evaluated;
- baseline: a plain interpreter walking the same rule dicts per request (what one writes
  first), on the same requests.

Reports p50, p99 and mean in microseconds, the mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.policies.detection import ENTITY_TYPES  # noqa: E402
from apps.policies.engine import (  # noqa: E402
    CLASSIFICATION_RANK,
    CLASSIFICATIONS,
    ENDPOINTS,
    Facts,
    PolicySpec,
    compile_policies,
)

TENANT = "t-0001"
ROLES = ("admin", "analyst", "support", "engineer", "intern")
GROUPS = ("finance", "legal", "hr", "eng", "sales", "ops")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama3", "auto")


def _condition(rng: random.Random) -> dict:
    pick = rng.randrange(12)
    if pick == 0:
        return {
            "attr": "request.classification",
            "op": "in",
            "value": rng.sample(CLASSIFICATIONS, 2),
        }
    if pick == 1:
        return {"attr": "request.classification", "op": "gte", "value": rng.choice(CLASSIFICATIONS)}
    if pick == 2:
        return {"attr": "request.endpoint", "op": "eq", "value": rng.choice(ENDPOINTS)}
    if pick == 3:
        return {
            "attr": "request.entities",
            "op": "contains_any",
            "value": rng.sample(ENTITY_TYPES, 3),
        }
    if pick == 4:
        return {"attr": "request.tokens", "op": "gt", "value": rng.choice((100, 1000, 8000))}
    if pick == 5:
        return {"attr": "request.hour", "op": "between", "value": rng.choice(([22, 6], [9, 17]))}
    if pick == 6:
        return {"attr": "subject.role", "op": "not_in", "value": rng.sample(ROLES, 2)}
    if pick == 7:
        return {"attr": "subject.groups", "op": "contains", "value": rng.choice(GROUPS)}
    if pick == 8:
        return {"attr": "request.model", "op": "matches", "value": rng.choice(("^gpt-", "sonnet$"))}
    if pick == 9:
        return {"attr": "request.hints.tier", "op": "eq", "value": rng.choice(("fast", "best"))}
    if pick == 10:
        return {"attr": "request.cost_usd", "op": "lte", "value": rng.choice((0.01, 0.1, 1.0))}
    return {"attr": "subject.end_user", "op": "exists", "value": rng.random() < 0.5}


def _effect(rng: random.Random) -> dict:
    pick = rng.randrange(8)
    if pick == 0:
        return {"type": "deny", "message": "not allowed"}
    if pick == 1:
        return {"type": "allow"}
    if pick == 2:
        return {"type": "redact", "entities": rng.sample(ENTITY_TYPES, 2), "mode": "mask"}
    if pick == 3:
        return {"type": "route", "regions": rng.choice((["eu"], ["eu-west-1", "us-east-1"]))}
    if pick == 4:
        return {"type": "cap_cost", "max_usd": rng.choice((0.05, 0.5))}
    if pick == 5:
        return {"type": "retention", "days": rng.choice((7, 30))}
    if pick == 6:
        return {"type": "guard", "injection": {"threshold": 0.8, "action": "flag"}}
    return {"type": "route", "local_only": True}


def policies(rng: random.Random, count: int) -> list[PolicySpec]:
    specs = []
    for i in range(count * 2):
        owner = TENANT if i % 2 else None
        if i >= count:  # the other tenants' policies
            owner = f"t-{i:04d}"
        rules = [
            {
                "id": f"r{j}",
                "when": [_condition(rng) for _ in range(3 + (rng.random() < 0.3))],
                "effect": _effect(rng),
            }
            for j in range(rng.randint(1, 3))
        ]
        specs.append(
            PolicySpec(
                name=f"p{i:03d}",
                id=i + 1,
                tenant_id=owner,
                tenant=owner or "",
                priority=rng.randrange(100),
                mode="log_only" if rng.random() < 0.1 else "enforce",
                rules=rules,
            )
        )
    return specs


def requests(rng: random.Random, n: int) -> list[Facts]:
    out = []
    for _ in range(n):
        hints = rng.choice(({}, {"tier": "fast"}, {"tier": 3}, {"tier": None}))
        out.append(
            Facts(
                tenant=TENANT,
                tenant_id=TENANT,
                key="k1",
                end_user=rng.choice(("", "u-42")),
                role=rng.choice(ROLES),
                groups=frozenset(rng.sample(GROUPS, rng.randint(0, 2))),
                endpoint=rng.choice(ENDPOINTS),
                classification=rng.choice((*CLASSIFICATIONS, "bogus")),
                entities=frozenset(rng.sample(ENTITY_TYPES, rng.choice((0, 0, 1, 2)))),
                tokens=rng.choice((12, 300, 2500, 12000)),
                cost_usd=rng.choice((0.001, 0.02, 0.4)),
                hour=rng.randrange(24),
                weekday=rng.randrange(7),
                model=rng.choice(MODELS),
                hints=MappingProxyType(hints),
            )
        )
    return out


def worst_requests(specs: list[PolicySpec], n: int) -> list[Facts]:
    """Facts passing most conditions: every classification-, endpoint- and set-condition
    is made true where it can be, so conditions rarely short-circuit early."""
    return [
        Facts(
            tenant=TENANT,
            tenant_id=TENANT,
            end_user="u-42",
            role="nobody",
            groups=frozenset(GROUPS),
            endpoint="chat",
            classification="restricted",
            entities=frozenset(ENTITY_TYPES),
            tokens=100_000,
            cost_usd=0.001,
            hour=23,
            model="gpt-4o",
            hints=MappingProxyType({"tier": "fast"}),
        )
        for _ in range(n)
    ]


# --- the baseline: an interpreter over the rule dicts ------------------------------------


def _read(facts: Facts, attr: str):
    if attr.startswith("request.hints."):
        return facts.hints.get(attr[len("request.hints.") :])
    name = attr.split(".", 1)[1]
    return getattr(facts, {"cost_usd": "cost_usd"}.get(name, name))


def _holds(facts: Facts, cond: dict) -> bool:
    import re

    value = _read(facts, cond["attr"])
    op, want = cond["op"], cond.get("value")
    if cond["attr"] == "request.classification" and op in ("gt", "gte", "lt", "lte"):
        value, want = CLASSIFICATION_RANK.get(value, -1), CLASSIFICATION_RANK[want]
    try:
        if op == "eq":
            return value == want
        if op == "in":
            return value in want
        if op == "not_in":
            return value not in want
        if op == "contains":
            return want in value
        if op == "contains_any":
            return any(w in value for w in want)
        if op == "gt":
            return value > want
        if op == "gte":
            return value >= want
        if op == "lte":
            return value <= want
        if op == "between":
            lo, hi = want
            return (value >= lo or value <= hi) if lo > hi else lo <= value <= hi
        if op == "matches":
            return isinstance(value, str) and re.search(want, value) is not None
        if op == "exists":
            return bool(value) == want
    except TypeError:
        return False
    return False


def baseline(specs: list[PolicySpec]):
    mine = sorted((p for p in specs if p.tenant_id in (None, TENANT)), key=lambda p: -p.priority)

    def evaluate(facts: Facts):
        matched = []
        for p in mine:
            for rule in p.rules:
                if all(_holds(facts, c) for c in rule["when"]):
                    matched.append((p.name, rule["id"], rule["effect"]["type"]))
        return matched

    return evaluate


# --- timing ------------------------------------------------------------------------------


def timer_cost() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20000):
        a = clock()
        b = clock()
        samples.append(b - a)
    return int(statistics.median(samples))


def timed(fn, inputs: list, overhead: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for x in inputs[:500]:
        fn(x)  # warm up
    gc.disable()
    try:
        for x in inputs:
            a = clock()
            fn(x)
            b = clock()
            out.append(max(b - a - overhead, 0) / 1000)
    finally:
        gc.enable()
    return out


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return p(0.50), p(0.99), statistics.fmean(ordered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    overhead = timer_cost()
    results: dict[str, list[tuple[float, float, float]]] = {}
    matched_share = []
    compile_ms = []
    warm_ms = []
    for seed in range(args.seeds):
        rng = random.Random(seed)
        specs = policies(rng, args.policies)
        start = time.perf_counter()
        evaluator = compile_policies(specs)
        compile_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        evaluator.warm(["", TENANT])
        warm_ms.append((time.perf_counter() - start) * 1000)
        assert len(evaluator.policies_for(Facts(tenant_id=TENANT))) == args.policies
        facts = requests(rng, args.requests)
        matched_share.append(statistics.fmean(bool(evaluator.evaluate(f).matched) for f in facts))
        for name, fn, inputs in (
            ("compiled", evaluator.evaluate, facts),
            ("compiled, worst case", evaluator.evaluate, worst_requests(specs, args.requests)),
            ("baseline interpreter", baseline(specs), facts),
        ):
            results.setdefault(name, []).append(summary(timed(fn, inputs, overhead)))

    print(
        f"{args.policies} policies in scope (+{args.policies} of other tenants), "
        f"{args.requests} requests x {args.seeds} seeds, Python {sys.version.split()[0]}; "
        f"timer cost {overhead} ns subtracted"
    )
    print(
        f"compile: {statistics.fmean(compile_ms):.1f} ms mean; specialised walks of one tenant "
        f"(30 per owner, built on first use): {statistics.fmean(warm_ms):.0f} ms; "
        f"requests with an enforced match: {statistics.fmean(matched_share):.0%}"
    )
    print(f"{'scenario':24} {'p50 us':>14} {'p99 us':>14} {'mean us':>14}")
    for name, rows in results.items():
        cells = []
        for i in range(3):
            values = [r[i] for r in rows]
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):7.1f} ±{spread:4.1f}")
        print(f"{name:24} " + " ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
