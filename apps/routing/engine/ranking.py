"""The decision path's filter-and-score pass over a route's candidates, built for speed.

The rules are those of `scoring` (filters, weights, score formula); this module only
arranges the work so that 200 candidates cost well under a millisecond in plain Python:

- A route's candidate list is turned once into rows of per-deployment constants (float
  per-token prices, carbon score, capabilities, region, context window), cached by the
  identities of its deployments (a new snapshot brings new objects, so a new entry).
- The filters that depend only on the caller and the request's shape (API key, policy,
  capabilities, region, preferred-region bonus) are evaluated once per combination and
  cached on the candidate set with their reasoning lines. Pass the same policy object for
  the same policy version (a compiled per-tenant predicate): it is part of the cache key.
- Per request only health, context window and cost are checked, then every survivor is
  scored in one loop over plain lists and only the best MAX_RANKED become `Ranked`
  objects; any other survivor can be had by model name (the bandit asks for arms it has
  learnt about that did not make the list).
- When nothing survives, the readable reference `scoring.filter_candidates` runs to raise
  the error that names the constraint.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence

from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.scoring import (
    CARBON_SCALE,
    DEFAULT_LATENCY_MS,
    PREFERRED_REGION_BONUS,
    SLO_PENALTY,
    HealthCheck,
    PolicyCheck,
    Ranked,
    StatsProvider,
    _names,
    _rates,
    _removal_line,
    filter_candidates,
    region_matches,
    tier_weights,
)
from apps.routing.snapshot import DeploymentInfo, KeyInfo

MAX_RANKED = 16
MAX_STATIC_ENTRIES = 512
MAX_CANDIDATE_SETS = 1024


class _Row:
    __slots__ = ("dep", "id", "name", "rate_in", "rate_out", "carbon", "caps", "region", "window")

    def __init__(self, dep: DeploymentInfo) -> None:
        rate_in, rate_out, intensity = _rates(dep)
        self.dep = dep
        self.id = dep.id
        self.name = dep.public_name
        self.rate_in = rate_in
        self.rate_out = rate_out
        self.carbon = max(0.0, 1.0 - intensity / CARBON_SCALE)
        self.caps = dep.capabilities
        self.region = dep.region
        self.window = dep.context_window


class CandidateSet:
    """A route's candidates prepared for fast filtering and scoring."""

    __slots__ = ("source", "rows", "_static")

    def __init__(self, candidates: Sequence[DeploymentInfo]) -> None:
        self.source = candidates
        self.rows = [_Row(dep) for dep in candidates]
        self._static: dict[tuple, tuple[list[tuple[_Row, float]], list[str]]] = {}

    def static_survivors(
        self,
        request: RoutingRequest,
        policy: PolicyCheck | None,
        key: KeyInfo | None,
    ) -> tuple[list[tuple[_Row, float]], list[str]]:
        """(rows with their preferred-region bonus, reasoning lines) after the filters
        that depend on the caller and the request's shape only."""
        needs = request.required_capabilities
        regions = request.regions
        preferred = request.preferred_regions
        cache_key = (policy, key, needs, regions, preferred)
        cached = self._static.get(cache_key)
        if cached is not None:
            return cached
        removed: dict[str, list[DeploymentInfo]] = {}
        reasons: dict[str, str] = {}
        rows: list[tuple[_Row, float]] = []
        for row in self.rows:
            dep = row.dep
            if key is not None and not key.may_use(row.name):
                removed.setdefault("key", []).append(dep)
                continue
            if policy is not None:
                reason = policy(dep)
                if reason:
                    removed.setdefault("policy", []).append(dep)
                    reasons.setdefault(reason, row.name)
                    continue
            if needs and row.caps and not needs <= row.caps:
                removed.setdefault("capabilities", []).append(dep)
                continue
            if regions and not region_matches(row.region, regions):
                removed.setdefault("region", []).append(dep)
                continue
            bonus = (
                PREFERRED_REGION_BONUS
                if preferred and region_matches(row.region, preferred)
                else 0.0
            )
            rows.append((row, bonus))
        lines = [_removal_line(c, deps, request, reasons) for c, deps in removed.items()]
        if len(self._static) >= MAX_STATIC_ENTRIES:
            self._static.clear()
        self._static[cache_key] = (rows, lines)
        return rows, lines


_SETS: dict[int, CandidateSet] = {}
_SETS_BY_CONTENT: dict[tuple[int, ...], CandidateSet] = {}


def candidate_set(candidates: Sequence[DeploymentInfo]) -> CandidateSet:
    """The prepared form of a candidate list.

    Found by the list object first, then by its content (the identities of its
    deployments, which a snapshot keeps), so a pool rebuilt per request from the same
    snapshot still hits. An entry holds its deployments, so their ids cannot be reused by
    other objects while it is cached.
    """
    cached = _SETS.get(id(candidates))
    if cached is not None and cached.source is candidates:
        return cached
    content = tuple(map(id, candidates))
    prepared = _SETS_BY_CONTENT.get(content)
    if prepared is None:
        if len(_SETS_BY_CONTENT) >= MAX_CANDIDATE_SETS:
            _SETS_BY_CONTENT.clear()
        prepared = CandidateSet(candidates)
        _SETS_BY_CONTENT[content] = prepared
    if len(_SETS) >= MAX_CANDIDATE_SETS:
        _SETS.clear()
    if prepared.source is candidates:
        _SETS[id(candidates)] = prepared
    return prepared


class Ranking:
    """Every survivor's estimates and score, in plain lists; `Ranked` objects on demand."""

    __slots__ = ("rows", "costs", "latencies", "p95s", "errors", "scores", "_by_name")

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.costs: list[float] = []
        self.latencies: list[float] = []
        self.p95s: list[float] = []
        self.errors: list[float] = []
        self.scores: list[float] = []
        self._by_name: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def ranked(self, i: int) -> Ranked:
        row = self.rows[i]
        return Ranked(
            row.dep,
            self.scores[i],
            self.costs[i],
            self.latencies[i],
            self.p95s[i],
            self.errors[i],
            row.dep.quality,
        )

    def best(
        self,
        order: str = "score",
        *,
        limit: int = MAX_RANKED,
        rng: random.Random | None = None,
        inflight: Callable[[DeploymentInfo], int] | None = None,
    ) -> list[Ranked]:
        """The first `limit` survivors by `order`: score (best first), cost, latency, route
        order, weighted (random by deployment weight) or inflight."""
        n = len(self.rows)
        idx = range(n)
        if order == "score":
            chosen = heapq.nlargest(limit, idx, key=self.scores.__getitem__)
        elif order == "cost":
            chosen = heapq.nsmallest(limit, idx, key=self.costs.__getitem__)
        elif order == "latency":
            chosen = heapq.nsmallest(limit, idx, key=self.latencies.__getitem__)
        elif order == "weighted":
            rng = rng or random.Random()
            keys = [rng.random() ** (1.0 / max(r.dep.weight, 1)) for r in self.rows]
            chosen = heapq.nlargest(limit, idx, key=keys.__getitem__)
        elif order == "inflight" and inflight is not None:
            counts = [inflight(r.dep) for r in self.rows]
            chosen = heapq.nsmallest(limit, idx, key=lambda i: (counts[i], -self.scores[i]))
        else:  # route order
            chosen = list(idx)[:limit]
        return [self.ranked(i) for i in chosen]

    def by_model(self, model: str) -> Ranked | None:
        """The best-scored survivor deployment of `model`."""
        if self._by_name is None:
            by_name: dict[str, int] = {}
            scores = self.scores
            for i, row in enumerate(self.rows):
                j = by_name.get(row.name)
                if j is None or scores[i] > scores[j]:
                    by_name[row.name] = i
            self._by_name = by_name
        i = self._by_name.get(model)
        return None if i is None else self.ranked(i)

    def models(self) -> set[str]:
        return {row.name for row in self.rows}


def rank(
    candidates: Sequence[DeploymentInfo],
    request: RoutingRequest,
    *,
    route: str,
    tier: str,
    health: HealthCheck | None = None,
    stats: StatsProvider | None = None,
    policy: PolicyCheck | None = None,
    key: KeyInfo | None = None,
    reasoning: list[str] | None = None,
) -> Ranking:
    """Filter and score `candidates` for `request`; raises when nothing survives."""
    prepared = candidate_set(candidates)
    static_rows, lines = prepared.static_survivors(request, policy, key)
    if reasoning is not None:
        reasoning.extend(lines)
    window = request.min_context_window
    max_cost = request.max_cost_usd
    prompt_tokens = request.prompt_tokens
    output_tokens = request.expected_output_tokens
    ranking = Ranking()
    rows, costs, latencies, p95s, errors = (
        ranking.rows,
        ranking.costs,
        ranking.latencies,
        ranking.p95s,
        ranking.errors,
    )
    bonuses: list[float] = []
    unhealthy: list[DeploymentInfo] = []
    small: list[DeploymentInfo] = []
    dear: list[DeploymentInfo] = []
    for row, bonus in static_rows:
        if health is not None and not health(row.dep):
            unhealthy.append(row.dep)
            continue
        if window and row.window < window:
            small.append(row.dep)
            continue
        cost = prompt_tokens * row.rate_in + output_tokens * row.rate_out
        if max_cost is not None and cost > max_cost:
            dear.append(row.dep)
            continue
        observed = stats(row.id) if stats is not None else None
        rows.append(row)
        costs.append(cost)
        bonuses.append(bonus)
        if observed is None:
            latencies.append(DEFAULT_LATENCY_MS)
            p95s.append(DEFAULT_LATENCY_MS * 2)
            errors.append(0.0)
        else:
            latencies.append(observed.ewma_latency_ms if observed.ewma_latency_ms > 1 else 1.0)
            p95s.append(observed.p95_latency_ms)
            errors.append(observed.error_rate)
    if reasoning is not None:
        if unhealthy:
            reasoning.append(f"excluded {_names(unhealthy)}: circuit open or unhealthy")
        if small:
            reasoning.append(f"excluded {_names(small)}: context window below {window} tokens")
        if dear:
            reasoning.append(f"excluded {_names(dear)}: estimated cost above ${max_cost:g}")
    if not rows:
        # The reference filter names the constraint that left nothing.
        filter_candidates(candidates, request, route=route, health=health, policy=policy, key=key)
        raise AssertionError("filter_candidates returned survivors the fast path removed")
    _score(ranking, bonuses, request, tier)
    return ranking


def _score(ranking: Ranking, bonuses: list[float], request: RoutingRequest, tier: str) -> None:
    wq, wc, wl, we, wcarbon = tier_weights(tier, request.cost_mode, request.carbon_aware)
    log = math.log
    costs, latencies = ranking.costs, ranking.latencies
    cost_low = log(max(min(costs), 1e-12))
    cost_span = log(max(max(costs), 1e-12)) - cost_low
    cost_inv = 1.0 / cost_span if cost_span > 1e-9 else 0.0
    lat_low = log(min(latencies))
    lat_span = log(max(latencies)) - lat_low
    lat_inv = 1.0 / lat_span if lat_span > 1e-9 else 0.0
    slo = request.latency_slo_ms
    p95s, errors = ranking.p95s, ranking.errors
    scores = ranking.scores
    for i, row in enumerate(ranking.rows):
        score = (
            wq * row.dep.quality
            + wc * (1.0 - (log(costs[i] if costs[i] > 1e-12 else 1e-12) - cost_low) * cost_inv)
            + wl * (1.0 - (log(latencies[i]) - lat_low) * lat_inv)
            + we * (1.0 - errors[i])
            + wcarbon * row.carbon
            + bonuses[i]
        )
        if slo is not None and p95s[i] > slo:
            score -= SLO_PENALTY
        scores.append(score)


def score_rows(
    survivors: list[tuple[DeploymentInfo, float]],
    request: RoutingRequest,
    *,
    tier: str,
    stats: StatsProvider | None,
) -> list[Ranked]:
    """Score already filtered survivors (the reference path): every one, best first."""
    ranking = Ranking()
    bonuses = []
    preferred = request.preferred_regions
    for dep, cost in survivors:
        row = _Row(dep)
        observed = stats(dep.id) if stats is not None else None
        ranking.rows.append(row)
        ranking.costs.append(cost)
        bonuses.append(
            PREFERRED_REGION_BONUS if preferred and region_matches(dep.region, preferred) else 0.0
        )
        if observed is None:
            ranking.latencies.append(DEFAULT_LATENCY_MS)
            ranking.p95s.append(DEFAULT_LATENCY_MS * 2)
            ranking.errors.append(0.0)
        else:
            ranking.latencies.append(max(observed.ewma_latency_ms, 1.0))
            ranking.p95s.append(observed.p95_latency_ms)
            ranking.errors.append(observed.error_rate)
    if not survivors:
        return []
    _score(ranking, bonuses, request, tier)
    return ranking.best("score", limit=len(survivors))
