"""Candidate filtering with reasons, scoring per tier and cost mode, the RouteDecision."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from apps.costs.pricing import Prices
from apps.providers.adapters.base import Target
from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.ranking import rank
from apps.routing.engine.router import RouteConfig, RoutingEngine
from apps.routing.engine.scoring import (
    DeploymentStats,
    carbon_intensity,
    filter_candidates,
    region_matches,
    score_candidates,
)
from apps.routing.snapshot import DeploymentInfo, KeyInfo
from atp_site.lib.errors import ATPError, InvalidRequest, PermissionDenied


def dep(
    name: str,
    *,
    price_in: str = "1",
    price_out: str = "2",
    quality: float = 0.7,
    region: str = "us-east-1",
    caps: tuple[str, ...] = ("chat", "tools", "json"),
    window: int = 128_000,
    provider: str = "prov",
    weight: int = 100,
) -> DeploymentInfo:
    return DeploymentInfo(
        id=f"id-{name}-{region}",
        public_name=name,
        aliases=(),
        provider_id=provider,
        provider_name=provider,
        target=Target(
            provider_id=provider,
            provider_name=provider,
            kind="simulator",
            base_url="",
            upstream_model=name,
        ),
        prices=Prices(input=Decimal(price_in), output=Decimal(price_out)),
        capabilities=frozenset(caps),
        context_window=window,
        weight=weight,
        region=region,
        quality=quality,
        created=0,
    )


def req(**fields) -> RoutingRequest:
    fields.setdefault("prompt_tokens", 1000)
    fields.setdefault("prompt_text", "hello")
    return RoutingRequest(**fields)


FRONTIER = dep("frontier", price_in="10", price_out="30", quality=0.95)
MID = dep("mid", price_in="1", price_out="3", quality=0.8)
CHEAP = dep("cheap", price_in="0.1", price_out="0.3", quality=0.6)
ALL = [FRONTIER, MID, CHEAP]


def stats_of(table: dict[str, tuple[float, float, float]]):
    def stats(deployment_id: str) -> DeploymentStats | None:
        for d in ALL:
            if d.id == deployment_id and d.public_name in table:
                return DeploymentStats(*table[d.public_name])
        return None

    return stats


def test_every_filter_explains_what_it_removed():
    candidates = [
        dep("sick"),
        dep("blind", caps=("chat",)),
        dep("far", region="ap-south-1"),
        dep("tiny", window=500),
        dep("dear", price_in="100", price_out="100"),
        dep("fine", region="eu-west-1"),
    ]
    reasoning: list[str] = []
    survivors = filter_candidates(
        candidates,
        req(required_capabilities=frozenset({"tools"}), regions=("us", "eu"), max_cost_usd=0.01),
        route="r",
        health=lambda d: d.public_name != "sick",
        reasoning=reasoning,
    )
    assert [d.public_name for d, _ in survivors] == ["fine"]
    text = "\n".join(reasoning)
    assert "excluded sick: circuit open or unhealthy" in text
    assert "excluded blind: lacks tools" in text
    assert "excluded far: outside region us, eu" in text
    assert "excluded tiny: context window below 1000 tokens" in text
    assert "excluded dear: estimated cost above $0.01" in text


@pytest.mark.parametrize(
    ("request_fields", "health", "error", "needle"),
    [
        ({"max_cost_usd": 0.000001}, None, InvalidRequest, "max_cost_usd=1e-06"),
        ({"regions": ("mars",)}, None, InvalidRequest, "region mars"),
        ({"required_capabilities": frozenset({"vision"})}, None, InvalidRequest, "vision"),
        ({"prompt_tokens": 200_000}, None, InvalidRequest, "context window"),
        ({}, lambda d: False, ATPError, "circuit is open"),
    ],
)
def test_nothing_left_names_the_constraint(request_fields, health, error, needle):
    for path in ("reference", "fast"):
        with pytest.raises(error) as caught:
            if path == "reference":
                filter_candidates(ALL, req(**request_fields), route="atp/balanced", health=health)
            else:
                rank(
                    ALL, req(**request_fields), route="atp/balanced", tier="balanced", health=health
                )
        assert needle in caught.value.message
        assert "atp/balanced" in caught.value.message
    if health is not None:
        assert caught.value.status == 503 and caught.value.retryable


def test_policy_and_key_filters():
    key = KeyInfo(
        id="k",
        tenant_id="t",
        tenant_slug="t",
        name="k",
        allowed_models=frozenset({"mid"}),
        expires_at=None,
        revoked=False,
        tenant_active=True,
    )
    reasoning: list[str] = []
    ranking = rank(ALL, req(), route="r", tier="balanced", key=key, reasoning=reasoning)
    assert [r.model for r in ranking.best()] == ["mid"]
    assert any("not allowed for this API key" in line for line in reasoning)

    def deny_all(d: DeploymentInfo) -> str | None:
        return "no external providers"

    with pytest.raises(PermissionDenied) as caught:
        rank(ALL, req(), route="r", tier="balanced", policy=deny_all)
    assert "no external providers" in caught.value.message


def test_region_matching_and_carbon_table():
    assert region_matches("eu-west-1", ["eu"])
    assert region_matches("eu", ["eu"])
    assert not region_matches("europe", ["eu"])
    assert not region_matches("", ["eu"])
    assert carbon_intensity("eu-north-1") < carbon_intensity("us-east-1")
    assert carbon_intensity("somewhere-new") == 450.0


def names(ranking) -> list[str]:
    return [r.model for r in ranking]


def test_tier_changes_the_order():
    stats = stats_of({"frontier": (3000, 5000, 0), "mid": (1200, 2000, 0), "cheap": (300, 500, 0)})
    survivors = filter_candidates(ALL, req(), route="r")
    high = score_candidates(survivors, req(), tier="high", stats=stats)
    fast = score_candidates(survivors, req(), tier="fast", stats=stats)
    assert names(high)[0] == "frontier"
    assert names(fast)[0] == "cheap"


def test_cost_mode_moves_balanced_between_cheap_and_quality():
    survivors = filter_candidates(ALL, req(), route="r")
    aggressive = score_candidates(survivors, req(cost_mode="aggressive"), tier="balanced")
    quality_first = score_candidates(survivors, req(cost_mode="quality_first"), tier="balanced")
    assert names(aggressive)[0] == "cheap"
    assert names(quality_first)[0] == "frontier"


def test_error_rate_and_slo_lower_the_score():
    survivors = filter_candidates(
        [MID, dep("mid2", price_in="1", price_out="3", quality=0.8)], req(), route="r"
    )

    def stats(deployment_id: str) -> DeploymentStats:
        if "mid2" in deployment_id:
            return DeploymentStats(1000, 1500, 0.5)
        return DeploymentStats(1000, 1500, 0.0)

    assert names(score_candidates(survivors, req(), tier="balanced", stats=stats))[0] == "mid"

    def slow(deployment_id: str) -> DeploymentStats:
        return DeploymentStats(1000, 9000 if "mid2" in deployment_id else 1500, 0.0)

    ranked = score_candidates(survivors, req(latency_slo_ms=2000), tier="balanced", stats=slow)
    assert names(ranked)[0] == "mid"
    assert ranked[0].score - ranked[1].score == pytest.approx(0.25, abs=0.01)


def test_carbon_awareness_prefers_a_clean_region():
    dirty = dep("same", region="ap-south-1")
    clean = dep("same", region="eu-north-1")
    survivors = filter_candidates([dirty, clean], req(), route="r")
    assert (
        score_candidates(survivors, req(carbon_aware=True), tier="balanced")[0].deployment is clean
    )
    plain = score_candidates(survivors, req(), tier="balanced")
    assert plain[0].score == pytest.approx(plain[1].score)


def test_preferred_region_is_a_bonus_not_a_filter():
    us = dep("same", region="us-east-1")
    eu = dep("same", region="eu-west-1")
    ranking = rank([us, eu], req(preferred_regions=("eu",)), route="r", tier="balanced")
    best = ranking.best()
    assert best[0].deployment is eu and len(best) == 2


def test_fast_path_scores_like_the_reference():
    rng = random.Random(5)
    candidates = [
        dep(
            f"m{i}",
            price_in=str(round(rng.uniform(0.05, 20), 3)),
            price_out=str(round(rng.uniform(0.1, 60), 3)),
            quality=rng.uniform(0.3, 0.95),
            region=rng.choice(["us-east-1", "eu-west-1", "eu-north-1"]),
            caps=rng.choice([("chat",), ("chat", "tools")]),
        )
        for i in range(60)
    ]
    latency = {
        d.id: DeploymentStats(rng.uniform(100, 5000), rng.uniform(200, 9000), rng.uniform(0, 0.2))
        for d in candidates
    }
    for _ in range(20):
        request = req(
            prompt_tokens=rng.randint(10, 5000),
            required_capabilities=rng.choice([frozenset(), frozenset({"tools"})]),
            preferred_regions=rng.choice([(), ("eu",)]),
            carbon_aware=rng.random() < 0.5,
            latency_slo_ms=rng.choice([None, 3000.0]),
            cost_mode=rng.choice(["aggressive", "balanced", "quality_first"]),
        )
        tier = rng.choice(["fast", "balanced", "high"])
        reference = score_candidates(
            filter_candidates(candidates, request, route="r"),
            request,
            tier=tier,
            stats=latency.get,
        )
        fast = rank(candidates, request, route="r", tier=tier, stats=latency.get).best(limit=60)
        assert [r.deployment.id for r in fast] == [r.deployment.id for r in reference]
        assert [r.score for r in fast] == pytest.approx([r.score for r in reference])


def test_decision_explains_itself():
    engine = RoutingEngine(rng=random.Random(1))
    decision = engine.decide(
        ALL + [dep("sick")],
        req(max_cost_usd=1.0),
        RouteConfig("auto", strategy="score", tier="balanced"),
        health=lambda d: d.public_name != "sick",
    )
    data = decision.to_dict()
    assert data["model"] == decision.model and data["provider"] == "prov"
    assert data["route"] == "auto" and data["strategy"] == "score"
    assert 0 <= data["confidence"] <= 1
    assert data["estimated_cost_usd"] > 0
    assert [r["model"] for r in data["ranking"]][0] == decision.model
    assert len(data["ranking"]) == 3
    assert any(line.startswith("chose ") for line in decision.reasoning)
    assert any("sick" in line for line in decision.reasoning)
    headers = dict(decision.headers())
    assert headers[b"x-atp-model"] == decision.model.encode()
    assert headers[b"x-atp-route"] == b"auto"
    assert float(headers[b"x-atp-cost-usd"]) == pytest.approx(decision.estimated_cost_usd, abs=1e-8)
    assert decision.deployments[0].public_name == decision.model


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("cheapest", "cheap"), ("ordered", "frontier"), ("lowest_latency", "cheap")],
)
def test_strategies_order_the_candidates(strategy, expected):
    stats = stats_of({"frontier": (3000, 5000, 0), "mid": (1200, 2000, 0), "cheap": (300, 500, 0)})
    decision = RoutingEngine().decide(ALL, req(), RouteConfig("r", strategy=strategy), stats=stats)
    assert decision.model == expected
    assert len(decision.ranking) == 3


def test_least_inflight_picks_the_idle_deployment():
    busy = {"frontier": 5, "mid": 0, "cheap": 9}
    decision = RoutingEngine().decide(
        ALL,
        req(),
        RouteConfig("r", strategy="least_inflight"),
        inflight=lambda d: busy[d.public_name],
    )
    assert decision.model == "mid"


def test_requested_tier_overrides_the_route_tier():
    decision = RoutingEngine().decide(
        ALL,
        req(tier="high", sources={"quality": "header"}),
        RouteConfig("atp/fast", strategy="score", tier="fast"),
    )
    assert decision.tier == "high"
    assert decision.model == "frontier"
    assert "quality tier high requested (header)" in decision.reasoning


def test_prepared_candidates_are_reused_for_a_pool_rebuilt_per_request():
    from apps.routing.engine.ranking import candidate_set

    first = candidate_set(list(ALL))
    assert candidate_set(list(ALL)) is first
    assert candidate_set([MID, CHEAP]) is not first
    # The cached static filter still explains itself on a hit.
    eu = dep("eu-model", region="eu-west-1")
    for _ in range(2):
        lines: list[str] = []
        rank([*ALL, eu], req(regions=("eu",)), route="r", tier="balanced", reasoning=lines)
        assert any("outside region eu" in line for line in lines)
