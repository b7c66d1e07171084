"""Production settings: cookies, HTTPS switches, the API schema and docs, message storage,
and query strings kept out of server logs."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from apps.tenants.models import ApiKey
from atp_site.lib.logs import RedactQueryStrings, redact

ROOT = Path(__file__).resolve().parents[2]
DOC_PAGES = ("/api/v1/docs/", "/api/v1/redoc/")


def _settings_under(**env: str) -> dict:
    """The settings a process started with `env` ends up with."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n) for n in ("
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
        "'CSRF_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', "
        "'MESSAGE_STORAGE')}))"
    )
    names = ("ATP_HTTPS", "ATP_HSTS_SECONDS", "ATP_TRUST_X_FORWARDED_PROTO")
    base = {k: v for k, v in os.environ.items() if k not in names}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "atp_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_settings_follow_one_switch():
    plain = _settings_under()
    assert plain["SESSION_COOKIE_HTTPONLY"] and plain["CSRF_COOKIE_HTTPONLY"]
    assert not plain["SESSION_COOKIE_SECURE"] and not plain["CSRF_COOKIE_SECURE"]
    assert plain["SECURE_HSTS_SECONDS"] == 0 and plain["SECURE_PROXY_SSL_HEADER"] is None
    https = _settings_under(ATP_HTTPS="true", ATP_TRUST_X_FORWARDED_PROTO="true")
    assert https["SESSION_COOKIE_SECURE"] and https["CSRF_COOKIE_SECURE"]
    assert https["SECURE_HSTS_SECONDS"] == 31_536_000
    assert https["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert _settings_under(ATP_HTTPS="true", ATP_HSTS_SECONDS="600")["SECURE_HSTS_SECONDS"] == 600


@pytest.mark.django_db
def test_csrf_cookie_is_http_only(client):
    resp = client.get("/login/")
    cookie = resp.cookies["csrftoken"]
    assert cookie["httponly"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/schema/", *DOC_PAGES])
def test_the_api_schema_and_docs_need_authentication(client, admin_client, token_client, path):
    assert client.get(path).status_code == 401
    assert admin_client.get(path).status_code == 200
    if path == "/api/v1/schema/":
        assert token_client.get(path).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", DOC_PAGES)
def test_docs_pages_load_only_this_servers_assets(admin_client, path):
    html = admin_client.get(path).content.decode()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets, html
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr", html), html
    if path == "/api/v1/docs/":
        assert '"validatorUrl": null' in html  # no schema URL sent to swagger.io
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert Client().get(asset).status_code == 200, asset


@pytest.mark.django_db
def test_a_new_key_shown_once_never_travels_in_a_cookie(admin_client, tenant_factory):
    tenant = tenant_factory()
    resp = admin_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.pk, "name": "shown-once", "allowed_models": "[]", "expires_at": ""},
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert ApiKey.objects.filter(name="shown-once").exists()
    assert "messages" not in resp.cookies
    assert "atp_" not in str(resp.cookies)
    page = admin_client.get(resp["Location"]).content.decode()
    shown = re.search(r"New key for [^:]+: (atp_[A-Za-z0-9_-]+)", page)
    assert shown is not None  # shown once, from the session
    assert shown.group(1) not in str(resp.cookies)
    assert "copy it now" not in admin_client.get(resp["Location"]).content.decode()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET /v1/realtime?api_key=atp_secret HTTP/1.1",
            "GET /v1/realtime?api_key=*** HTTP/1.1",
        ),
        ("/api/v1/keys/?limit=5&offset=10", "/api/v1/keys/?limit=***&offset=***"),
        ("/x?atp_secret", "/x?***"),
        ("/healthz", "/healthz"),
    ],
)
def test_query_values_are_masked(line, expected):
    assert redact(line) == expected


def test_the_filter_keeps_uvicorns_access_record_shape():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/v1/models?api_key=atp_secret", "1.1", 401),
        None,
    )
    assert RedactQueryStrings().filter(record)
    assert record.args == ("127.0.0.1:1", "GET", "/v1/models?api_key=***", "1.1", 401)
    assert "atp_secret" not in record.getMessage()


def test_the_filter_masks_daphnes_runserver_lines():
    record = logging.LogRecord(
        "django.channels.server",
        logging.INFO,
        __file__,
        1,
        "HTTP %(method)s %(path)s %(status)s",
        None,
        None,
    )
    record.args = {"method": "GET", "path": "/v1/realtime?api_key=atp_secret", "status": 403}
    assert RedactQueryStrings().filter(record)
    assert record.getMessage() == "HTTP GET /v1/realtime?api_key=*** 403"


def test_every_server_request_logger_is_filtered():
    for name in ("uvicorn.access", "uvicorn.error", "django.channels.server", "django.server"):
        assert any(isinstance(f, RedactQueryStrings) for f in logging.getLogger(name).filters)
