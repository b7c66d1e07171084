"""Provider health checks against fake upstreams on 127.0.0.1: statuses, bounded history,
breaker feeding, the Celery task, selectors and the admin columns."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from apps.providers import selectors
from apps.providers.health import health_check_run
from apps.providers.models import HealthCheck, ModelDeployment, Provider
from apps.providers.tasks import health_check_task
from apps.routing.resilience.breaker import (
    CLOSED,
    OPEN,
    BreakerConfig,
    MemoryBreakers,
    set_breakers,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

OPENAI_KEY = "sk-fake-test-key"


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def breakers() -> Iterator[MemoryBreakers]:
    made = MemoryBreakers(
        BreakerConfig(window=300, min_requests=2, failure_rate=0.5, cooldown=60), clock=Clock()
    )
    set_breakers(made)
    yield made
    set_breakers(None)


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=OPENAI_KEY, models=["gpt-4o-mini", "text-embedding-3-small"])
    fake.start_in_thread()
    yield fake
    fake.stop()


def provider(name: str, kind: str, base_url: str = "", key: str = "", **fields) -> Provider:
    p = Provider(name=name, kind=kind, base_url=base_url, **fields)
    if key:
        p.set_api_key(key)
    p.save()
    return p


def deploy(p: Provider, upstream: str, **fields) -> ModelDeployment:
    fields.setdefault("capabilities", ["chat"])
    return ModelDeployment.objects.create(
        provider=p, public_name=f"{p.name}-{upstream}", upstream_model=upstream, **fields
    )


def checks_of(p: Provider) -> list[HealthCheck]:
    return list(HealthCheck.objects.filter(provider=p).order_by("-checked_at", "-id"))


def test_openai_compatible_provider_is_up_when_it_lists_the_deployed_models(openai_fake, breakers):
    p = provider("oa", "openai_compatible", openai_fake.base_url, OPENAI_KEY)
    deploy(p, "gpt-4o-mini")
    [check] = health_check_run()
    assert check.provider == p and check.status == HealthCheck.Status.UP
    assert check.latency_ms is not None and check.error == ""
    # The fake lists models only for the right key (see the rejected-key test).
    assert openai_fake.bodies("/chat/completions") == []  # no tokens spent


def test_a_deployed_model_missing_upstream_makes_it_degraded(openai_fake, breakers):
    p = provider("oa", "openai_compatible", openai_fake.base_url, OPENAI_KEY)
    deploy(p, "gpt-4o-mini")
    deploy(p, "gpt-9-imaginary")
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.DEGRADED
    assert "gpt-9-imaginary" in check.error


def test_a_slow_answer_is_degraded(breakers, settings):
    settings.ATP_HEALTH_DEGRADED_MS = 30
    p = provider("slow", "simulator", options={"latency_ms": 80})
    deploy(p, "sim-1")
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.DEGRADED
    assert check.latency_ms >= 80 and "over 30 ms" in check.error


def test_a_rejected_key_is_down_without_echoing_it(openai_fake, breakers):
    p = provider("oa", "openai_compatible", openai_fake.base_url, "sk-wrong-secret-key")
    deploy(p, "gpt-4o-mini")
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.DOWN
    assert "credentials" in check.error and "sk-wrong-secret-key" not in check.error


def test_an_unreachable_provider_is_down(breakers, settings):
    settings.ATP_HEALTH_TIMEOUT_SECONDS = 2
    p = provider("gone", "openai_compatible", "http://127.0.0.1:9/v1", "k")
    deploy(p, "m")
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.DOWN
    assert "cannot be reached" in check.error or "No answer" in check.error


def test_anthropic_is_probed_with_a_one_token_completion(breakers):
    fake = FakeAnthropic(api_key="sk-ant-probe")
    fake.start_in_thread()
    try:
        p = provider("anth", "anthropic", fake.base_url, "sk-ant-probe")
        deploy(p, "claude-3-5-haiku-latest", input_price=Decimal("0.8"))
        deploy(p, "claude-opus-4", input_price=Decimal("15"))
        [check] = health_check_run()
        assert check.status == HealthCheck.Status.UP, check.error
        [request] = fake.requests
        assert request.path == "/v1/messages"
        assert request.body["max_tokens"] == 1
        assert request.body["model"] == "claude-3-5-haiku-latest"  # the cheapest
    finally:
        fake.stop()


def test_gemini_is_probed_with_a_one_token_completion(breakers):
    fake = FakeGemini(api_key="AIza-probe")
    fake.start_in_thread()
    try:
        p = provider("gem", "gemini", fake.base_url, "AIza-probe")
        deploy(p, "gemini-2.0-flash")
        [check] = health_check_run()
        assert check.status == HealthCheck.Status.UP, check.error
        assert fake.requests[-1].path.endswith("gemini-2.0-flash:generateContent")
    finally:
        fake.stop()


def test_ollama_is_probed_through_its_model_list():
    fake = FakeOllama(models=["llama3.2:latest"])
    fake.start_in_thread()
    try:
        p = provider("oll", "ollama", f"http://127.0.0.1:{fake.port}")
        deploy(p, "llama3.2")
        [check] = health_check_run()
        assert check.status == HealthCheck.Status.UP, check.error
        deploy(p, "mistral")
        [check] = health_check_run()
        assert check.status == HealthCheck.Status.DEGRADED and "mistral" in check.error
    finally:
        fake.stop()


def test_down_probes_open_the_breaker_and_an_up_probe_lets_it_probe_again(breakers):
    p = provider("sim", "simulator", options={"failure_rate": 1.0})
    dep = deploy(p, "sim-1")
    disabled = deploy(p, "sim-off", enabled=False)
    key = str(dep.id)
    health_check_run()
    assert breakers.peek(key) == CLOSED  # one failure: under the minimum
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.DOWN and "simulated" in check.error
    assert breakers.peek(key) == OPEN
    assert breakers.peek(str(disabled.id)) == CLOSED  # disabled deployments are left alone
    Provider.objects.filter(pk=p.pk).update(options={})
    [check] = health_check_run()
    assert check.status == HealthCheck.Status.UP
    assert breakers._decide(key).probe  # half-open now, not after the 60 s cool-down


def test_history_is_bounded_per_provider(breakers, settings):
    settings.ATP_HEALTH_HISTORY = 3
    first = provider("sim-a", "simulator")
    deploy(first, "a")
    second = provider("sim-b", "simulator")
    deploy(second, "b")
    for _ in range(5):
        health_check_run()
    assert len(checks_of(first)) == 3 and len(checks_of(second)) == 3


def test_disabled_providers_and_providers_without_anything_to_probe_are_skipped(breakers):
    off = provider("off", "simulator", enabled=False)
    deploy(off, "x")
    provider("empty", "simulator")
    assert health_check_run() == []
    assert HealthCheck.objects.count() == 0


def test_the_celery_task_runs_the_checks(breakers):
    p = provider("sim", "simulator")
    deploy(p, "sim-1")
    result = health_check_task.apply().get(timeout=30)
    assert result == {"sim": "up"}
    assert checks_of(p)[0].status == "up"


def test_selectors_show_the_latest_health_and_the_breakers(breakers):
    p = provider("sim", "simulator", options={"failure_rate": 1.0})
    dep = deploy(p, "sim-1")
    health_check_run()
    health_check_run()
    Provider.objects.filter(pk=p.pk).update(options={})
    health_check_run()
    [row] = selectors.provider_list_with_health()
    assert row.health_status == "up" and row.health_checked_at is not None
    assert [c.status for c in selectors.health_check_list(provider=p)] == ["up", "down", "down"]
    [res] = selectors.deployment_resilience_list()
    assert res["deployment"] == dep
    assert res["breaker"]["state"] == OPEN and res["breaker"]["failures"] == 2


def test_admin_lists_show_health_and_circuit_state(admin_client, breakers):
    p = provider("sim", "simulator")
    deploy(p, "sim-1")
    health_check_run()
    page = admin_client.get("/admin/providers/provider/")
    assert page.status_code == 200 and b"Probe ms" in page.content
    assert b">up<" in page.content
    page = admin_client.get("/admin/providers/healthcheck/")
    assert page.status_code == 200 and b"sim" in page.content
    page = admin_client.get("/admin/providers/modeldeployment/")
    assert page.status_code == 200 and b"closed (0/0 failed)" in page.content
