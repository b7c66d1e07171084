"""API keys from a real browser: an admin creates a key in the console, copies it from the
page, uses it with the official OpenAI SDK against the live server and sees the request in
the key's usage; a tenant admin sees only their tenant's keys. Every page of tenants, keys and
settings is photographed (both themes, desktop and phone) and checked with axe-core."""

from __future__ import annotations

import re
import uuid

import pytest
from openai import OpenAI

from tests.browser.helpers import (
    SCREENSHOTS,
    THEMES,
    accessibility_violations,
    check_accessibility,
    screenshot,
    set_theme,
)

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

LIVE_TENANT = "live"  # the tenant of tests/e2e's live configuration


def _wait_for_requests(page, expected: int, attempts: int = 40) -> str:
    """Reload the key's page until its 24-hour request count reaches `expected`.

    The request log is written behind (every 0.1 s on the live server), so the count
    appears a moment after the answer."""
    shown = ""
    for _ in range(attempts):
        shown = page.locator("[data-usage=requests]").first.inner_text().strip()
        if shown == str(expected):
            return shown
        page.wait_for_timeout(250)
        page.reload()
    return shown


def test_admin_creates_a_key_copies_it_and_uses_it_with_the_openai_sdk(signed_in_page, console):
    name = f"browser-{uuid.uuid4().hex[:6]}"
    page = signed_in_page(
        "superuser", path="/keys/add/", permissions=["clipboard-read", "clipboard-write"]
    )
    assert page.csp_errors == []
    check_accessibility(page)
    screenshot(page, "apikey-add")

    # A mistake first: the error shows next to its field, in place.
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Create key").click()
    page.locator("#id_name_error").wait_for()

    page.get_by_label("Tenant").select_option(LIVE_TENANT)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Allowed models").fill("sim-fast")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator(".secret-once #secret-value")
    secret.wait_for()
    shown = secret.inner_text().strip()
    assert re.fullmatch(r"atp_[A-Za-z0-9_-]{20,}", shown)

    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown
    check_accessibility(page)
    screenshot(page, "apikey-created")

    client = OpenAI(base_url=f"{console.base_url}/v1", api_key=copied, timeout=20, max_retries=0)
    answer = client.chat.completions.create(
        model="sim-fast", messages=[{"role": "user", "content": "Hello from the console"}]
    )
    assert answer.choices[0].message.content and answer.usage.total_tokens > 0

    page.get_by_role("link", name="I have copied it").click()
    page.wait_for_url(re.compile(r"/keys/[0-9a-f-]{36}/$"))
    assert _wait_for_requests(page, 1) == "1"
    # The secret is never shown again: the page has only its prefix.
    assert copied not in page.content() and copied[:12] in page.content()
    check_accessibility(page)
    screenshot(page, "apikey-detail")

    # Rotation asks first, in a dialog, and shows the new key once.
    for theme in THEMES:
        set_theme(page, theme)  # the open dialog covers the toggle: choose the theme first
        page.get_by_role("link", name="Rotate").click()
        dialog = page.locator("#console-modal")
        dialog.get_by_role("button", name="Rotate").wait_for()
        assert accessibility_violations(page) == [], theme
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"apikey-rotate-confirm-{theme}-desktop.png"))
        if theme != THEMES[-1]:
            dialog.get_by_role("button", name="Cancel").click()
            dialog.wait_for(state="hidden")
    dialog.get_by_role("button", name="Rotate").click()
    rotated = page.locator(".secret-once #secret-value").inner_text().strip()
    assert rotated != copied
    try:
        client.models.list()
    except Exception as exc:  # the old key stops at once
        assert getattr(exc, "status_code", None) == 401
    else:
        raise AssertionError("the rotated key still works")
    assert OpenAI(
        base_url=f"{console.base_url}/v1", api_key=rotated, timeout=20, max_retries=0
    ).models.list()

    page.goto("/keys/")
    page.get_by_role("link", name=name).first.wait_for()
    check_accessibility(page)
    screenshot(page, "apikey-list")


def test_tenant_pages_and_settings_are_photographed_and_accessible(signed_in_page):
    page = signed_in_page("superuser", path="/tenants/")
    page.get_by_role("link", name="Live tests").wait_for()
    check_accessibility(page)
    screenshot(page, "tenant-list")
    page.get_by_role("link", name="Live tests").click()
    page.get_by_role("heading", name="Live tests").wait_for()
    check_accessibility(page)
    screenshot(page, "tenant-detail")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name").wait_for()
    check_accessibility(page)
    screenshot(page, "tenant-edit")

    page.goto("/settings/tokens/add/")
    page.get_by_label("Name").fill("browser-token")
    page.get_by_role("button", name="Create token").click()
    page.locator(".secret-once #secret-value").wait_for()
    check_accessibility(page)
    screenshot(page, "admintoken-created")
    page.goto("/settings/tokens/")
    page.get_by_role("cell", name="browser-token", exact=True).wait_for()
    check_accessibility(page)
    screenshot(page, "admintoken-list")

    page.goto("/settings/users/")
    check_accessibility(page)
    screenshot(page, "user-list")
    page.get_by_role("link", name="ui-superuser").click()
    page.get_by_role("heading", name="Global roles").wait_for()
    check_accessibility(page)
    screenshot(page, "user-detail")


def test_tenant_admin_sees_only_their_tenants_keys(signed_in_page, console):
    admin = signed_in_page("superuser", path="/keys/?tenant=live")
    live_key = admin.get_by_role("link", name="live", exact=True)
    live_key.wait_for()
    live_key_url = live_key.get_attribute("href")

    page = signed_in_page("tenant-admin", path="/keys/add/")
    options = page.locator("#id_tenant option").all_inner_texts()
    assert [o for o in options if o != "Choose a tenant"] == ["acme"]
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Name").fill("acme-browser")
    page.get_by_role("button", name="Create key").click()
    page.locator(".secret-once #secret-value").wait_for()

    page.goto("/keys/")
    rows = page.locator("#console-table tbody tr")
    assert rows.count() >= 1
    for text in rows.all_inner_texts():
        assert "acme" in text and "live" not in text.split()
    check_accessibility(page)
    screenshot(page, "apikey-list-tenant-admin")
    # Guessing another tenant's key: not found.
    response = page.goto(live_key_url)
    assert response.status == 404
    page.goto("/tenants/")
    assert page.locator("#console-table tbody tr").count() == 1
    assert page.get_by_role("link", name="Live tests").count() == 0
