"""The contextual bandit: per route and task cluster, which model serves best for its cost.

Thompson sampling, chosen over UCB because it copes with feedback that arrives late and in
batches (a grader's score minutes after the answer) without tuning a confidence width, and
because its exploration fades by itself as posteriors narrow.

Each arm (a model on a route, in a task cluster) keeps sums: pulls, failures, feedback
count, feedback score sum and sum of squares, cost and latency. Its utility is

    utility = p_success * quality - cost_weight * cost / budget - latency_weight * latency / ref

- `quality` is the mean feedback (grader or `POST /v1/feedback`) score, starting from a
  prior at the deployment's configured quality worth PRIOR_STRENGTH observations; Thompson
  draws it from a normal posterior whose spread shrinks with the feedback count. In a
  cluster founded at run time, the prior is what the parent cluster learnt about the
  model, worth up to MAX_INHERITED_STRENGTH more observations.
- `p_success` is drawn from Beta(9 + successes, 1 + failures), a 90% prior worth ten
  calls (through its normal approximation, close once a + b >= 10, which the prior makes).
- `cost` is the request's estimated cost on that model (tokens x current price) and
  `budget` the request's `max_cost_usd` or, without one, the priciest candidate's estimate:
  cost relative to what the tier would spend at most. `latency` is the model's observed
  mean latency in this cluster (the deployment's EWMA before any), `ref` the request's
  latency SLO or the tier's reference.
- Weights per tier (cost, latency): fast (0.25, 0.15), balanced (0.15, 0.02), high (0.04,
  0.01); the tenant's cost mode scales the cost weight like the scorer's.

Exploration is bounded: a decision explores when the sampled best differs from the best by
posterior means; once a (route, cluster) has explored `exploration_rate` of its decisions
in this process, it exploits until the share drops. A route with exploration off always
exploits.

Statistics live in a store: in process memory when REDIS_URL is unset, otherwise in Redis
hashes updated with HINCRBYFLOAT in one pipelined round trip per outcome, and read through
a local copy refreshed every BANDIT_REFRESH_SECONDS by the async side of the pipeline, so a
decision never waits on Redis. The request -> (route, cluster, model) map that feedback
needs rides on the same round trip with a TTL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from apps.routing.engine.hints import RoutingRequest
from apps.routing.engine.scoring import COST_MODE_FACTOR, Ranked

logger = logging.getLogger(__name__)

PRIOR_STRENGTH = 2.0
MAX_INHERITED_STRENGTH = 6.0
MIN_INHERITED_FEEDBACK = 5
SUCCESS_PRIOR = (9.0, 1.0)
DEFAULT_QUALITY_VARIANCE = 0.04
MIN_QUALITY_VARIANCE = 0.005
BANDIT_WEIGHTS = {"fast": (0.25, 0.15), "balanced": (0.15, 0.02), "high": (0.04, 0.01)}
TIER_LATENCY_REF_MS = {"fast": 1000.0, "balanced": 5000.0, "high": 20000.0}
BANDIT_REFRESH_SECONDS = 1.0
CLUSTER_PUBLISH_SECONDS = 60.0
FEEDBACK_TTL_SECONDS = 7 * 24 * 3600
MAX_REMEMBERED_REQUESTS = 100_000

FIELDS = (
    "pulls",
    "failures",
    "reward_sum",
    "reward_sq_sum",
    "cost_sum",
    "latency_ms_sum",
    "feedback_count",
)


@dataclass(slots=True)
class ArmStats:
    """Sums learnt about one model on one route and task cluster (BanditArm's fields)."""

    pulls: float = 0.0
    failures: float = 0.0
    reward_sum: float = 0.0
    reward_sq_sum: float = 0.0
    cost_sum: float = 0.0
    latency_ms_sum: float = 0.0
    feedback_count: float = 0.0

    def add(self, deltas: dict[str, float]) -> None:
        for name, value in deltas.items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.feedback_count if self.feedback_count else None

    @property
    def mean_cost(self) -> float | None:
        return self.cost_sum / self.pulls if self.pulls else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.pulls if self.pulls else None


ArmKey = tuple[str, int]  # (route, cluster)


# --- stores -----------------------------------------------------------------------------------


class MemoryBanditStore:
    """Statistics in this process only: the embedded default."""

    shared = False

    def __init__(self) -> None:
        self.stats: dict[ArmKey, dict[str, ArmStats]] = {}
        self._requests: OrderedDict[str, tuple[float, str, int, str]] = OrderedDict()

    def arms(self, route: str, cluster: int) -> dict[str, ArmStats]:
        return self.stats.get((route, cluster)) or {}

    def _apply(self, route: str, cluster: int, model: str, deltas: dict[str, float]) -> None:
        arms = self.stats.setdefault((route, cluster), {})
        arm = arms.get(model)
        if arm is None:
            arm = arms[model] = ArmStats()
        arm.add(deltas)

    def _remember_local(self, request_id: str, route: str, cluster: int, model: str) -> None:
        self._requests[request_id] = (time.monotonic(), route, cluster, model)
        self._requests.move_to_end(request_id)
        while len(self._requests) > MAX_REMEMBERED_REQUESTS:
            self._requests.popitem(last=False)

    def _forget_local(self, request_id: str) -> tuple[str, int, str] | None:
        entry = self._requests.pop(request_id, None)
        if entry is None or time.monotonic() - entry[0] > FEEDBACK_TTL_SECONDS:
            return None
        return entry[1], entry[2], entry[3]

    async def record(
        self,
        route: str,
        cluster: int,
        model: str,
        deltas: dict[str, float],
        *,
        request_id: str | None = None,
    ) -> None:
        self._apply(route, cluster, model, deltas)
        if request_id:
            self._remember_local(request_id, route, cluster, model)

    async def take_request(self, request_id: str) -> tuple[str, int, str] | None:
        """The (route, cluster, model) that served `request_id`, once."""
        return self._forget_local(request_id)

    async def refresh(self, *, force: bool = False) -> None:
        return None

    async def publish_clusters(self, state: Any) -> None:
        """Share this process's task clusters for the persistence job (Redis only)."""
        return

    def published_clusters(self) -> list[dict[str, Any]]:
        return []

    def snapshot(self) -> dict[ArmKey, dict[str, ArmStats]]:
        return {
            key: {m: ArmStats(**asdict(a)) for m, a in arms.items()}
            for key, arms in self.stats.items()
        }

    def seed(self, rows: Iterable[tuple[str, int, str, ArmStats]]) -> int:
        """Load persisted arms where nothing is known yet; returns how many were loaded."""
        loaded = 0
        for route, cluster, model, stats in rows:
            arms = self.stats.setdefault((route, cluster), {})
            if model not in arms:
                arms[model] = stats
                loaded += 1
        return loaded

    def clear(self) -> None:
        self.stats.clear()
        self._requests.clear()


class RedisBanditStore(MemoryBanditStore):
    """Statistics shared by every process through Redis, read from a local copy.

    Layout: one hash per (route, cluster) at `{prefix}:bandit:{route}|{cluster}` with a
    field `{model}|{stat}` per sum; a set `{prefix}:bandit:keys` naming those hashes; and
    `{prefix}:bandit:req:{request_id}` -> JSON [route, cluster, model] with a TTL.
    """

    shared = True

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        super().__init__()
        self.url = url
        self.prefix = (prefix or os.environ.get("ATP_REDIS_PREFIX", "atp")) + ":bandit:"
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._refreshed_at = 0.0
        # Publish the first time the async side runs, then every interval.
        self._published_at = -CLUSTER_PUBLISH_SECONDS

    def _client(self) -> Any:
        import redis.asyncio as aioredis

        # One client per event loop: a redis.asyncio connection belongs to the loop that
        # opened it. The loop is kept with its client so its id cannot be reused meanwhile.
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            if len(self._clients) >= 8:
                self._clients.pop(next(iter(self._clients)))
            client = aioredis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            entry = self._clients[id(loop)] = (loop, client)
        return entry[1]

    def _hash_key(self, route: str, cluster: int) -> str:
        return f"{self.prefix}{route}|{cluster}"

    async def record(
        self,
        route: str,
        cluster: int,
        model: str,
        deltas: dict[str, float],
        *,
        request_id: str | None = None,
    ) -> None:
        # The local copy sees this process's update at once; the next refresh replaces it
        # with Redis's totals, which include it.
        await super().record(route, cluster, model, deltas, request_id=request_id)
        key = self._hash_key(route, cluster)
        pipe = self._client().pipeline(transaction=True)
        for name, value in deltas.items():
            if value:
                pipe.hincrbyfloat(key, f"{model}|{name}", value)
        pipe.sadd(self.prefix + "keys", key)
        if request_id:
            pipe.set(
                f"{self.prefix}req:{request_id}",
                orjson.dumps([route, cluster, model]),
                ex=FEEDBACK_TTL_SECONDS,
            )
        try:
            await asyncio.wait_for(pipe.execute(), timeout=2)
        except Exception:
            logger.warning("bandit update for %s/%s/%s not shared", route, cluster, model)

    async def take_request(self, request_id: str) -> tuple[str, int, str] | None:
        local = self._forget_local(request_id)
        try:
            raw = await asyncio.wait_for(
                self._client().getdel(f"{self.prefix}req:{request_id}"), timeout=2
            )
        except Exception:
            logger.warning("feedback look-up for %s failed", request_id)
            return local
        if raw is None:
            return None
        route, cluster, model = orjson.loads(raw)
        return str(route), int(cluster), str(model)

    async def refresh(self, *, force: bool = False) -> None:
        """Replace the local copy with Redis's totals when it is older than the interval."""
        if not force and time.monotonic() - self._refreshed_at < BANDIT_REFRESH_SECONDS:
            return
        self._refreshed_at = time.monotonic()
        try:
            self.stats = await asyncio.wait_for(self._load(), timeout=2)
        except Exception:
            logger.warning("bandit statistics refresh failed; keeping the local copy")

    async def _load(self) -> dict[ArmKey, dict[str, ArmStats]]:
        client = self._client()
        keys = sorted(
            k.decode() if isinstance(k, bytes) else k
            for k in await client.smembers(self.prefix + "keys")
        )
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        values = await pipe.execute() if keys else []
        return _parse_hashes(self.prefix, keys, values)

    async def publish_clusters(self, state: Any) -> None:
        """Every CLUSTER_PUBLISH_SECONDS, put this process's clusters where the persistence
        job (in another process) finds them: `{prefix}clusters:{host}:{pid}`, with a TTL."""
        if time.monotonic() - self._published_at < CLUSTER_PUBLISH_SECONDS:
            return
        self._published_at = time.monotonic()
        data = state() if callable(state) else state
        try:
            await asyncio.wait_for(
                self._client().set(
                    f"{self.prefix}clusters:{socket.gethostname()}:{os.getpid()}",
                    orjson.dumps(data),
                    ex=int(CLUSTER_PUBLISH_SECONDS * 10),
                ),
                timeout=2,
            )
        except Exception:
            logger.warning("task clusters not published")

    def published_clusters(self) -> list[dict[str, Any]]:
        import redis

        client = redis.from_url(self.url, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}clusters:*", count=100))
            values = client.mget(keys) if keys else []
        finally:
            client.close()
        return [orjson.loads(v) for v in values if v]

    def load_sync(self) -> dict[ArmKey, dict[str, ArmStats]]:
        """Redis's totals read with a blocking client, for the persistence job."""
        import redis

        client = redis.from_url(self.url, socket_timeout=5)
        try:
            keys = sorted(k.decode() for k in client.smembers(self.prefix + "keys"))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            values = pipe.execute() if keys else []
        finally:
            client.close()
        return _parse_hashes(self.prefix, keys, values)

    def snapshot(self) -> dict[ArmKey, dict[str, ArmStats]]:
        return self.load_sync()

    def seed(self, rows: Iterable[tuple[str, int, str, ArmStats]]) -> int:
        """Write persisted arms to Redis where Redis knows nothing of them (HSETNX), so
        processes starting together do not add the same history twice."""
        import redis

        client = redis.from_url(self.url, socket_timeout=5)
        loaded = 0
        try:
            pipe = client.pipeline(transaction=False)
            for route, cluster, model, stats in rows:
                key = self._hash_key(route, cluster)
                for name in FIELDS:
                    pipe.hsetnx(key, f"{model}|{name}", getattr(stats, name))
                pipe.sadd(self.prefix + "keys", key)
                loaded += 1
            pipe.execute()
            self.stats = _parse_hashes(
                self.prefix,
                *_read_all(client, self.prefix),
            )
        finally:
            client.close()
        return loaded

    def clear(self) -> None:
        """Forget everything, in Redis too (tests and the reset command)."""
        import redis

        super().clear()
        client = redis.from_url(self.url, socket_timeout=5)
        try:
            keys = list(client.smembers(self.prefix + "keys"))
            keys += list(client.scan_iter(match=f"{self.prefix}req:*", count=1000))
            keys += list(client.scan_iter(match=f"{self.prefix}clusters:*", count=100))
            if keys:
                client.delete(*keys)
            client.delete(self.prefix + "keys")
        finally:
            client.close()


def _read_all(client: Any, prefix: str) -> tuple[list[str], list[dict]]:
    keys = sorted(k.decode() for k in client.smembers(prefix + "keys"))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return keys, (pipe.execute() if keys else [])


def _parse_hashes(prefix: str, keys: Sequence[str], values: Sequence[dict]) -> dict:
    stats: dict[ArmKey, dict[str, ArmStats]] = {}
    for key, fields in zip(keys, values, strict=True):
        route, _, cluster = key[len(prefix) :].rpartition("|")
        arms: dict[str, ArmStats] = {}
        for raw_field, raw_value in (fields or {}).items():
            text = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            model, _, name = text.rpartition("|")
            if name not in FIELDS:
                continue
            arm = arms.get(model)
            if arm is None:
                arm = arms[model] = ArmStats()
            setattr(arm, name, float(raw_value))
        if arms:
            stats[(route, int(cluster))] = arms
    return stats


# --- the bandit -------------------------------------------------------------------------------


@dataclass(slots=True)
class BanditChoice:
    """The model the bandit picked, whether that was exploration, and why."""

    model: str
    explored: bool
    confidence: float
    reasoning: list[str]
    utilities: dict[str, float] = field(default_factory=dict)
    spreads: dict[str, float] = field(default_factory=dict)  # posterior sd per model


@dataclass(slots=True)
class _Exploration:
    decisions: int = 0
    explorations: int = 0


class ContextualBandit:
    """Chooses among a route's surviving candidates per task cluster; learns from outcomes."""

    def __init__(self, store: MemoryBanditStore, *, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self._exploration: dict[ArmKey, _Exploration] = {}

    def choose(
        self,
        *,
        route: str,
        cluster: int,
        ranking: Sequence[Ranked],
        request: RoutingRequest,
        tier: str,
        exploration: bool = True,
        exploration_rate: float = 0.1,
        parent: int | None = None,
    ) -> BanditChoice:
        """Pick a model among `ranking` (scored survivors, best first). Pure and local.

        `parent` is the cluster this one split from: its learnt quality is the prior of an
        arm with little feedback of its own.
        """
        # One arm per model: its best-scored deployment stands for it.
        candidates: dict[str, Ranked] = {}
        for ranked in ranking:
            candidates.setdefault(ranked.deployment.public_name, ranked)
        arms = self.store.arms(route, cluster)
        parent_arms = self.store.arms(route, parent) if parent is not None else {}
        cost_weight, latency_weight = BANDIT_WEIGHTS.get(tier, BANDIT_WEIGHTS["balanced"])
        cost_weight *= COST_MODE_FACTOR.get(request.cost_mode, 1.0)
        budget = request.max_cost_usd or max(r.cost_usd for r in candidates.values()) or 1e-9
        latency_ref = request.latency_slo_ms or TIER_LATENCY_REF_MS.get(tier, 5000.0)
        counter = self._exploration.get((route, cluster))
        if counter is None:
            counter = self._exploration[(route, cluster)] = _Exploration()
        may_explore = (
            exploration
            and exploration_rate > 0
            and (counter.explorations < exploration_rate * (counter.decisions + 1))
        )
        rng = self.rng
        means: dict[str, float] = {}
        spreads: dict[str, float] = {}
        draws: dict[str, float] = {}
        for model, ranked in candidates.items():
            arm = arms.get(model)
            penalty_cost = cost_weight * ranked.cost_usd / budget
            if arm is None or arm.pulls == 0:
                latency = ranked.latency_ms
            else:
                latency = arm.latency_ms_sum / arm.pulls
            penalty = penalty_cost + latency_weight * min(latency / latency_ref, 3.0)
            prior, strength = ranked.quality, PRIOR_STRENGTH
            inherited = parent_arms.get(model)
            if inherited is not None and inherited.feedback_count >= MIN_INHERITED_FEEDBACK:
                prior = _posterior(inherited, ranked.quality, PRIOR_STRENGTH)[0]
                strength += min(inherited.feedback_count, MAX_INHERITED_STRENGTH)
            q_mean, q_sd, successes, failures = _posterior(arm, prior, strength)
            p_mean = successes / (successes + failures)
            means[model] = p_mean * q_mean - penalty
            spreads[model] = q_sd
            if may_explore:
                q = rng.gauss(q_mean, q_sd)
                # Beta(a, b) by its normal approximation: the prior makes a + b >= 10,
                # where it is close, and it costs a tenth of `betavariate`.
                total = successes + failures
                p = rng.gauss(
                    p_mean, math.sqrt(successes * failures / (total * total * (total + 1)))
                )
                draws[model] = p * q - penalty
        best_mean = max(means, key=means.__getitem__)
        counter.decisions += 1
        chosen, explored = best_mean, False
        if may_explore:
            sampled = max(draws, key=draws.__getitem__)
            if sampled != best_mean:
                chosen, explored = sampled, True
                counter.explorations += 1
        confidence = _confidence(means, spreads, chosen)
        arm = arms.get(chosen)
        pulls = int(arm.pulls) if arm else 0
        feedback = int(arm.feedback_count) if arm else 0
        reasons = [
            f"task cluster {cluster}: {chosen} has the best learnt utility"
            if not explored
            else f"task cluster {cluster}: exploring {chosen} (best so far {best_mean})",
            f"{chosen} in this cluster: {pulls} calls, {feedback} feedback scores, "
            f"utility {means[chosen]:.3f}",
        ]
        if not exploration:
            reasons.append("exploration is off for this route")
        return BanditChoice(chosen, explored, confidence, reasons, means, spreads)

    async def record_outcome(
        self,
        *,
        route: str,
        cluster: int,
        model: str,
        success: bool,
        latency_ms: float,
        cost_usd: float,
        request_id: str | None = None,
        score: float | None = None,
    ) -> None:
        """Learn from one call's outcome (and a grader's score when there is one at once)."""
        deltas = {
            "pulls": 1.0,
            "failures": 0.0 if success else 1.0,
            "cost_sum": float(cost_usd),
            "latency_ms_sum": float(latency_ms),
        }
        if score is not None:
            score = _score(score)
            deltas.update(feedback_count=1.0, reward_sum=score, reward_sq_sum=score * score)
        elif not success:
            # A failed call served nothing: it counts as a zero-quality answer.
            deltas.update(feedback_count=1.0, reward_sum=0.0, reward_sq_sum=0.0)
        await self.store.record(route, cluster, model, deltas, request_id=request_id)

    async def record_feedback(
        self, request_id: str, score: float, comment: str | None = None
    ) -> dict[str, Any] | None:
        """Explicit feedback on an earlier request; None when the request is unknown,
        expired or already rated."""
        score = _score(score)
        served = await self.store.take_request(request_id)
        if served is None:
            return None
        route, cluster, model = served
        await self.store.record(
            route,
            cluster,
            model,
            {"feedback_count": 1.0, "reward_sum": score, "reward_sq_sum": score * score},
        )
        return {
            "request_id": request_id,
            "route": route,
            "task_cluster": cluster,
            "model": model,
            "score": score,
            "comment": comment or "",
        }


def _score(score: float) -> float:
    value = float(score)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError("score must be between 0 and 1")
    return value


def _posterior(
    arm: ArmStats | None, prior_quality: float, strength: float
) -> tuple[float, float, float, float]:
    """(quality mean, quality sd, success alpha, failure beta) of an arm."""
    a0, b0 = SUCCESS_PRIOR
    if arm is None:
        return prior_quality, math.sqrt(DEFAULT_QUALITY_VARIANCE / strength), a0, b0
    n = arm.feedback_count
    mean = (arm.reward_sum + strength * prior_quality) / (n + strength)
    if n >= 2:
        variance = max(arm.reward_sq_sum / n - (arm.reward_sum / n) ** 2, MIN_QUALITY_VARIANCE)
    else:
        variance = DEFAULT_QUALITY_VARIANCE
    sd = math.sqrt(variance / (n + strength))
    return mean, sd, a0 + arm.pulls - arm.failures, b0 + arm.failures


def model_confidence(means: dict[str, float], spreads: dict[str, float], model: str) -> float:
    """The probability that `model`'s learnt utility beats the best of the others."""
    return _confidence(means, spreads, model)


def _confidence(means: dict[str, float], spreads: dict[str, float], chosen: str) -> float:
    """The probability that the choice's utility beats the runner-up's, under the normal
    approximation of both posteriors: 0.5 for a tie or a guess, near 1 only once the lead
    is large against what is still unknown (little data keeps the spread wide)."""
    if len(means) < 2:
        return 1.0
    runner = max((m for m in means if m != chosen), key=means.__getitem__)
    spread = math.sqrt(spreads[chosen] ** 2 + spreads[runner] ** 2) or 1e-9
    z = (means[chosen] - means[runner]) / spread
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
