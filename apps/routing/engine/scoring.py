"""Candidate filtering and scoring, and the RouteDecision that explains the choice.

Filters, in order, each adding a reasoning line naming what it removed: health (closed or
half-open circuit, through an injected `health(dep)`), policy (an injected
`policy(dep) -> reason | None`) and the key's allow-list, required capabilities, region
(data residency), context window (prompt tokens plus max output), estimated cost against
`max_cost_usd`. When nothing survives the error names the constraint that removed the
last candidates.

Each survivor gets a score in [0, 1]:

    score = w_q * quality + w_c * cost_score + w_l * latency_score + w_e * (1 - error_rate)
            [+ w_carbon * carbon_score when carbon-aware] [+ 0.05 in a preferred region]
            [- 0.25 when its p95 latency exceeds the request's latency SLO]

`cost_score` and `latency_score` place a candidate between the cheapest (1) and the
dearest (0) survivor on a log scale, because prices span three orders of magnitude and a
linear scale would leave every model but the dearest near 1. Weights per tier, divided by
their sum after the cost mode scales the cost weight:

| tier | quality | cost | latency | errors |
| --- | --- | --- | --- | --- |
| fast | 0.25 | 0.25 | 0.40 | 0.10 |
| balanced | 0.40 | 0.35 | 0.15 | 0.10 |
| high | 0.65 | 0.10 | 0.10 | 0.15 |

Cost mode multiplies the cost weight: aggressive x2, balanced x1, quality_first x0.25.
Carbon awareness adds a weight of 0.15 on `1 - intensity / 800` (grams CO2 per kWh of the
deployment's region, from CARBON_INTENSITY below).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.regions import region_matches
from apps.routing.snapshot import DeploymentInfo, KeyInfo
from atp_site.lib.errors import ATPError, InvalidRequest, PermissionDenied

# Approximate annual average grid carbon intensity, grams CO2 per kWh, by cloud region
# prefix (Ember and Electricity Maps yearly figures, rounded). The longest matching
# prefix wins; unknown regions get DEFAULT_CARBON_INTENSITY, about the world average.
CARBON_INTENSITY: dict[str, float] = {
    "us-east": 380.0,
    "us-central": 430.0,
    "us-west": 240.0,
    "us": 370.0,
    "ca": 120.0,
    "sa-east": 100.0,
    "eu-north": 40.0,
    "eu-west": 280.0,
    "eu-south": 330.0,
    "eu-central": 380.0,
    "eu": 250.0,
    "uk": 200.0,
    "fr": 60.0,
    "ch": 40.0,
    "ap-northeast": 460.0,
    "ap-southeast": 470.0,
    "ap-south": 700.0,
    "ap": 500.0,
    "au": 600.0,
    "in": 700.0,
    "cn": 550.0,
    "local": 0.0,
}
DEFAULT_CARBON_INTENSITY = 450.0
CARBON_SCALE = 800.0  # intensity at which the carbon score reaches 0

# (quality, cost, latency, errors) per tier.
TIER_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "fast": (0.25, 0.25, 0.40, 0.10),
    "balanced": (0.40, 0.35, 0.15, 0.10),
    "high": (0.65, 0.10, 0.10, 0.15),
}
COST_MODE_FACTOR = {"aggressive": 2.0, "balanced": 1.0, "quality_first": 0.25}
CARBON_WEIGHT = 0.15
PREFERRED_REGION_BONUS = 0.05
SLO_PENALTY = 0.25
# Latency assumed for a deployment nothing has been observed on yet.
DEFAULT_LATENCY_MS = 1500.0


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """Observed behaviour of one deployment: latency EWMA and p95, error rate (0..1)."""

    ewma_latency_ms: float
    p95_latency_ms: float
    error_rate: float


StatsProvider = Callable[[str], "DeploymentStats | None"]
HealthCheck = Callable[[DeploymentInfo], bool]
PolicyCheck = Callable[[DeploymentInfo], "str | None"]


def carbon_intensity(region: str) -> float:
    """Grams CO2 per kWh for a region name, by longest known prefix."""
    region = (region or "").lower()
    best, best_len = DEFAULT_CARBON_INTENSITY, -1
    for prefix, value in CARBON_INTENSITY.items():
        if (region == prefix or region.startswith(prefix + "-")) and len(prefix) > best_len:
            best, best_len = value, len(prefix)
    return best


# Per-token float prices by deployment id; Decimal maths per request would cost more than
# the rest of the scoring. The entry is reused only while the Prices object is the same.
_PRICE_CACHE: dict[str, tuple[object, float, float, float]] = {}


def _rates(dep: DeploymentInfo) -> tuple[float, float, float]:
    entry = _PRICE_CACHE.get(dep.id)
    if entry is None or entry[0] is not dep.prices:
        if len(_PRICE_CACHE) > 50_000:
            _PRICE_CACHE.clear()
        entry = (
            dep.prices,
            float(dep.prices.input) / 1e6,
            float(dep.prices.output) / 1e6,
            carbon_intensity(dep.region),
        )
        _PRICE_CACHE[dep.id] = entry
    return entry[1], entry[2], entry[3]


def estimate_cost(dep: DeploymentInfo, request: RoutingRequest) -> float:
    """USD for the request's prompt tokens and expected output at the deployment's prices."""
    rate_in, rate_out, _ = _rates(dep)
    return request.prompt_tokens * rate_in + request.expected_output_tokens * rate_out


@dataclass(slots=True)
class Ranked:
    """One surviving candidate with its estimates and score."""

    deployment: DeploymentInfo
    score: float
    cost_usd: float
    latency_ms: float
    p95_latency_ms: float
    error_rate: float
    quality: float

    @property
    def model(self) -> str:
        return self.deployment.public_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.deployment.public_name,
            "provider": self.deployment.provider_name,
            "deployment": self.deployment.id,
            "region": self.deployment.region,
            "score": round(self.score, 4),
            "estimated_cost_usd": round(self.cost_usd, 8),
            "estimated_latency_ms": round(self.latency_ms, 1),
            "quality": round(self.quality, 3),
            "error_rate": round(self.error_rate, 4),
        }


@dataclass(slots=True)
class RouteDecision:
    """The router's choice, its estimates and why; `ranking[0]` is the choice and the rest
    are the fallbacks in the order to try them. `to_dict` shows the ranking by score, with
    the choice flagged where its score puts it."""

    route: str
    strategy: str
    tier: str
    provider: str
    model: str
    deployment_id: str
    estimated_cost_usd: float
    estimated_latency_ms: float
    confidence: float
    reasoning: list[str]
    ranking: list[Ranked]
    task_cluster: int | None = None
    explored: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The classified request (clusters.TaskMatch) the engine learns from after the answer.
    task: Any = field(default=None, repr=False)
    # A learned choice's (utilities, posterior spreads) by model, for per-entry confidence.
    learnt: tuple[dict[str, float], dict[str, float]] | None = field(default=None, repr=False)

    @property
    def deployments(self) -> list[DeploymentInfo]:
        """Deployments in try order: the choice, then its fallbacks."""
        return [r.deployment for r in self.ranking]

    def to_dict(self, *, limit: int = 10, detail: bool = False) -> dict[str, Any]:
        """The decision as callers and the request log see it. `ranking` holds the first
        `limit` entries of the try order, sorted by their `score` (best first); each
        carries its `rank`, whether it is the choice (`chosen`, and `explored` when the
        choice was made to explore) and its own `confidence`, and with `detail` its own
        `reasoning`. A learned route's `score` is the learnt utility it chose by (the
        weighted score is then `weighted_score`); every other route's is the weighted score
        (strategies such as `cheapest` choose by their own rule, so the choice may sit
        below the top)."""
        return {
            "route": self.route,
            "strategy": self.strategy,
            "tier": self.tier,
            "provider": self.provider,
            "model": self.model,
            "deployment": self.deployment_id,
            "estimated_cost_usd": round(self.estimated_cost_usd, 8),
            "estimated_latency_ms": round(self.estimated_latency_ms, 1),
            "confidence": round(self.confidence, 3),
            "task_cluster": self.task_cluster,
            "explored": self.explored,
            "reasoning": list(self.reasoning),
            "ranking": self.ranked_entries(limit=limit, detail=detail),
            **self.extra,
        }

    def _score_of(self) -> Callable[[Ranked], float]:
        if self.learnt is None:
            return lambda entry: entry.score
        means = self.learnt[0]
        return lambda entry: means.get(entry.model, -math.inf)

    def ranked_entries(self, *, limit: int = 10, detail: bool = False) -> list[dict[str, Any]]:
        score_of = self._score_of()
        shown = sorted(self.ranking[:limit], key=lambda r: (-score_of(r), -r.score))
        chosen = self.ranking[0] if self.ranking else None
        confidence = self._confidences(score_of)
        out = []
        for position, entry in enumerate(shown, start=1):
            item = entry.to_dict()
            if self.learnt is not None:
                item["weighted_score"] = item["score"]
                item["score"] = round(score_of(entry), 4)
            is_chosen = entry is chosen
            item["rank"] = position
            item["chosen"] = is_chosen
            item["explored"] = is_chosen and self.explored
            item["confidence"] = round(confidence(entry), 3)
            if detail:
                item["reasoning"] = self._reasons_for(entry, chosen, score_of)
            out.append(item)
        return out

    def _confidences(self, score_of: Callable[[Ranked], float]) -> Callable[[Ranked], float]:
        """How sure the router is that an entry is the best choice: for a learned route,
        the probability that its model's learnt utility beats the best other model's;
        otherwise its score's lead over the best other entry (0.5 a tie, 1 a lead of 0.1,
        0 a gap of 0.1 behind), as `score_confidence` measures the choice."""
        if self.learnt is not None:
            from apps.routing.engine.bandit import model_confidence

            means, spreads = self.learnt

            def learnt(entry: Ranked) -> float:
                if entry.model in means:
                    return model_confidence(means, spreads, entry.model)
                return 0.0

            return learnt
        top = sorted(self.ranking, key=lambda r: -r.score)[:2]

        def scored(entry: Ranked) -> float:
            others = [r for r in top if r is not entry]
            if not others:
                return 1.0
            return max(0.0, min(1.0, 0.5 + 5.0 * (entry.score - others[0].score)))

        return scored

    def _reasons_for(
        self, entry: Ranked, chosen: Ranked | None, score_of: Callable[[Ranked], float]
    ) -> list[str]:
        lines = [
            f"weighted score {entry.score:.3f}: quality {entry.quality:.2f}, "
            f"est. ${entry.cost_usd:.6f}, ~{entry.latency_ms:.0f} ms, "
            f"error rate {entry.error_rate:.0%}"
        ]
        if self.learnt is not None and entry.model in self.learnt[0]:
            cluster = (
                f" in task cluster {self.task_cluster}" if self.task_cluster is not None else ""
            )
            lines.append(f"learnt utility {self.learnt[0][entry.model]:.3f}{cluster}")
        if entry is chosen:
            if self.explored:
                lines.append(
                    "chosen to explore: the route spends a bounded share of requests on "
                    "models it knows little about"
                )
            else:
                lines.append(f"chosen by strategy {self.strategy}")
            return lines
        if chosen is None:
            return lines
        lines.append(
            f"not chosen: score {score_of(entry) - score_of(chosen):+.3f} against {chosen.model}"
        )
        if chosen.cost_usd > 0 and entry.cost_usd != chosen.cost_usd:
            ratio = entry.cost_usd / chosen.cost_usd
            lines.append(
                f"costs {ratio:.2f}x the choice"
                if ratio > 1
                else f"costs {1 - ratio:.0%} less than the choice"
            )
        if entry.quality != chosen.quality:
            lines.append(f"quality {entry.quality - chosen.quality:+.2f} against the choice")
        return lines

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The x-atp-* response headers (the estimated cost until the real one is known)."""
        return [
            (b"x-atp-provider", self.provider.encode()),
            (b"x-atp-model", self.model.encode()),
            (b"x-atp-route", self.route.encode()),
            (b"x-atp-cost-usd", f"{self.estimated_cost_usd:.8f}".encode()),
        ]


def _names(deps: Sequence[DeploymentInfo], limit: int = 4) -> str:
    names = list(dict.fromkeys(d.public_name for d in deps))
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text


def _nothing_left(
    route: str, constraint: str, message: str, *, param: str | None = None
) -> ATPError:
    details = {"route": route, "eliminated_by": constraint}
    if constraint == "health":
        return ATPError(
            message,
            status=503,
            type="api_error",
            code="no_healthy_candidate",
            retryable=True,
            details=details,
        )
    if constraint == "policy":
        # Governance (data residency, local-only, excluded providers) left nothing.
        return PermissionDenied(message, code="region_unavailable", details=details)
    if constraint == "key":
        return PermissionDenied(message, code="no_permitted_candidate", details=details)
    return InvalidRequest(message, code="no_candidate", param=param, details=details)


def filter_candidates(
    candidates: Sequence[DeploymentInfo],
    request: RoutingRequest,
    *,
    route: str,
    health: HealthCheck | None = None,
    policy: PolicyCheck | None = None,
    key: KeyInfo | None = None,
    reasoning: list[str] | None = None,
) -> list[tuple[DeploymentInfo, float]]:
    """The candidates that may serve `request`, each with its estimated cost.

    Appends one reasoning line per filter that removed something; raises when nothing is
    left, naming the constraint that removed the last candidates.
    """
    if reasoning is None:
        reasoning = []
    if not candidates:
        raise _nothing_left(route, "route", f"Route '{route}' has no candidates.", param="model")
    needs = request.required_capabilities
    regions = request.regions
    window = request.min_context_window
    max_cost = request.max_cost_usd
    prompt_tokens = request.prompt_tokens
    output_tokens = request.expected_output_tokens
    removed: dict[str, list[DeploymentInfo]] = {}
    policy_reasons: dict[str, str] = {}
    survivors: list[tuple[DeploymentInfo, float]] = []
    cheapest_removed = math.inf
    for dep in candidates:
        if health is not None and not health(dep):
            removed.setdefault("health", []).append(dep)
            continue
        if key is not None and not key.may_use(dep.public_name):
            removed.setdefault("key", []).append(dep)
            continue
        if policy is not None:
            reason = policy(dep)
            if reason:
                removed.setdefault("policy", []).append(dep)
                policy_reasons.setdefault(reason, dep.public_name)
                continue
        if needs and dep.capabilities and not needs <= dep.capabilities:
            removed.setdefault("capabilities", []).append(dep)
            continue
        if regions and not region_matches(dep.region, regions):
            removed.setdefault("region", []).append(dep)
            continue
        if window and dep.context_window < window:
            removed.setdefault("context_window", []).append(dep)
            continue
        rate_in, rate_out, _ = _rates(dep)
        cost = prompt_tokens * rate_in + output_tokens * rate_out
        if max_cost is not None and cost > max_cost:
            removed.setdefault("max_cost_usd", []).append(dep)
            cheapest_removed = min(cheapest_removed, cost)
            continue
        survivors.append((dep, cost))

    last = None
    for constraint, deps in removed.items():
        last = constraint
        reasoning.append(_removal_line(constraint, deps, request, policy_reasons))
    if survivors:
        return survivors
    message = _empty_message(route, last or "route", request, cheapest_removed, policy_reasons)
    param = {
        "capabilities": "atp.required_capabilities",
        "region": "atp.region",
        "context_window": "messages",
        "max_cost_usd": "atp.max_cost_usd",
    }.get(last or "")
    raise _nothing_left(route, last or "route", message, param=param)


def _removal_line(
    constraint: str,
    deps: list[DeploymentInfo],
    request: RoutingRequest,
    policy_reasons: dict[str, str],
) -> str:
    names = _names(deps)
    if constraint == "health":
        return f"excluded {names}: circuit open or unhealthy"
    if constraint == "key":
        return f"excluded {names}: not allowed for this API key"
    if constraint == "policy":
        return f"excluded {names}: denied by policy ({'; '.join(list(policy_reasons)[:3])})"
    if constraint == "capabilities":
        return f"excluded {names}: lacks {', '.join(sorted(request.required_capabilities))}"
    if constraint == "region":
        return f"excluded {names}: outside region {', '.join(request.regions)}"
    if constraint == "context_window":
        return f"excluded {names}: context window below {request.min_context_window} tokens"
    return f"excluded {names}: estimated cost above ${request.max_cost_usd:g}"


def _empty_message(
    route: str,
    constraint: str,
    request: RoutingRequest,
    cheapest: float,
    policy_reasons: dict[str, str],
) -> str:
    prefix = f"No model on route '{route}'"
    if constraint == "health":
        return f"{prefix} is available: every candidate's circuit is open or unhealthy."
    if constraint == "key":
        return f"{prefix} is allowed for this API key."
    if constraint == "policy":
        return f"{prefix} is allowed by policy: {'; '.join(list(policy_reasons)[:3])}."
    if constraint == "capabilities":
        needs = ", ".join(sorted(request.required_capabilities))
        return f"{prefix} supports what this request needs: {needs}."
    if constraint == "region":
        return f"{prefix} runs in region {', '.join(request.regions)}."
    if constraint == "context_window":
        return (
            f"{prefix} has a context window of {request.min_context_window} tokens "
            "(prompt plus max output)."
        )
    if constraint == "max_cost_usd":
        return (
            f"{prefix} fits max_cost_usd={request.max_cost_usd:g}: the cheapest would cost "
            f"an estimated ${cheapest:.6f}."
        )
    return f"{prefix} can serve this request."


def tier_weights(tier: str, cost_mode: str, carbon_aware: bool) -> tuple[float, ...]:
    """(quality, cost, latency, errors, carbon) weights summing to 1."""
    wq, wc, wl, we = TIER_WEIGHTS.get(tier, TIER_WEIGHTS["balanced"])
    wc *= COST_MODE_FACTOR.get(cost_mode, 1.0)
    wcarbon = CARBON_WEIGHT if carbon_aware else 0.0
    total = wq + wc + wl + we + wcarbon
    return (wq / total, wc / total, wl / total, we / total, wcarbon / total)


def score_candidates(
    survivors: list[tuple[DeploymentInfo, float]],
    request: RoutingRequest,
    *,
    tier: str,
    stats: StatsProvider | None = None,
) -> list[Ranked]:
    """Score the survivors of `filter_candidates`, best first (formula in the module
    docstring; `ranking` holds the one implementation the decision path also uses)."""
    from apps.routing.engine.ranking import score_rows

    return score_rows(survivors, request, tier=tier, stats=stats)


def score_confidence(ranking: list[Ranked]) -> float:
    """0.5 when the top two tie, 1.0 when the winner leads by 0.1 or more."""
    if len(ranking) < 2:
        return 1.0
    return min(1.0, 0.5 + 5.0 * (ranking[0].score - ranking[1].score))


def explain_choice(chosen: Ranked, ranking: list[Ranked], request: RoutingRequest) -> list[str]:
    """Short reasons for the choice: its score, and how it compares with the others."""
    lines = [
        f"chose {chosen.model} on {chosen.deployment.provider_name}: score {chosen.score:.3f}, "
        f"quality {chosen.quality:.2f}, est. ${chosen.cost_usd:.6f}, "
        f"~{chosen.latency_ms:.0f} ms"
    ]
    if len(ranking) > 1:
        cheapest = min(ranking, key=lambda r: r.cost_usd)
        best_quality = max(ranking, key=lambda r: r.quality)
        if cheapest is not chosen:
            lines.append(
                f"cheapest was {cheapest.model} (est. ${cheapest.cost_usd:.6f}, "
                f"quality {cheapest.quality:.2f})"
            )
        if best_quality is not chosen and best_quality.cost_usd > 0:
            share = chosen.cost_usd / best_quality.cost_usd
            lines.append(
                f"highest quality was {best_quality.model} ({best_quality.quality:.2f}) "
                f"at {share:.0%} of its cost"
            )
    if request.latency_slo_ms is not None and chosen.p95_latency_ms > request.latency_slo_ms:
        lines.append(f"p95 {chosen.p95_latency_ms:.0f} ms exceeds the SLO; nothing faster fit")
    if request.carbon_aware:
        lines.append(f"carbon intensity {_rates(chosen.deployment)[2]:.0f} gCO2/kWh")
    return lines
