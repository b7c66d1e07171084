"""The contextual bandit: convergence per task cluster, bounded exploration, feedback,
statistics shared through Redis across processes, persistence to BanditArm."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from apps.costs.pricing import Prices
from apps.providers.adapters.base import Target
from apps.routing.engine.bandit import (
    ArmStats,
    ContextualBandit,
    MemoryBanditStore,
    RedisBanditStore,
)
from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.learning import learned_summary, learning_load, learning_persist
from apps.routing.engine.router import RouteConfig, RoutingEngine, get_engine, reset_engine
from apps.routing.models import BanditArm, LearnedState
from apps.routing.snapshot import DeploymentInfo

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "")


def dep(name: str, price_in: str, price_out: str, listed_quality: float) -> DeploymentInfo:
    return DeploymentInfo(
        id=f"id-{name}",
        public_name=name,
        aliases=(),
        provider_id="p",
        provider_name="p",
        target=Target(
            provider_id="p", provider_name="p", kind="simulator", base_url="", upstream_model=name
        ),
        prices=Prices(input=Decimal(price_in), output=Decimal(price_out)),
        capabilities=frozenset({"chat"}),
        context_window=128_000,
        weight=100,
        region="us-east-1",
        quality=listed_quality,
        created=0,
    )


# The configured ("listed") qualities mislead on purpose: only learning finds the cheap
# model good enough for extraction and the specialist best at code.
CHEAP = dep("cheap", "0.1", "0.4", 0.55)
CODER = dep("coder", "2", "6", 0.65)
FRONTIER = dep("frontier", "10", "30", 0.95)
MODELS = [CHEAP, CODER, FRONTIER]
TRUE_QUALITY = {
    "extraction": {"cheap": 0.90, "coder": 0.75, "frontier": 0.92},
    "code": {"cheap": 0.45, "coder": 0.94, "frontier": 0.86},
}
PROMPTS = {
    "extraction": [
        "Extract the name and email address from this text as JSON: {who} wrote from {mail}.",
        "Pull out the invoice number, total and date: invoice {n} for {n} dollars, due soon.",
        "Return the fields person and company as JSON: {who} joined Initech in {n}.",
    ],
    "code": [
        "Write a Python function that merges {n} sorted lists; add unit tests.",
        "Fix this bug:\n```\nfor (i = 0; i <= len; i++) {{ sum += xs[i]; }}\n```",
        "Refactor this class for readability:\n```\nclass A:\n    def f(self): return {n}\n```",
    ],
}


def prompt(rng: random.Random, kind: str) -> str:
    return rng.choice(PROMPTS[kind]).format(
        who=rng.choice(["Ana Diaz", "Bo Chen", "Cy Young"]),
        mail=rng.choice(["ana@example.com", "bo@example.org"]),
        n=rng.randint(2, 999),
    )


def request_for(text: str) -> RoutingRequest:
    return RoutingRequest(prompt_tokens=400, prompt_text=text)


async def teach(engine: RoutingEngine, route: RouteConfig, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(rounds):
        kind = rng.choice(list(TRUE_QUALITY))
        decision = engine.decide(MODELS, request_for(prompt(rng, kind)), route)
        engine.learn(decision)
        grade = min(1.0, max(0.0, rng.gauss(TRUE_QUALITY[kind][decision.model], 0.08)))
        await engine.record_outcome(
            decision,
            success=True,
            latency_ms=800,
            cost_usd=decision.estimated_cost_usd,
            request_id=f"r{i}",
        )
        assert await engine.record_feedback(f"r{i}", grade) is not None


def picks(engine: RoutingEngine, route: RouteConfig, kind: str, seed: int) -> Counter:
    rng = random.Random(seed)
    return Counter(
        engine.decide(MODELS, request_for(prompt(rng, kind)), route).model for _ in range(40)
    )


async def test_bandit_learns_the_cheap_model_for_extraction_and_the_specialist_for_code():
    engine = RoutingEngine(rng=random.Random(1))
    route = RouteConfig("atp/balanced", strategy="learned", exploration_rate=0.2)
    await teach(engine, route, rounds=500, seed=2)
    exploit = RouteConfig("atp/balanced", strategy="learned", exploration=False)
    extraction = picks(engine, exploit, "extraction", seed=3)
    code = picks(engine, exploit, "code", seed=4)
    assert extraction.most_common(1)[0][0] == "cheap", extraction
    assert extraction["cheap"] >= 36
    assert code.most_common(1)[0][0] == "coder", code
    assert code["coder"] >= 36


async def test_without_learning_the_listed_quality_wins():
    engine = RoutingEngine(rng=random.Random(1))
    exploit = RouteConfig("atp/balanced", strategy="learned", exploration=False)
    assert picks(engine, exploit, "code", seed=4).most_common(1)[0][0] != "coder"


async def test_exploration_off_never_explores():
    engine = RoutingEngine(rng=random.Random(5))
    route = RouteConfig("r", strategy="learned", exploration=False)
    rng = random.Random(6)
    chosen = set()
    for _ in range(200):
        decision = engine.decide(MODELS, request_for(prompt(rng, "code")), route)
        assert not decision.explored
        assert "exploration is off for this route" in decision.reasoning
        chosen.add(decision.model)
    assert len(chosen) == 1  # nothing learnt, nothing tried: always the same best guess


async def test_exploration_share_is_capped_by_the_route_rate():
    engine = RoutingEngine(rng=random.Random(7))
    route = RouteConfig("r", strategy="learned", exploration=True, exploration_rate=0.05)
    rng = random.Random(8)
    explored = sum(
        engine.decide(MODELS, request_for(prompt(rng, "extraction")), route).explored
        for _ in range(400)
    )
    assert 0 < explored <= 0.05 * 400 + 1
    wide = RoutingEngine(rng=random.Random(7))
    route = RouteConfig("r", strategy="learned", exploration=True, exploration_rate=0.5)
    explored_wide = sum(
        wide.decide(MODELS, request_for(prompt(rng, "extraction")), route).explored
        for _ in range(400)
    )
    assert explored_wide > explored


async def test_outcomes_and_feedback_update_the_arm():
    store = MemoryBanditStore()
    bandit = ContextualBandit(store)
    await bandit.record_outcome(
        route="r",
        cluster=3,
        model="m",
        success=True,
        latency_ms=200,
        cost_usd=0.01,
        request_id="req-1",
    )
    await bandit.record_outcome(
        route="r", cluster=3, model="m", success=False, latency_ms=900, cost_usd=0.0
    )
    arm = store.arms("r", 3)["m"]
    assert (arm.pulls, arm.failures, arm.latency_ms_sum) == (2, 1, 1100)
    assert (arm.feedback_count, arm.reward_sum) == (1, 0.0)  # a failure scores zero

    result = await bandit.record_feedback("req-1", 0.8, "good answer")
    assert result == {
        "request_id": "req-1",
        "route": "r",
        "task_cluster": 3,
        "model": "m",
        "score": 0.8,
        "comment": "good answer",
    }
    assert (arm.feedback_count, arm.reward_sum) == (2, 0.8)
    assert arm.reward_sq_sum == pytest.approx(0.64)
    assert await bandit.record_feedback("req-1", 0.1) is None  # rated once
    assert await bandit.record_feedback("never-seen", 0.5) is None
    with pytest.raises(ValueError):
        await bandit.record_feedback("req-1", 1.5)


async def test_feedback_moves_the_choice():
    engine = RoutingEngine(rng=random.Random(9))
    route = RouteConfig("r", strategy="learned", exploration=False)
    text = "Write a Python function that merges 3 sorted lists; add unit tests."
    first = engine.decide(MODELS, request_for(text), route)
    assert first.model == "frontier"
    for i in range(30):
        await engine.record_outcome(
            first, success=True, latency_ms=500, cost_usd=0.01, request_id=f"f{i}"
        )
        await engine.record_feedback(f"f{i}", 0.2)
    assert engine.decide(MODELS, request_for(text), route).model != "frontier"


async def test_learned_route_decision_explains_cluster_and_arm():
    engine = RoutingEngine(rng=random.Random(1))
    decision = engine.decide(
        MODELS,
        request_for("Translate into French: good morning"),
        RouteConfig("atp/balanced", strategy="learned"),
    )
    data = decision.to_dict()
    assert data["task_cluster"] == decision.task_cluster is not None
    assert any(line.startswith("task cluster") for line in data["reasoning"])
    assert data["strategy"] == "learned"


# --- persistence --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_persistence_round_trip_through_bandit_arm():
    engine = RoutingEngine(rng=random.Random(1))
    route = RouteConfig("atp/balanced", strategy="learned", exploration_rate=0.3)
    asyncio.run(teach(engine, route, rounds=120, seed=11))

    report = learning_persist(engine)
    assert report["arms_created"] > 0 and report["clusters_saved"] == 1
    rows = list(BanditArm.objects.all())
    assert sum(r.pulls for r in rows) == 120
    again = learning_persist(engine)
    assert again["arms_created"] == 0 and again["arms_updated"] == len(rows)

    fresh = RoutingEngine(rng=random.Random(2))
    loaded = learning_load(fresh)
    assert loaded["arms"] == len(rows)
    assert set(fresh.clusters.clusters) == set(engine.clusters.clusters)
    for key, arms in engine.store.snapshot().items():
        for model, stats in arms.items():
            restored = fresh.store.arms(*key)[model]
            assert restored.pulls == stats.pulls
            assert restored.reward_sum == pytest.approx(stats.reward_sum)
    text = prompt(random.Random(3), "code")
    exploit = RouteConfig("atp/balanced", strategy="learned", exploration=False)
    assert (
        fresh.decide(MODELS, request_for(text), exploit).model
        == engine.decide(MODELS, request_for(text), exploit).model
    )

    summary = learned_summary("atp/balanced")
    assert summary and all(group["route"] == "atp/balanced" for group in summary)
    group = max(summary, key=lambda g: g["pulls"])
    assert group["label"] in {"code", "extraction"}
    assert {"model", "pulls", "mean_reward", "mean_cost_usd", "mean_latency_ms"} <= set(
        group["arms"][0]
    )
    assert learned_summary("no-such-route") == []


@pytest.mark.django_db
def test_celery_task_persists_the_process_engine(settings):
    from apps.routing.tasks import persist_learning_task

    settings.REDIS_URL = ""
    reset_engine()
    try:
        engine = get_engine()
        asyncio.run(
            engine.bandit.record_outcome(
                route="auto", cluster=0, model="m", success=True, latency_ms=10, cost_usd=0.5
            )
        )
        result = persist_learning_task.apply().get()
        assert result["arms_created"] == 1
        arm = BanditArm.objects.get(route="auto", cluster=0, model="m")
        assert (arm.pulls, arm.cost_sum) == (1, 0.5)
        # Nothing learnt about clusters in this process: the stored ones are kept.
        assert not LearnedState.objects.exists()
    finally:
        reset_engine()


# --- Redis: one set of statistics for every process ----------------------------------------------

CHILD = """
import asyncio, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
django.setup()
from apps.routing.engine.bandit import RedisBanditStore, ContextualBandit

async def main():
    store = RedisBanditStore(os.environ["REDIS_URL"], prefix=sys.argv[1])
    bandit = ContextualBandit(store)
    for i in range(25):
        await bandit.record_outcome(route="shared", cluster=4, model="child-model",
                                    success=i % 5 != 0, latency_ms=100, cost_usd=0.002,
                                    request_id=f"child-{i}")
    await store.refresh(force=True)
    arm = store.arms("shared", 4).get("parent-model")
    print(arm.pulls if arm else 0)
    print(await bandit.record_feedback("parent-req", 0.9) is not None)

asyncio.run(main())
"""


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set")
async def test_statistics_are_shared_between_processes_through_redis():
    prefix = f"atp-test-{uuid.uuid4().hex[:8]}"
    store = RedisBanditStore(REDIS_URL, prefix=prefix)
    bandit = ContextualBandit(store)
    try:
        for _ in range(7):
            await bandit.record_outcome(
                route="shared",
                cluster=4,
                model="parent-model",
                success=True,
                latency_ms=50,
                cost_usd=0.001,
            )
        await bandit.record_outcome(
            route="shared",
            cluster=4,
            model="parent-model",
            success=True,
            latency_ms=50,
            cost_usd=0.001,
            request_id="parent-req",
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            prefix,
            cwd=ROOT,
            env={**os.environ},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), timeout=60)
        assert child.returncode == 0, err.decode()
        seen_by_child, child_rated = out.decode().split()
        assert seen_by_child == "8.0"  # the parent's eight calls
        assert child_rated == "True"  # the parent's request map, read from the child

        await store.refresh(force=True)
        arm = store.arms("shared", 4)["child-model"]
        assert (arm.pulls, arm.failures) == (25, 5)
        assert arm.cost_sum == pytest.approx(0.05)
        parent_arm = store.arms("shared", 4)["parent-model"]
        assert (parent_arm.feedback_count, parent_arm.reward_sum) == (1, 0.9)
        assert await bandit.record_feedback("child-3", 0.5) is not None
        assert await bandit.record_feedback("parent-req", 0.5) is None  # rated by the child

        # Persisted rows seed an empty Redis without doubling what it already has.
        seeded = RedisBanditStore(REDIS_URL, prefix=prefix)
        seeded.seed(
            [
                ("shared", 4, "child-model", ArmStats(pulls=999)),
                ("shared", 9, "restored", ArmStats(pulls=3, reward_sum=2.0)),
            ]
        )
        assert seeded.arms("shared", 4)["child-model"].pulls == 25
        assert seeded.arms("shared", 9)["restored"].pulls == 3
    finally:
        store.clear()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set")
async def test_clusters_published_to_redis_are_persisted_by_another_process():
    prefix = f"atp-test-{uuid.uuid4().hex[:8]}"
    serving = RoutingEngine(store=RedisBanditStore(REDIS_URL, prefix=prefix))
    try:
        for text in ["Convert 5 fahrenheit kelvin thermometer"] * 3:
            serving.clusters.assign(text)
        await serving.refresh()
        worker = RoutingEngine(store=RedisBanditStore(REDIS_URL, prefix=prefix))
        published = worker.store.published_clusters()
        assert len(published) == 1
        assert published[0]["featurizer"]["documents"] == serving.clusters.featurizer.documents
        payload = orjson.loads(orjson.dumps(published[0]))
        assert {c["id"] for c in payload["clusters"]} == set(serving.clusters.clusters)
    finally:
        serving.store.clear()


@pytest.mark.django_db
def test_the_decision_path_makes_no_database_query(django_assert_num_queries):
    engine = RoutingEngine(rng=random.Random(1))
    route = RouteConfig("atp/balanced", strategy="learned")
    rng = random.Random(12)
    with django_assert_num_queries(0):
        for kind in ("code", "extraction"):
            decision = engine.decide(MODELS, request_for(prompt(rng, kind)), route)
            decision.to_dict()
            decision.headers()
            engine.learn(decision)


async def test_confidence_grows_with_evidence():
    exploit = RouteConfig("atp/balanced", strategy="learned", exploration=False)
    fresh = RoutingEngine(rng=random.Random(1))
    rng = random.Random(9)
    before = fresh.decide(MODELS, request_for(prompt(rng, "code")), exploit).confidence
    assert 0.5 <= before < 0.95  # listed qualities alone are a guess
    taught = RoutingEngine(rng=random.Random(1))
    await teach(taught, RouteConfig("atp/balanced", strategy="learned"), rounds=500, seed=2)
    after = taught.decide(MODELS, request_for(prompt(rng, "code")), exploit).confidence
    assert after > before and after > 0.9
