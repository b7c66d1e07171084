"""Pages run under the Content-Security-Policy without a single violation, third-party
pages (Django admin, Swagger UI, Redoc) included."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def _policy(page, path: str) -> str:
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    return response.headers["content-security-policy"]


def test_the_console_and_the_admin_run_under_the_strict_policy(signed_in_page):
    page = signed_in_page("superuser", path="")
    for path in ("/", "/account/", "/admin/", "/admin/auth/user/", "/admin/auth/user/add/"):
        policy = _policy(page, path)
        assert "script-src 'self';" in policy + ";" and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data:" in policy
        host = page.url.split("/")[2]
        assert f"ws://{host}" in policy and f"wss://{host}" in policy
    assert page.csp_errors == []


def test_swagger_ui_and_redoc_render_under_their_page_policy(signed_in_page):
    page = signed_in_page("superuser", path="")
    policy = _policy(page, "/api/v1/docs/")
    # Swagger UI's start-up script is inline: it carries this response's nonce.
    assert "script-src 'self' 'nonce-" in policy and "'unsafe-eval'" not in policy
    page.locator("#swagger-ui .info .title").wait_for()
    assert "ATP management API" in page.locator("#swagger-ui .info .title").inner_text()

    policy = _policy(page, "/api/v1/redoc/")
    assert "script-src 'self';" in policy + ";"
    page.get_by_role("heading", name="ATP management API").first.wait_for()
    page.wait_for_load_state("networkidle")
    # Redoc's "powered by" logo points at its CDN: the policy is what keeps that request
    # from leaving, and nothing else is refused.
    refused = [e for e in page.csp_errors if "https://cdn.redoc.ly/" not in e]
    assert refused == []
