"""Production behaviour of a live server: access logs without query strings, HTTPS cookies
and HSTS behind a proxy."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import run_manage

pytestmark = pytest.mark.live


def test_access_logs_never_record_a_key_sent_in_a_url(live):
    server = live.start_server(access_log=True)
    live.extra_servers.append(server)
    secret = f"atp_urlsecret-{uuid.uuid4().hex}"
    assert httpx.get(f"{server.base_url}/healthz?api_key={secret}", timeout=5).status_code == 200
    assert httpx.get(f"{server.base_url}/v1/models?key={secret}", timeout=5).status_code == 401
    ws_url = server.base_url.replace("http://", "ws://") + f"/v1/realtime?api_key={secret}"
    with connect(ws_url) as ws:
        ws.send('{"type": "ping"}')
        assert ws.recv(timeout=10) == '{"type":"pong"}'
    deadline = time.monotonic() + 10
    while len(re.findall(r"(api_key|key)=\*\*\*", server.log())) < 3:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    server.stop()
    log = server.log()
    assert "GET /healthz?api_key=***" in log
    assert "/v1/realtime?api_key=***" in log
    assert secret not in log


def test_https_behind_a_proxy_gets_secure_cookies_and_hsts(live):
    username = f"https-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    run_manage(
        {**live.env, "DJANGO_SUPERUSER_PASSWORD": password},
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
    )
    server = live.start_server(ATP_HTTPS="true", ATP_TRUST_X_FORWARDED_PROTO="true")
    live.extra_servers.append(server)
    origin = server.base_url.replace("http://", "https://")
    proxied = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        page = http.get("/login/", headers=proxied)
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
        csrf_cookie = page.headers["set-cookie"]
        assert "csrftoken=" in csrf_cookie
        assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        # A Secure cookie is not sent back over http://, which the proxy would use: hand
        # it over as the proxy would.
        cookie = re.search(r"csrftoken=([^;]+)", csrf_cookie).group(1)
        http.cookies.clear()
        login = http.post(
            "/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={
                **proxied,
                "Origin": origin,
                "Referer": f"{origin}/login/",
                "Cookie": f"csrftoken={cookie}",
            },
        )
        assert login.status_code == 302, login.text[:2000]
        session_cookie = next(
            v for k, v in login.headers.multi_items() if k == "set-cookie" and "sessionid=" in v
        )
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie
        # A plain-HTTP request (no proxy header) gets no HSTS.
        assert "strict-transport-security" not in http.get("/login/").headers
