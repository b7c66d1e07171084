"""Upstream calls are bounded: redirects are never followed (data plane and health probes),
a non-streamed body larger than ATP_UPSTREAM_MAX_BODY_BYTES fails with a 502 instead of
being read into memory, and a stream sending far more chunks than the request's maximum
output allows is cut off. Fake upstreams on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest
from aiohttp import web
from asgiref.sync import sync_to_async

from apps.providers.health import health_check_run
from apps.providers.http import close_sessions
from apps.providers.models import HealthCheck, ModelDeployment, Provider
from apps.routing.snapshot import holder
from atp_site.lib import config_version
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serving import LoopbackServer
from tests.routing.conftest import call

UPSTREAM_KEY = "sk-fake-test-key"
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hello"}]}


class Recorder(LoopbackServer):
    """The redirect's target: records every request it gets, whatever the path."""

    name = "redirect target"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.record)

    async def record(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path, request.headers.get("authorization", "")))
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini"}]})


class Redirector(LoopbackServer):
    """Answers every request with `status` and a Location on another server."""

    name = "redirecting upstream"

    def __init__(self, target: str, status: int = 307) -> None:
        super().__init__()
        self.target = target
        self.status = status
        self.hits = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.redirect)

    async def redirect(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(
            status=self.status, headers={"location": f"{self.target}{request.path_qs}"}
        )


class Flood(LoopbackServer):
    """Answers with an endless JSON-looking body (no Content-Length), or a declared one."""

    name = "flooding upstream"

    def __init__(self, *, declare_length: int | None = None) -> None:
        super().__init__()
        self.declare_length = declare_length
        self.sent = 0
        self.stopped = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.flood)

    async def flood(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "application/json"})
        if self.declare_length is not None:
            response.content_length = self.declare_length
        await response.prepare(request)
        block = b'{"pad": "' + b"x" * 65536
        try:
            # Up to 2 GiB: far more than any test may read.
            while self.sent < 2 << 30:
                await response.write(block)
                self.sent += len(block)
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.stopped.set()
        return response


def _deploy(name: str, base_url: str) -> ModelDeployment:
    provider = Provider(name=name, kind="openai_compatible", base_url=base_url)
    provider.set_api_key(UPSTREAM_KEY)
    provider.save()
    return ModelDeployment.objects.create(
        provider=provider,
        public_name="gpt-x",
        upstream_model="gpt-4o-mini",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        capabilities=["chat", "streaming"],
    )


@pytest.fixture
async def _sessions():
    yield
    await close_sessions()


async def _serve(gateway, name: str, base_url: str) -> None:
    def build():
        _deploy(name, base_url)
        config_version.bump()

    await sync_to_async(build)()
    holder.invalidate()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirecting_upstream_is_an_error_and_its_target_is_never_called(
    gateway, _sessions, status
):
    async with Recorder() as target:
        redirector = Redirector(target.base_url, status=status)
        async with redirector:
            await _serve(gateway, "redirecting", f"{redirector.base_url}/v1")
            resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=CHAT)
            streamed = await call(
                "POST", "/v1/chat/completions", key=gateway.key, json={**CHAT, "stream": True}
            )
        assert redirector.hits >= 2
        # Neither the request nor ATP's upstream credential went where Location pointed.
        assert target.seen == []
    assert resp.status == 502, resp.body
    error = resp.json()["error"]
    assert error["code"] == "upstream_redirect"
    assert f"HTTP {status}" in error["message"]
    assert streamed.status == 502 and streamed.json()["error"]["code"] == "upstream_redirect"


@pytest.fixture
def redirected_probe() -> Iterator[tuple[Redirector, Recorder]]:
    target = Recorder()
    target.start_in_thread()
    redirector = Redirector(target.base_url)
    redirector.start_in_thread()
    yield redirector, target
    redirector.stop()
    target.stop()


@pytest.mark.django_db
def test_a_health_probe_does_not_follow_a_redirect(redirected_probe):
    redirector, target = redirected_probe
    deployment = _deploy("redirecting", f"{redirector.base_url}/v1")
    [check] = health_check_run()
    assert check.provider == deployment.provider
    assert check.status == HealthCheck.Status.DOWN
    assert "redirect" in check.error
    assert redirector.hits == 1
    assert target.seen == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("declared", [None, 2 << 30])
async def test_an_oversized_upstream_body_fails_with_a_502_without_being_read(
    gateway, settings, _sessions, declared
):
    settings.ATP_UPSTREAM_MAX_BODY_BYTES = 1 << 20
    flood = Flood(declare_length=declared)
    async with flood:
        await _serve(gateway, "flooding", f"{flood.base_url}/v1")
        resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=CHAT, wait=30)
        await close_sessions()
        await asyncio.wait_for(flood.stopped.wait(), 10)
    assert resp.status == 502, resp.body
    error = resp.json()["error"]
    assert error["code"] == "upstream_body_too_large"
    assert "ATP_UPSTREAM_MAX_BODY_BYTES" in error["message"]
    # The upstream was cut off near the limit, not read to the end (socket buffers aside).
    assert flood.sent < 64 << 20


@pytest.mark.django_db(transaction=True)
async def test_a_body_within_the_limit_is_read(gateway, settings, _sessions):
    settings.ATP_UPSTREAM_MAX_BODY_BYTES = 1 << 20
    async with FakeOpenAI() as fake:
        await _serve(gateway, "normal", fake.base_url)
        resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=CHAT)
    assert resp.status == 200, resp.body


class StreamFlood(LoopbackServer):
    """Streams `chunks` chat chunks at once, whatever the request's max_tokens."""

    name = "stream-flooding upstream"

    def __init__(self, chunks: int) -> None:
        super().__init__()
        self.chunks = chunks
        self.written = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.flood)

    async def flood(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = (
            b'data: {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", '
            b'"choices": [{"index": 0, "delta": {"content": "w "}, "finish_reason": null}]}\n\n'
        )
        try:
            for _ in range(self.chunks // 100):
                await response.write(chunk * 100)
                self.written += 100
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        return response


@pytest.mark.django_db(transaction=True)
async def test_a_stream_far_longer_than_max_tokens_is_cut_off(gateway, _sessions):
    flood = StreamFlood(chunks=200_000)
    async with flood:
        await _serve(gateway, "stream-flooding", f"{flood.base_url}/v1")
        body = {**CHAT, "stream": True, "max_tokens": 20}
        resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=body, wait=30)
        await close_sessions()
    assert resp.status == 200  # the stream had started
    text = resp.body.decode()
    relayed = text.count('"content":"w "') + text.count('"content": "w "')
    assert 0 < relayed <= 2 * 20 + 64 + 1  # the first chunk, then the rest's allowance
    assert "upstream_stream_too_long" in text
    assert "[DONE]" not in text.split("upstream_stream_too_long", 1)[1]


@pytest.mark.django_db(transaction=True)
async def test_a_stream_within_its_allowance_is_relayed_whole(gateway, _sessions):
    flood = StreamFlood(chunks=100)
    async with flood:
        await _serve(gateway, "long-enough", f"{flood.base_url}/v1")
        body = {**CHAT, "stream": True, "max_tokens": 100}
        resp = await call("POST", "/v1/chat/completions", key=gateway.key, json=body, wait=30)
        await close_sessions()
    text = resp.body.decode()
    assert resp.status == 200 and "upstream_stream_too_long" not in text
    assert text.count('"content":"w "') + text.count('"content": "w "') == 100
    assert text.rstrip().endswith("data: [DONE]")
