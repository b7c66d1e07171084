"""Consensus voting and champion/challenger mirroring, over the simulator provider."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.providers.models import ModelDeployment
from apps.routing.models import RequestLog
from apps.routing.pipeline import ensemble
from apps.routing.pipeline.context import RequestContext
from apps.routing.snapshot import RouteInfo, build_snapshot
from apps.routing.writebehind import request_logs
from atp_site.lib.errors import InvalidRequest

BODY = {"messages": [{"role": "user", "content": "Name a colour of the sky."}], "temperature": 0}


def test_parse_consensus_accepts_and_rejects():
    assert ensemble.parse_consensus(None) is None
    spec = ensemble.parse_consensus({"n": 3, "strategy": "best_of"})
    assert (spec.n, spec.strategy) == (3, "best_of")
    assert ensemble.parse_consensus({}).strategy == "majority"
    for bad, param in [
        ("yes", "atp.consensus"),
        ({"n": 1}, "atp.consensus.n"),
        ({"n": 9}, "atp.consensus.n"),
        ({"n": True}, "atp.consensus.n"),
        ({"strategy": "loudest"}, "atp.consensus.strategy"),
    ]:
        with pytest.raises(InvalidRequest) as err:
            ensemble.parse_consensus(bad)
        assert err.value.param == param


def test_normalise_and_similarity():
    assert ensemble.normalise("  Blue.  ") == ensemble.normalise("blue")
    assert ensemble.similarity("the sky is blue", "The sky is blue!") == 1.0
    assert ensemble.similarity("blue sky", "green grass") == 0.0
    calls = {
        "choices": [
            {
                "message": {
                    "tool_calls": [{"function": {"name": "f", "arguments": '{"b": 1, "a": 2}'}}]
                }
            }
        ]
    }
    same = {
        "choices": [
            {"message": {"tool_calls": [{"function": {"name": "f", "arguments": '{"a":2,"b":1}'}}]}}
        ]
    }
    assert ensemble.answer_text(calls) == ensemble.answer_text(same)


def _sim(gateway, name: str, upstream: str, quality: float = 0.5, price: str = "1") -> None:
    ModelDeployment.objects.create(
        provider=gateway.provider,
        public_name=name,
        upstream_model=upstream,
        input_price=Decimal(price),
        output_price=Decimal(price),
        quality_score=quality,
        capabilities=["chat"],
    )


def _deps(names: list[str]):
    snap = build_snapshot(1)
    return [snap.models[name][0] for name in names]


def _ctx(gateway) -> RequestContext:
    snap = build_snapshot(1)
    key = next(iter(snap.keys.values()))
    return RequestContext(request_id="req_consensus", endpoint="chat.completions", key=key)


@pytest.mark.django_db(transaction=True)
async def test_majority_returns_the_answer_most_models_agree_on(gateway):
    from asgiref.sync import sync_to_async

    # Two deployments of the same upstream model answer identically; the third differs.
    await sync_to_async(_sim)(gateway, "twin-a", "twin", quality=0.3)
    await sync_to_async(_sim)(gateway, "twin-b", "twin", quality=0.3)
    await sync_to_async(_sim)(gateway, "loner", "loner-model", quality=0.99)
    deps = await sync_to_async(_deps)(["loner", "twin-a", "twin-b"])
    ctx = await sync_to_async(_ctx)(gateway)
    spec = ensemble.ConsensusSpec(n=3, strategy="majority")
    result = await ensemble.run_consensus(ctx, deps, BODY, spec, lambda d: d.quality)
    assert result.chosen.dep.public_name == "twin-a"  # the better-ranked of the pair
    chosen = [v for v in result.votes if v.chosen]
    assert len(chosen) == 1
    assert {v.dep.public_name for v in result.votes} == {"loner", "twin-a", "twin-b"}
    # Every call is paid for.
    assert result.cost == sum(v.cost for v in result.votes)
    assert result.usage.output_tokens == sum(v.usage.output_tokens for v in result.votes)
    meta = result.metadata("majority")
    assert meta["strategy"] == "majority" and len(meta["votes"]) == 3
    row = request_logs._take()[-1]
    assert row["request_id"] == "req_consensus" and row["model"] == "twin-a"
    assert row["cost_usd"] == result.cost


@pytest.mark.django_db(transaction=True)
async def test_best_of_weighs_quality_and_agreement(gateway):
    from asgiref.sync import sync_to_async

    await sync_to_async(_sim)(gateway, "weak", "weak-model", quality=0.1)
    await sync_to_async(_sim)(gateway, "strong", "strong-model", quality=0.9)
    deps = await sync_to_async(_deps)(["weak", "strong"])
    ctx = await sync_to_async(_ctx)(gateway)
    spec = ensemble.ConsensusSpec(n=2, strategy="best_of")
    result = await ensemble.run_consensus(ctx, deps, BODY, spec, lambda d: d.quality)
    assert result.chosen.dep.public_name == "strong"
    request_logs._take()


@pytest.mark.django_db(transaction=True)
async def test_consensus_needs_two_models(gateway):
    from asgiref.sync import sync_to_async

    deps = await sync_to_async(_deps)(["sim-fast"])
    ctx = await sync_to_async(_ctx)(gateway)
    with pytest.raises(InvalidRequest):
        await ensemble.run_consensus(
            ctx, deps, BODY, ensemble.ConsensusSpec(2, "majority"), lambda d: 1.0
        )


@pytest.mark.django_db(transaction=True)
async def test_challenger_mirror_is_logged_beside_the_champion(gateway):
    from asgiref.sync import sync_to_async

    from apps.routing import selectors

    await sync_to_async(_sim)(gateway, "challenger-model", "challenger-upstream")
    deps = await sync_to_async(_deps)(["sim-fast", "challenger-model"])
    ctx = await sync_to_async(_ctx)(gateway)
    ctx.deployment = deps[0]
    ctx.route = "team/route"
    route = RouteInfo(name="team/route", challenger="challenger-model", challenger_share=1.0)
    assert ensemble.should_mirror(route)
    assert not ensemble.should_mirror(RouteInfo(name="x", challenger="m", challenger_share=0))
    assert not ensemble.should_mirror(route, rng=lambda: 1.0)
    # The champion's own row, as settle would write it.
    from apps.routing.pipeline.settle import settle

    settle(ctx, http_status=200)
    task = ensemble.mirror(ctx, route, [deps[1]], BODY, "some champion text")
    await task
    rows = request_logs._take()
    shadow = rows[-1]
    assert shadow["shadow_of"] == "req_consensus"
    assert shadow["model"] == "challenger-model" and shadow["route"] == "team/route"
    assert 0 <= shadow["decision"]["agreement"] <= 1
    assert shadow["decision"]["champion"] == "sim-fast"
    await sync_to_async(request_logs.writer)(rows)
    comparison = await sync_to_async(selectors.challenger_comparison)(route="team/route")
    assert len(comparison) == 1
    pair = comparison[0]
    assert (pair["champion"], pair["challenger"]) == ("sim-fast", "challenger-model")
    assert pair["champion_stats"]["requests"] == 1
    assert pair["challenger_stats"]["success_rate"] == 1.0
    assert await sync_to_async(RequestLog.objects.count)() == 2
