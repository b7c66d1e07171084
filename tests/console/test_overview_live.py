"""Two gateway processes on one database and one Redis: requests through both show up in the
overview of one, and a request settled by one reaches a console socket held by the other."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid

import httpx
import pytest

from tests.e2e.conftest import live as live  # noqa: F401 - the fixture
from tests.e2e.conftest import run_manage

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.timeout(240)]

CREATE_SUPERUSER = """
from django.contrib.auth import get_user_model
User = get_user_model()
user, _ = User.objects.get_or_create(username={username!r})
user.set_password({password!r})
user.is_superuser = True
user.is_staff = True
user.save()
"""


@pytest.fixture(scope="module")
def two(request):
    """(live, first process, second process): checked before any server starts."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("two processes share figures through Redis (REDIS_URL)")
    gateway = request.getfixturevalue("live")
    second = gateway.start_server()
    gateway.extra_servers.append(second)
    return gateway, gateway.server, second


def _sign_in(gateway, base_url: str) -> httpx.Client:
    username, password = f"overview-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    run_manage(
        gateway.env, "shell", "-c", CREATE_SUPERUSER.format(username=username, password=password)
    )
    http = httpx.Client(base_url=base_url, timeout=10)
    form = http.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = http.post(
        "/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={"Referer": f"{base_url}/login/"},
    )
    assert answer.status_code == 302, answer.text[:500]
    return http


def _chat(gateway, base_url: str, model: str = "sim-fast") -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=gateway.key, max_retries=0)
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "count me"}]
    )
    assert answer.choices[0].message.content


def test_requests_through_both_processes_show_in_one_overview(two):
    gateway, first, second = two
    http = _sign_in(gateway, first.base_url)
    start = http.get("/overview/figures/").json()["traffic"]["requests_hour"]
    for _ in range(3):
        _chat(gateway, first.base_url)
    for _ in range(4):
        _chat(gateway, second.base_url, model="sim-cheap")
    deadline = time.monotonic() + 20
    while True:
        figures = http.get("/overview/figures/").json()
        traffic = figures["traffic"]
        # The last minute's window leaves out the newest seconds (still being counted).
        settled = traffic["requests_minute"] >= 7 and traffic["latency_p95_ms"] is not None
        if traffic["requests_hour"] >= start + 7 and traffic["processes"] >= 2 and settled:
            break
        assert time.monotonic() < deadline, f"figures never merged: {traffic}"
        time.sleep(0.5)
    models = {row["name"]: row["requests"] for row in traffic["models"]}
    assert models.get("sim-cheap", 0) >= 4  # counted by the other process only
    assert models.get("sim-fast", 0) >= 3
    page = http.get("/")
    assert page.status_code == 200
    assert "sim-cheap" in page.text


def test_a_request_settled_by_one_process_reaches_a_socket_on_the_other(two):
    from websockets.sync.client import connect

    gateway, first, second = two
    http = _sign_in(gateway, first.base_url)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
    socket_url = first.base_url.replace("http://", "ws://") + "/ws/console/"
    with connect(
        socket_url,
        additional_headers={"Cookie": cookie},
        origin=first.base_url,
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"type": "subscribe", "topics": ["requests.stream"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        _chat(gateway, second.base_url, model="sim-cheap")
        deadline = time.monotonic() + 15
        while True:
            frame = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if frame.get("topic") == "requests.stream":
                models = [r["model"] for r in frame["data"]["requests"]]
                if "sim-cheap" in models:
                    break
