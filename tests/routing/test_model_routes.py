"""A model name carrying its own fallbacks, retries, timeouts and cache (a route named like the
model), deployments hidden from /v1/models and reachable only through routes, and built-in
route overrides that keep their strategy and tier. Fake upstreams on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml
from asgiref.sync import sync_to_async

from apps.providers.http import close_sessions
from apps.providers.models import ModelDeployment, Provider
from apps.routing import cache
from apps.routing.engine.router import reset_engine
from apps.routing.models import Route
from apps.routing.route_services import route_create
from apps.routing.snapshot import BUILTIN_ROUTES, build_snapshot, holder
from apps.routing.writebehind import request_logs
from atp_site.lib import config_version
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.routing.conftest import call

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM_KEY = "sk-fake-test-key"
MESSAGES = [{"role": "user", "content": "Say hello."}]


def _provider(name: str, base_url: str) -> Provider:
    provider = Provider(name=name, kind="openai_compatible", base_url=base_url)
    provider.set_api_key(UPSTREAM_KEY)
    provider.save()
    return provider


def _deploy(provider: Provider, name: str, *, listed: bool = True, weight: int = 100) -> None:
    ModelDeployment.objects.create(
        provider=provider,
        public_name=name,
        upstream_model=f"{name}-upstream",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        capabilities=["chat", "streaming"],
        listed=listed,
        weight=weight,
    )


@pytest.fixture
async def fakes(gateway):
    async with FakeOpenAI() as primary, FakeOpenAI() as secondary:

        def build():
            _deploy(_provider("primary", primary.base_url), "gpt-x", weight=1_000_000)
            _deploy(_provider("secondary", secondary.base_url), "gpt-x", weight=1)
            config_version.bump()

        await sync_to_async(build)()
        holder.invalidate()
        reset_engine()
        previous = cache.use(None)
        yield gateway, primary, secondary
        cache.use(previous)
        reset_engine()
        request_logs._take()
        await close_sessions()


async def _route(**fields) -> Route:
    route = await sync_to_async(route_create)(**fields)
    holder.invalidate()
    return route


async def _chat(key: str, model: str, **extra):
    return await call(
        "POST",
        "/v1/chat/completions",
        key=key,
        json={"model": model, "messages": MESSAGES, **extra},
    )


async def _model_ids(key: str) -> dict[str, dict]:
    resp = await call("GET", "/v1/models", key=key)
    return {m["id"]: m for m in resp.json()["data"]}


# --- a route named like a model -------------------------------------------------------------


async def test_a_route_named_like_a_model_gives_it_fallbacks_retries_and_cache(fakes):
    gateway, primary, secondary = fakes
    await _route(
        name="gpt-x",
        fallbacks=["sim-fast"],
        retry={"max_attempts": 1},
        cache_ttl_seconds=60,
    )
    ok = await _chat(gateway.key, "gpt-x", temperature=0)
    assert ok.status == 200, ok.body
    assert ok.headers["x-atp-model"] == "gpt-x" and ok.json()["model"] == "gpt-x"
    assert ok.headers["x-atp-route"] == "gpt-x" and ok.headers["x-atp-cache"] == "miss"
    # The model's own deployments share traffic as the bare name did (weighted).
    assert ok.headers["x-atp-provider"] == "primary"
    await cache.default().drain()
    assert (await _chat(gateway.key, "gpt-x", temperature=0)).headers["x-atp-cache"] == "hit"
    # Both deployments down: one try each (the route's retry policy), then the fallback.
    primary.default = Script(status=503)
    secondary.default = Script(status=503)
    fell_back = await _chat(gateway.key, "gpt-x")
    assert fell_back.status == 200
    assert fell_back.headers["x-atp-model"] == "sim-fast"
    assert len(primary.bodies("/chat/completions")) == 2  # the first answer and one try
    assert len(secondary.bodies("/chat/completions")) == 1
    # /v1/models shows the name once, as the model, and no second name.
    models = await _model_ids(gateway.key)
    assert models["gpt-x"]["owned_by"] == "primary" and "atp" not in models["gpt-x"]
    assert [m for m in models if m.startswith("gpt-x")] == ["gpt-x"]


async def test_a_route_named_like_a_model_keeps_timeouts_of_its_own(fakes):
    gateway, primary, secondary = fakes
    await _route(name="gpt-x", timeouts={"first_byte": 0.3}, retry={"max_attempts": 1})
    primary.enqueue(Script(delay=3))
    resp = await _chat(gateway.key, "gpt-x")
    assert resp.status == 200 and resp.headers["x-atp-provider"] == "secondary"
    attempts = [r for r in request_logs._take() if r["model"] == "gpt-x"]
    assert attempts and attempts[-1]["latency_ms"] < 3000


async def test_a_key_allowed_the_model_may_use_the_route_in_front_of_it(fakes):
    gateway, *_ = fakes
    await _route(name="gpt-x", fallbacks=["sim-fast"])
    allowed = await sync_to_async(gateway.add_key)(allowed_models=["gpt-x"])
    resp = await _chat(allowed, "gpt-x")
    assert resp.status == 200 and resp.headers["x-atp-model"] == "gpt-x"
    other = await sync_to_async(gateway.add_key)(allowed_models=["sim-fast"])
    assert (await _chat(other, "gpt-x")).status == 403


# --- hidden deployments ---------------------------------------------------------------------


async def test_an_unlisted_deployment_is_hidden_and_callable_only_through_routes(fakes):
    gateway, primary, _ = fakes

    def hidden():
        _deploy(Provider.objects.get(name="primary"), "gpt-x-eu", listed=False)
        config_version.bump()

    await sync_to_async(hidden)()
    await _route(name="team/eu", candidates=["gpt-x-eu"], strategy="ordered")
    models = await _model_ids(gateway.key)
    assert "gpt-x-eu" not in models and "team/eu" in models
    direct = await _chat(gateway.key, "gpt-x-eu")
    assert direct.status == 404
    routed = await _chat(gateway.key, "team/eu")
    assert routed.status == 200 and routed.headers["x-atp-model"] == "gpt-x-eu"
    assert (await call("GET", "/v1/models/gpt-x-eu", key=gateway.key)).status == 404


async def test_a_hidden_model_behind_a_route_of_its_name_shows_once_as_that_route(fakes):
    gateway, *_ = fakes

    def hide():
        ModelDeployment.objects.filter(public_name="gpt-x").update(listed=False)
        config_version.bump()

    await sync_to_async(hide)()
    assert "gpt-x" not in await _model_ids(gateway.key)
    assert (await _chat(gateway.key, "gpt-x")).status == 404
    await _route(name="gpt-x", fallbacks=["sim-fast"])
    models = await _model_ids(gateway.key)
    assert models["gpt-x"]["atp"]["route"] is True
    resp = await _chat(gateway.key, "gpt-x")
    assert resp.status == 200 and resp.headers["x-atp-model"] == "gpt-x"


async def test_listed_is_settable_through_the_api(fakes, admin_client):
    gateway, *_ = fakes
    dep = await sync_to_async(ModelDeployment.objects.filter(provider__name="secondary").get)()

    def patch():
        return admin_client.patch(
            f"/api/v1/deployments/{dep.id}/", {"listed": False}, content_type="application/json"
        )

    resp = await sync_to_async(patch)()
    assert resp.status_code == 200, resp.content
    assert resp.json()["listed"] is False
    holder.invalidate()
    # gpt-x is still listed through its other deployment, which alone now serves it.
    for _ in range(3):
        served = await _chat(gateway.key, "gpt-x")
        assert served.headers["x-atp-provider"] == "primary"


def test_listed_round_trips_through_the_configuration_file(gateway, tmp_path):
    from atp_site.lib.config_file import apply_config, export_config

    document = {
        "version": 1,
        "providers": [
            {
                "name": "hidden-provider",
                "kind": "simulator",
                "models": [
                    {"name": "internal", "upstream": "sim", "listed": False},
                    {"name": "public", "upstream": "sim"},
                ],
            }
        ],
        "routes": [{"name": "internal", "fallbacks": ["public"]}],
    }
    apply_config(document)
    assert not ModelDeployment.objects.get(public_name="internal").listed
    assert ModelDeployment.objects.get(public_name="public").listed
    exported = yaml.safe_load(yaml.safe_dump(export_config()))
    provider = next(p for p in exported["providers"] if p["name"] == "hidden-provider")
    by_name = {m["name"]: m for m in provider["models"]}
    assert by_name["internal"]["listed"] is False and "listed" not in by_name["public"]
    route = next(r for r in exported["routes"] if r["name"] == "internal")
    assert "strategy" not in route and "tier" not in route
    snap = build_snapshot(1)
    assert snap.routes["internal"].wraps == "internal"
    assert "internal" not in snap.listed and "public" in snap.listed


# --- built-in overrides ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_ROUTES))
def test_overriding_a_built_in_route_keeps_its_strategy_and_tier(gateway, name):
    Route.objects.create(name=name, fallbacks=["sim-fast"], cache_ttl_seconds=30)
    info = build_snapshot(1).routes[name]
    builtin = BUILTIN_ROUTES[name]
    assert (info.strategy, info.tier) == (builtin.strategy, builtin.tier)
    assert info.description == builtin.description
    assert info.fallbacks == ("sim-fast",) and info.cache_ttl_seconds == 30


def test_an_override_that_sets_strategy_or_tier_changes_only_that(gateway):
    Route.objects.create(name="atp/fast", strategy="cheapest")
    Route.objects.create(name="atp/high", tier="balanced")
    snap = build_snapshot(1)
    assert (snap.routes["atp/fast"].strategy, snap.routes["atp/fast"].tier) == ("cheapest", "fast")
    assert (snap.routes["atp/high"].strategy, snap.routes["atp/high"].tier) == (
        "learned",
        "balanced",
    )
    Route.objects.create(name="team/plain")
    plain = build_snapshot(1).routes["team/plain"]
    assert (plain.strategy, plain.tier) == ("score", "balanced")


async def test_an_override_through_the_api_and_config_keeps_the_built_in_behaviour(
    fakes, admin_client
):
    gateway, *_ = fakes

    def create():
        return admin_client.post(
            "/api/v1/routes/",
            {"name": "atp/fast", "fallbacks": ["sim-fast"]},
            content_type="application/json",
        )

    resp = await sync_to_async(create)()
    assert resp.status_code == 201, resp.content
    holder.invalidate()
    listed = (await _model_ids(gateway.key))["atp/fast"]["atp"]
    assert (listed["strategy"], listed["tier"]) == ("learned", "fast")
    answer = await _chat(gateway.key, "atp/fast")
    assert answer.status == 200
    decision = request_logs._take()[-1]["decision"]
    assert (decision["strategy"], decision["tier"]) == ("learned", "fast")


def test_stored_overrides_at_the_old_defaults_inherit_after_the_migration(gateway):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("apps.routing.migrations.0005_builtin_overrides_inherit")
    Route.objects.create(name="atp/fast", strategy="score", tier="balanced")
    Route.objects.create(name="atp/high", strategy="cheapest", tier="balanced")
    Route.objects.create(name="team/x", strategy="score", tier="balanced")
    migration.inherit(apps, None)
    stored = {r.name: (r.strategy, r.tier) for r in Route.objects.all()}
    assert stored == {
        "atp/fast": ("", ""),
        "atp/high": ("cheapest", "balanced"),
        "team/x": ("score", "balanced"),
    }


def test_listed_is_settable_in_the_django_admin(gateway, admin_client):
    from django.urls import reverse

    dep = gateway.deployment
    url = reverse("admin:providers_modeldeployment_change", args=[dep.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and b'name="listed"' in page.content
    form = {
        "public_name": dep.public_name,
        "upstream_model": dep.upstream_model,
        "aliases": '["fast"]',
        "input_price": "1.00",
        "output_price": "2.00",
        "context_window": dep.context_window,
        "capabilities": '["chat"]',
        "quality_score": dep.quality_score,
        "region": "",
        "weight": dep.weight,
        "enabled": "on",
        # "listed" left out: an unchecked box.
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content
    dep.refresh_from_db()
    assert dep.listed is False
    snap = build_snapshot(1)
    assert "sim-fast" not in snap.listed and "sim-fast" in snap.models
