"""Several models on one request: consensus voting and champion/challenger mirroring.

Consensus (`atp.consensus = {"n": 3, "strategy": "majority" | "best_of"}`) sends the
request to the top n ranked models at once. `majority` groups the answers by their
normalised text (case, whitespace and trailing punctuation ignored; tool calls by name
and canonical arguments) and returns the largest group's answer, ties going to the group
holding the better-ranked model. `best_of` scores every answer by the quality the router
expects of its model, multiplied by how much the answer agrees with the others (word-set
overlap), and returns the best; a lone outlier from a strong model loses to a consensus
of good ones. Every call is paid for: usage and cost are the sum over the fan-out.

A challenger mirror calls a route's challenger model with the same request after the
champion answered, in the background; the caller never waits for it or sees it. The
mirrored call is logged like any request, with `shadow_of` naming the champion's request
and its agreement with the champion's answer in the decision, so the two can be compared
(apps.routing.selectors.challenger_comparison).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from apps.costs.catalog import prices_at
from apps.costs.pricing import cost_usd
from apps.providers.adapters.base import Usage
from apps.routing.pipeline import execute
from apps.routing.pipeline.chat import usage_of
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.settle import settle, usd_number
from apps.routing.snapshot import DeploymentInfo, RouteInfo
from atp_site.lib.errors import ATPError, InvalidRequest
from atp_site.lib.request_ids import child_request_id

logger = logging.getLogger(__name__)

STRATEGIES = ("majority", "best_of")
MAX_CONSENSUS = 5

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ConsensusSpec:
    n: int
    strategy: str


def parse_consensus(value: Any) -> ConsensusSpec | None:
    """Read `atp.consensus`; None when the request asks for no consensus."""
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(
            'atp.consensus must be an object like {"n": 3, "strategy": "majority"}.',
            param="atp.consensus",
        )
    n = value.get("n", 3)
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_CONSENSUS:
        raise InvalidRequest(
            f"atp.consensus.n must be an integer from 2 to {MAX_CONSENSUS}.",
            param="atp.consensus.n",
        )
    strategy = value.get("strategy", "majority")
    if strategy not in STRATEGIES:
        raise InvalidRequest(
            f"atp.consensus.strategy must be one of {', '.join(STRATEGIES)}.",
            param="atp.consensus.strategy",
        )
    return ConsensusSpec(n=n, strategy=strategy)


def answer_text(response: dict[str, Any]) -> str:
    """The first choice's text, or its tool calls in canonical form."""
    choices = response.get("choices") or ()
    if not choices:
        return ""
    message = choices[0].get("message") or {}
    calls = message.get("tool_calls")
    if calls:
        canon = []
        for call in calls:
            fn = call.get("function") or {}
            try:
                args = orjson.loads(fn.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                args = fn.get("arguments")
            canon.append([fn.get("name"), args])
        return orjson.dumps(canon, option=orjson.OPT_SORT_KEYS).decode()
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.strip().casefold()).rstrip(" .!?;:")


def similarity(a: str, b: str) -> float:
    """Word-set overlap (Jaccard) of two answers, 0..1."""
    wa, wb = set(_WORD.findall(a.casefold())), set(_WORD.findall(b.casefold()))
    if not wa and not wb:
        return 1.0
    return len(wa & wb) / len(wa | wb)


@dataclass(slots=True)
class Vote:
    rank: int
    dep: DeploymentInfo
    response: dict[str, Any] | None = None
    usage: Usage | None = None
    cost: Decimal = Decimal(0)
    latency_ms: int = 0
    error: ATPError | None = None
    text: str = ""
    score: float = 0.0
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.dep.public_name,
            "provider": self.dep.provider_name,
            "rank": self.rank,
            "latency_ms": self.latency_ms,
            "cost_usd": usd_number(self.cost),
            "chosen": self.chosen,
        }
        if self.error is not None:
            out["error"] = self.error.message
        else:
            out["score"] = round(self.score, 4)
        return out


async def _one(ctx: RequestContext, vote: Vote, body: dict[str, Any]) -> Vote:
    started = time.monotonic()
    sub = replace(ctx, request_id=child_request_id(ctx.request_id, vote.rank), attempts=[])
    try:
        result = await execute.chat(sub, [vote.dep], body)
    except ATPError as err:
        vote.error = err
        vote.latency_ms = int((time.monotonic() - started) * 1000)
        ctx.attempts.extend(sub.attempts)
        return vote
    vote.latency_ms = int((time.monotonic() - started) * 1000)
    vote.response = result.response
    usage, _ = usage_of(result, body)
    vote.usage = usage
    vote.cost = cost_usd(usage, prices_at(vote.dep, ctx.created_at))
    vote.text = answer_text(result.response)
    return vote


def _pick_majority(votes: list[Vote]) -> Vote:
    groups: dict[str, list[Vote]] = {}
    for vote in votes:
        groups.setdefault(normalise(vote.text), []).append(vote)
    for members in groups.values():
        for vote in members:
            vote.score = len(members) / len(votes)
    best = max(groups.values(), key=lambda g: (len(g), -min(v.rank for v in g)))
    return min(best, key=lambda v: v.rank)


def _pick_best_of(votes: list[Vote], quality_of: Callable[[DeploymentInfo], float]) -> Vote:
    for vote in votes:
        others = [similarity(vote.text, o.text) for o in votes if o is not vote]
        agreement = sum(others) / len(others) if others else 1.0
        vote.score = max(quality_of(vote.dep), 0.01) * (0.5 + 0.5 * agreement)
    return max(votes, key=lambda v: (v.score, -v.rank))


@dataclass(slots=True)
class ConsensusResult:
    response: dict[str, Any]
    usage: Usage
    cost: Decimal
    chosen: Vote
    votes: list[Vote]

    def metadata(self, strategy: str) -> dict[str, Any]:
        return {"strategy": strategy, "votes": [v.to_dict() for v in self.votes]}


async def run_consensus(
    ctx: RequestContext,
    ranked: list[DeploymentInfo],
    body: dict[str, Any],
    spec: ConsensusSpec,
    quality_of: Callable[[DeploymentInfo], float],
) -> ConsensusResult:
    """Fan out to the top `spec.n` distinct models and settle the request once."""
    chosen_deps: list[DeploymentInfo] = []
    seen: set[str] = set()
    for dep in ranked:
        if dep.public_name not in seen:
            seen.add(dep.public_name)
            chosen_deps.append(dep)
        if len(chosen_deps) == spec.n:
            break
    if len(chosen_deps) < 2:
        raise InvalidRequest(
            "Consensus needs at least two different models among the candidates; "
            f"only {len(chosen_deps)} qualified.",
            param="atp.consensus.n",
        )
    votes = [Vote(rank=i, dep=dep) for i, dep in enumerate(chosen_deps)]
    await asyncio.gather(*(_one(ctx, v, body) for v in votes))
    answered = [v for v in votes if v.error is None]
    total = Usage()
    cost = Decimal(0)
    for v in answered:
        total += v.usage
        cost += v.cost
    if not answered:
        last = votes[-1].error
        assert last is not None
        last.details = {**last.details, "attempts": ctx.attempts}
        ctx.deployment = votes[0].dep
        raise last
    winner = (
        _pick_majority(answered)
        if spec.strategy == "majority"
        else _pick_best_of(answered, quality_of)
    )
    winner.chosen = True
    ctx.deployment = winner.dep
    settle(ctx, http_status=200, usage=total, cost=cost)
    return ConsensusResult(winner.response or {}, total, cost, winner, votes)


# --- champion / challenger ---------------------------------------------------------------

_mirrors: set[asyncio.Task] = set()


def should_mirror(route: RouteInfo | None, rng: Callable[[], float] = random.random) -> bool:
    return bool(
        route is not None
        and route.challenger
        and route.challenger_share > 0
        and rng() < route.challenger_share
    )


def mirror(
    ctx: RequestContext,
    route: RouteInfo,
    challengers: list[DeploymentInfo],
    body: dict[str, Any],
    champion_text: str,
) -> asyncio.Task | None:
    """Start the challenger's call in the background; the caller's answer is already sent."""
    if not challengers:
        return None
    task = asyncio.ensure_future(_mirror(ctx, route, challengers, body, champion_text))
    _mirrors.add(task)
    task.add_done_callback(_mirrors.discard)
    return task


async def _mirror(
    ctx: RequestContext,
    route: RouteInfo,
    challengers: list[DeploymentInfo],
    body: dict[str, Any],
    champion_text: str,
) -> None:
    sub = RequestContext(
        request_id=child_request_id(ctx.request_id, "challenger"),
        endpoint=ctx.endpoint,
        key=ctx.key,
        reach=ctx.reach,
        requested_model=ctx.requested_model,
        end_user=ctx.end_user,
        route=route.name,
        task_cluster=ctx.task_cluster,
        shadow_of=ctx.request_id,
    )
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    try:
        result = await execute.chat(sub, challengers, body)
    except ATPError as err:
        sub.decision = {"challenger": True, "champion": _champion(ctx)}
        settle(sub, http_status=err.status, error=err)
        return
    except Exception:  # the caller's answer is unaffected; keep the loop clean
        logger.exception("challenger call for %s failed", ctx.request_id)
        return
    usage, estimated = usage_of(result, body)
    sub.decision = {
        "challenger": True,
        "champion": _champion(ctx),
        "agreement": round(similarity(champion_text, answer_text(result.response)), 4),
    }
    settle(sub, http_status=200, usage=usage, usage_estimated=estimated)


def _champion(ctx: RequestContext) -> str:
    return ctx.deployment.public_name if ctx.deployment else ""


async def drain_mirrors(wait_seconds: float = 10.0) -> None:
    """Let running challenger calls finish (at shutdown) so their rows are settled."""
    if _mirrors:
        await asyncio.wait(list(_mirrors), timeout=wait_seconds)
