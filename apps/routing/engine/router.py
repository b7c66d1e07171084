"""The routing engine: filter, score, classify the task, choose, explain; learn afterwards.

`RoutingEngine.decide` is synchronous and works on in-memory data only (the snapshot's
deployments, the injected health, stats and policy callables, the task clusters and the
bandit's local statistics), so the data plane calls it inline. Learning happens after the
answer: `learn` (task clusters) and `record_outcome` / `record_feedback` (bandit).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apps.routing.engine.bandit import (
    ContextualBandit,
    MemoryBanditStore,
    RedisBanditStore,
)
from apps.routing.engine.clusters import TaskClusters, TaskMatch
from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.ranking import Ranking, rank
from apps.routing.engine.scoring import (
    HealthCheck,
    PolicyCheck,
    Ranked,
    RouteDecision,
    StatsProvider,
    explain_choice,
    score_confidence,
)
from apps.routing.snapshot import BUILTIN_ROUTES as SNAPSHOT_BUILTIN_ROUTES
from apps.routing.snapshot import DeploymentInfo, KeyInfo

STRATEGIES = (
    "score",
    "learned",
    "ordered",
    "weighted",
    "least_inflight",
    "lowest_latency",
    "cheapest",
)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """What the engine needs of a route (apps.routing.models.Route or a built-in one)."""

    name: str
    strategy: str = "score"
    tier: str = "balanced"
    exploration: bool = True
    exploration_rate: float = 0.1

    @classmethod
    def from_model(cls, route: Any) -> RouteConfig:
        return cls(
            name=route.name,
            strategy=route.strategy,
            tier=route.tier or "balanced",
            exploration=route.exploration,
            exploration_rate=max(0.0, min(1.0, route.exploration_rate)),
        )


# The routes every installation has (defined with the snapshot's), as the engine sees them.
BUILTIN_ROUTES: dict[str, RouteConfig] = {
    name: RouteConfig.from_model(route) for name, route in SNAPSHOT_BUILTIN_ROUTES.items()
}


# strategy -> (Ranking.best order, reasoning line)
_ORDERS = {
    "score": ("score", None),
    "cheapest": ("cost", "strategy cheapest: lowest estimated cost first"),
    "lowest_latency": ("latency", "strategy lowest_latency: lowest observed latency first"),
    "ordered": ("route", "strategy ordered: first available candidate in route order"),
    "weighted": ("weighted", "strategy weighted: random by deployment weight"),
    "least_inflight": ("inflight", "strategy least_inflight: fewest requests in flight first"),
}


class RoutingEngine:
    """Task clusters, the bandit and the decision procedure of one process."""

    def __init__(
        self,
        *,
        store: MemoryBanditStore | None = None,
        clusters: TaskClusters | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rng = rng or random.Random()
        self.clusters = clusters or TaskClusters()
        self.bandit = ContextualBandit(store or MemoryBanditStore(), rng=self.rng)

    @property
    def store(self) -> MemoryBanditStore:
        return self.bandit.store

    def decide(
        self,
        candidates: Sequence[DeploymentInfo],
        request: RoutingRequest,
        route: RouteConfig,
        *,
        health: HealthCheck | None = None,
        stats: StatsProvider | None = None,
        policy: PolicyCheck | None = None,
        key: KeyInfo | None = None,
        inflight: Callable[[DeploymentInfo], int] | None = None,
    ) -> RouteDecision:
        """Choose a deployment for `request` among `candidates` (the route's, in order).

        Raises InvalidRequest / PermissionDenied / a 503 ATPError naming the constraint
        that left nothing to choose from.
        """
        tier = request.tier or route.tier
        reasoning: list[str] = []
        if request.tier and request.tier != route.tier:
            source = request.sources.get("quality", "request")
            reasoning.append(f"quality tier {tier} requested ({source})")
        survivors = rank(
            candidates,
            request,
            route=route.name,
            tier=tier,
            health=health,
            stats=stats,
            policy=policy,
            key=key,
            reasoning=reasoning,
        )
        strategy = route.strategy if route.strategy in STRATEGIES else "score"
        task: TaskMatch | None = None
        explored = False
        learnt = None
        if strategy == "learned":
            task = self.clusters.classify(request.prompt_text)
            parent = self.clusters.parent(task.cluster)
            ranking = self._shortlist(survivors, route.name, task.cluster, parent)
            choice = self.bandit.choose(
                route=route.name,
                cluster=task.cluster,
                ranking=ranking,
                request=request,
                tier=tier,
                exploration=route.exploration,
                exploration_rate=route.exploration_rate,
                parent=parent,
            )
            ranking = [r for r in ranking if r.model == choice.model] + [
                r for r in ranking if r.model != choice.model
            ]
            confidence, explored = choice.confidence, choice.explored
            learnt = (choice.utilities, choice.spreads)
            reasoning.append(
                f"task cluster {task.cluster} ({self.clusters.label(task.cluster)}), "
                f"similarity {task.similarity:.2f}"
            )
            reasoning.extend(choice.reasoning)
        else:
            order, line = _ORDERS.get(strategy, ("score", None))
            if strategy == "least_inflight" and inflight is None:
                order, line = "score", None
            ranking = survivors.best(order, rng=self.rng, inflight=inflight)
            confidence = score_confidence(survivors.best("score", limit=2))
            if line:
                reasoning.append(line)
        chosen = ranking[0]
        reasoning.extend(explain_choice(chosen, ranking, request))
        dep = chosen.deployment
        return RouteDecision(
            route=route.name,
            strategy=strategy,
            tier=tier,
            provider=dep.provider_name,
            model=dep.public_name,
            deployment_id=dep.id,
            estimated_cost_usd=chosen.cost_usd,
            estimated_latency_ms=chosen.latency_ms,
            confidence=confidence,
            reasoning=reasoning,
            ranking=ranking,
            task_cluster=task.cluster if task else None,
            explored=explored,
            task=task,
            learnt=learnt,
        )

    def _shortlist(
        self, survivors: Ranking, route: str, cluster: int, parent: int | None
    ) -> list[Ranked]:
        """The bandit's arms: the best-scored survivors, plus every surviving model it has
        learnt something about in this cluster or its parent."""
        shortlist = survivors.best("score")
        present = {r.model for r in shortlist}
        known = set(self.store.arms(route, cluster))
        if parent is not None:
            known.update(self.store.arms(route, parent))
        for model in known - present:
            extra = survivors.by_model(model)
            if extra is not None:
                shortlist.append(extra)
        return shortlist

    # --- learning, after the answer ----------------------------------------------------------

    def learn(self, decision: RouteDecision) -> None:
        """Let the task clusters learn from the request (about 0.1 ms; after the answer)."""
        if decision.task is not None:
            self.clusters.learn(decision.task)

    async def record_outcome(
        self,
        decision: RouteDecision,
        *,
        model: str | None = None,
        success: bool,
        latency_ms: float,
        cost_usd: float,
        request_id: str | None = None,
        score: float | None = None,
    ) -> None:
        """Feed one call's outcome to the bandit (learned routes only). `model` is the
        model that actually answered when a fallback served instead of the choice."""
        if decision.task_cluster is None:
            return
        await self.bandit.record_outcome(
            route=decision.route,
            cluster=decision.task_cluster,
            model=model or decision.model,
            success=success,
            latency_ms=latency_ms,
            cost_usd=cost_usd,
            request_id=request_id,
            score=score,
        )

    async def record_feedback(
        self, request_id: str, score: float, comment: str | None = None
    ) -> dict[str, Any] | None:
        return await self.bandit.record_feedback(request_id, score, comment)

    async def refresh(self) -> None:
        """Bring the local copy of shared statistics up to date when it is stale, and share
        the task clusters once a minute; makes no network call in between. Await it on the
        async side before `decide`."""
        await self.store.refresh()
        await self.store.publish_clusters(self.clusters.state)


_engine: RoutingEngine | None = None


def get_engine() -> RoutingEngine:
    """The process's engine: Redis-shared statistics when REDIS_URL is set."""
    global _engine
    if _engine is None:
        from django.conf import settings

        url = getattr(settings, "REDIS_URL", "")
        store = RedisBanditStore(url) if url else MemoryBanditStore()
        _engine = RoutingEngine(store=store)
    return _engine


def reset_engine() -> None:
    """Forget the process's engine (tests)."""
    global _engine
    _engine = None
