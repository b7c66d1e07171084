"""Every upstream call respects the key and the request's region: challenger mirrors,
consensus votes, route fallbacks, a model's load-balanced fallbacks and retries all draw
from the deployments the request may reach. Fake upstreams on 127.0.0.1 count the calls.

The cast: `local` (eu-west) serves local-a and local-b, `cloud` (us-east) serves cloud-x.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from apps.providers.http import close_sessions
from apps.providers.models import ModelDeployment, Provider
from apps.routing import cache
from apps.routing.engine.router import reset_engine
from apps.routing.pipeline import ensemble, execute
from apps.routing.pipeline.context import RequestContext
from apps.routing.pipeline.reach import reach_for
from apps.routing.route_services import route_create
from apps.routing.snapshot import build_snapshot, holder
from apps.routing.writebehind import request_logs
from apps.tenants.models import Tenant
from atp_site.lib import config_version
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM_KEY = "sk-fake-test-key"
MESSAGES = [{"role": "user", "content": "Name a colour of the sky."}]


@dataclass
class Cast:
    gateway: object
    local: FakeOpenAI
    cloud: FakeOpenAI

    def calls(self, fake: FakeOpenAI, upstream: str | None = None) -> int:
        bodies = fake.bodies("/chat/completions")
        return len([b for b in bodies if upstream is None or b.get("model") == upstream])

    async def key(self, allowed: list[str] | None) -> str:
        return await sync_to_async(self.gateway.add_key)(allowed_models=allowed)


def _provider(name: str, base_url: str, region: str) -> Provider:
    provider = Provider(name=name, kind="openai_compatible", base_url=base_url, region=region)
    provider.set_api_key(UPSTREAM_KEY)
    provider.save()
    return provider


def _deploy(provider: Provider, name: str, quality: float, price: str = "1") -> None:
    ModelDeployment.objects.create(
        provider=provider,
        public_name=name,
        upstream_model=f"{name}-upstream",
        input_price=Decimal(price),
        output_price=Decimal(price),
        quality_score=quality,
        capabilities=["chat", "streaming"],
    )


@pytest.fixture
async def cast(gateway):
    async with FakeOpenAI() as local, FakeOpenAI() as cloud:

        def build():
            eu = _provider("local", local.base_url, "eu-west")
            us = _provider("cloud", cloud.base_url, "us-east")
            _deploy(eu, "local-a", 0.6)
            _deploy(eu, "local-b", 0.5)
            # The best model by far: every unrestricted choice would pick it.
            _deploy(us, "cloud-x", 0.99, price="0.01")
            config_version.bump()

        await sync_to_async(build)()
        holder.invalidate()
        reset_engine()
        previous = cache.use(None)
        yield Cast(gateway, local, cloud)
        cache.use(previous)
        reset_engine()
        request_logs._take()
        await close_sessions()


async def _route(**fields) -> None:
    await sync_to_async(route_create)(**fields)
    holder.invalidate()


async def _chat(key: str, model: str, **extra):
    return await call(
        "POST",
        "/v1/chat/completions",
        key=key,
        json={"model": model, "messages": MESSAGES, **extra},
    )


# --- challenger mirroring ---------------------------------------------------------------------


async def test_a_key_limited_to_local_models_is_never_mirrored_to_the_challenger(cast):
    await _route(
        name="team/mirror",
        candidates=["local-a"],
        strategy="ordered",
        challenger="cloud-x",
        challenger_share=1.0,
    )
    restricted = await cast.key(["team/mirror", "local-a", "local-b"])
    for _ in range(5):
        resp = await _chat(restricted, "team/mirror")
        assert resp.status == 200 and resp.headers["x-atp-model"] == "local-a"
    streamed = await _chat(restricted, "team/mirror", stream=True)
    assert streamed.status == 200
    await ensemble.drain_mirrors()
    assert cast.calls(cast.cloud) == 0
    # The same route mirrors an unrestricted key's requests: the test can see a mirror.
    resp = await _chat(cast.gateway.key, "team/mirror")
    assert resp.status == 200
    await ensemble.drain_mirrors()
    assert cast.calls(cast.cloud, "cloud-x-upstream") == 1


async def test_a_request_pinned_to_a_region_is_never_mirrored_outside_it(cast):
    await _route(
        name="team/mirror",
        candidates=["local-a"],
        strategy="ordered",
        challenger="cloud-x",
        challenger_share=1.0,
    )
    resp = await _chat(cast.gateway.key, "team/mirror", atp={"region": "eu"})
    assert resp.status == 200
    header = await call(
        "POST",
        "/v1/chat/completions",
        key=cast.gateway.key,
        json={"model": "team/mirror", "messages": MESSAGES},
        headers={"X-ATP-Region": "eu"},
    )
    assert header.status == 200
    await ensemble.drain_mirrors()
    assert cast.calls(cast.cloud) == 0


async def test_a_tenant_preferring_a_region_is_never_mirrored_outside_it(cast):
    await sync_to_async(Tenant.objects.filter(pk=cast.gateway.tenant.pk).update)(
        preferred_regions=["eu"]
    )
    await sync_to_async(config_version.bump)()
    await _route(
        name="team/mirror",
        candidates=["local-a"],
        strategy="ordered",
        challenger="cloud-x",
        challenger_share=1.0,
    )
    resp = await _chat(cast.gateway.key, "team/mirror")
    assert resp.status == 200
    await ensemble.drain_mirrors()
    assert cast.calls(cast.cloud) == 0


# --- consensus ----------------------------------------------------------------------------------


async def test_consensus_votes_only_among_models_the_key_may_use(cast):
    restricted = await cast.key(["atp/high", "local-a", "local-b"])
    body = {"atp": {"consensus": {"n": 3, "strategy": "majority"}}}
    resp = await _chat(restricted, "atp/high", **body)
    assert resp.status == 200, resp.body
    votes = resp.json()["atp"]["consensus"]["votes"]
    assert {v["model"] for v in votes} == {"local-a", "local-b"}
    assert cast.calls(cast.cloud) == 0
    # Unrestricted, the best model votes too.
    resp = await _chat(cast.gateway.key, "atp/high", **body)
    assert "cloud-x" in {v["model"] for v in resp.json()["atp"]["consensus"]["votes"]}


async def test_consensus_votes_only_in_the_requested_region(cast):
    body = {"atp": {"consensus": {"n": 3}, "region": "eu"}}
    resp = await _chat(cast.gateway.key, "atp/high", **body)
    assert resp.status == 200, resp.body
    assert cast.calls(cast.cloud) == 0
    assert cast.calls(cast.local) == 2


# --- fallbacks ----------------------------------------------------------------------------------


async def test_route_fallbacks_skip_models_the_key_may_not_use(cast):
    await _route(name="team/fb", candidates=["local-a"], strategy="ordered", fallbacks=["cloud-x"])
    cast.local.default = Script(status=503)
    restricted = await cast.key(["team/fb", "local-a"])
    resp = await _chat(restricted, "team/fb")
    assert resp.status == 503
    assert cast.calls(cast.cloud) == 0
    attempts = resp.json()["error"]["atp"]["attempts"]
    assert {a["deployment"] for a in attempts} == {"local-a"}
    # The fallback is there for keys that may use it.
    resp = await _chat(cast.gateway.key, "team/fb")
    assert resp.status == 200 and resp.headers["x-atp-model"] == "cloud-x"


async def test_route_fallbacks_outside_the_requested_region_are_not_called(cast):
    await _route(name="team/fb", candidates=["local-a"], strategy="ordered", fallbacks=["cloud-x"])
    cast.local.default = Script(status=503)
    resp = await _chat(cast.gateway.key, "team/fb", atp={"region": "eu"})
    assert resp.status == 503
    assert cast.calls(cast.cloud) == 0 and cast.calls(cast.local) == 2  # a try and a retry


async def test_a_models_own_fallback_deployments_respect_the_region_hint(cast):
    # cloud-x also served in eu by the local provider: two deployments of one model.
    def second_deployment():
        ModelDeployment.objects.create(
            provider=Provider.objects.get(name="local"),
            public_name="cloud-x",
            upstream_model="cloud-x-eu",
            input_price=Decimal("1"),
            output_price=Decimal("1"),
            capabilities=["chat"],
            weight=1,
        )
        ModelDeployment.objects.filter(public_name="cloud-x", provider__name="cloud").update(
            weight=1_000_000
        )
        config_version.bump()

    await sync_to_async(second_deployment)()
    holder.invalidate()
    cast.local.default = Script(status=503)
    resp = await _chat(cast.gateway.key, "cloud-x", atp={"region": "eu"})
    assert resp.status == 503
    assert cast.calls(cast.cloud) == 0 and cast.calls(cast.local, "cloud-x-eu") == 2
    nowhere = await _chat(cast.gateway.key, "cloud-x", atp={"region": "ap"})
    assert nowhere.status == 400 and nowhere.json()["error"]["param"] == "atp.region"
    bad = await _chat(cast.gateway.key, "cloud-x", atp={"region": ""})
    assert bad.status == 400 and bad.json()["error"]["param"] == "atp.region"
    # Without a hint the heavier (us) deployment serves.
    cast.local.default = Script()
    resp = await _chat(cast.gateway.key, "cloud-x")
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "cloud"


# --- routes, cache and the mechanism ---------------------------------------------------------


async def test_a_route_chooses_only_what_the_key_may_use(cast):
    restricted = await cast.key(["auto", "local-a"])
    for _ in range(3):
        resp = await _chat(restricted, "auto")
        assert resp.status == 200 and resp.headers["x-atp-model"] == "local-a"
    assert cast.calls(cast.cloud) == 0


async def test_a_key_limited_to_routes_only_may_use_every_model_through_them(cast):
    routes_only = await cast.key(["auto"])
    resp = await _chat(routes_only, "auto")
    assert resp.status == 200, resp.body
    direct = await _chat(routes_only, "cloud-x")
    assert direct.status == 403


async def test_a_cached_answer_from_a_model_the_key_may_not_use_is_not_served(cast):
    await _route(
        name="team/cached",
        candidates=["cloud-x", "local-a"],
        strategy="ordered",
        cache_ttl_seconds=60,
    )
    body = {"temperature": 0}
    first = await _chat(cast.gateway.key, "team/cached", **body)
    assert first.headers["x-atp-model"] == "cloud-x"
    await cache.default().drain()
    again = await _chat(cast.gateway.key, "team/cached", **body)
    assert again.headers["x-atp-cache"] == "hit"
    restricted = await cast.key(["team/cached", "local-a"])
    resp = await _chat(restricted, "team/cached", **body)
    assert resp.headers["x-atp-cache"] == "miss" and resp.headers["x-atp-model"] == "local-a"


async def test_the_execute_step_refuses_a_deployment_outside_the_reach(cast):
    def setup():
        snap = build_snapshot(1)
        key = next(k for k in snap.keys.values() if k.allowed_models is None)
        limited = type(key)(**{**_fields(key), "allowed_models": frozenset({"local-a"})})
        return snap, limited

    snap, limited = await sync_to_async(setup)()
    reach = reach_for(snap, limited)
    cloud = snap.models["cloud-x"][0]
    local = snap.models["local-a"][0]
    assert cloud not in reach and local in reach
    ctx = RequestContext(
        request_id="r-reach",
        endpoint="chat.completions",
        key=limited,
        reach=reach,
        requested_model="x",
    )
    with pytest.raises(Exception) as refused:
        await execute.chat(ctx, [cloud], {"messages": MESSAGES})
    assert refused.value.status == 403
    assert ctx.attempts == [
        {"deployment": "cloud-x", "provider": "cloud", "skipped": "not_allowed"}
    ]
    result = await execute.chat(ctx, [cloud, local], {"messages": MESSAGES})
    assert result.response["choices"] and ctx.deployment is local
    assert cast.calls(cast.cloud) == 0


def _fields(key) -> dict:
    return {name: getattr(key, name) for name in key.__slots__}


async def test_embeddings_respect_the_key_and_the_region_hint(cast):
    body = {"model": "sim-embed", "input": "hello"}
    ok = await call("POST", "/v1/embeddings", key=cast.gateway.key, json=body)
    assert ok.status == 200
    # The simulator's deployment has no region: nothing serves a request pinned to one.
    pinned = await call(
        "POST", "/v1/embeddings", key=cast.gateway.key, json=body, headers={"X-ATP-Region": "eu"}
    )
    assert pinned.status == 400 and pinned.json()["error"]["param"] == "atp.region"
    restricted = await cast.key(["local-a"])
    refused = await call("POST", "/v1/embeddings", key=restricted, json=body)
    assert refused.status == 403
