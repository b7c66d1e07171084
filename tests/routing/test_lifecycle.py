"""The ASGI lifespan: start-up warms what the first requests would otherwise wait for."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator

from apps.routing import cache
from apps.routing.lifecycle import lifespan
from apps.routing.route_services import route_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # With DATABASE_URL set, start-up refuses without every secret; these tests are about
    # what a start-up that passes does.
    pytest.mark.usefixtures("secrets_given"),
]


async def _startup() -> None:
    comm = ApplicationCommunicator(lifespan, {"type": "lifespan"})
    await comm.send_input({"type": "lifespan.startup"})
    assert (await comm.receive_output(60))["type"] == "lifespan.startup.complete"
    await comm.send_input({"type": "lifespan.shutdown"})
    assert (await comm.receive_output(30))["type"] == "lifespan.shutdown.complete"


async def test_startup_loads_the_embedding_model_only_when_a_route_needs_it():
    previous = cache.use(cache.build_from_settings())
    try:
        await _startup()
        assert cache.default().embedder.state == "idle"  # no semantic route: nothing loaded
        cache.use(cache.build_from_settings())
        await sync_to_async(route_create)(
            name="team/semantic", candidates=[], cache_ttl_seconds=60, semantic_cache=True
        )
        await _startup()
        assert cache.default().embedder.state == "ready"
    finally:
        cache.use(previous)


async def test_learned_statistics_survive_a_restart():
    from apps.routing.engine.router import get_engine, reset_engine
    from apps.routing.models import BanditArm

    reset_engine()
    # Start from nothing learned (with Redis the statistics outlive earlier test runs).
    await asyncio.to_thread(get_engine().store.clear)
    try:
        await get_engine().store.record(
            "atp/balanced", 4, "sim-fast", {"pulls": 3.0, "reward_sum": 2.4}
        )
        await _startup()  # shutdown persists what this process learned
        arm = await sync_to_async(BanditArm.objects.get)(
            route="atp/balanced", cluster=4, model="sim-fast"
        )
        assert (arm.pulls, arm.reward_sum) == (3.0, 2.4)
        reset_engine()  # a new process...
        await _startup()  # ...loads it at start-up
        arms = get_engine().store.snapshot()[("atp/balanced", 4)]
        assert arms["sim-fast"].pulls == 3.0
    finally:
        reset_engine()
