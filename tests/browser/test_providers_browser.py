"""Providers and models from a real browser: create a provider pointing at a fake OpenAI
upstream, test its connection in place, add a model; screenshots and axe checks."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import check_accessibility, screenshot
from tests.e2e.conftest import UPSTREAM_OPENAI_KEY

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def test_create_a_provider_test_it_and_add_a_model(signed_in_page, console):
    name = f"browser-openai-{uuid.uuid4().hex[:6]}"
    model = f"browser-gpt-{uuid.uuid4().hex[:6]}"
    page = signed_in_page("platform-admin", path="/providers/")
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    assert page.csp_errors == []

    # Create the provider; the key goes in once and is never shown again.
    page.get_by_role("link", name="Add provider").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Protocol").select_option("openai_compatible")
    page.get_by_label("Base URL").fill(console.openai_upstream.base_url)
    page.get_by_label("API key", exact=True).fill(UPSTREAM_OPENAI_KEY)
    page.get_by_role("button", name="Create provider").click()
    page.wait_for_url(re.compile(r"/providers/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert "stored encrypted" in page.content()
    assert UPSTREAM_OPENAI_KEY not in page.content()

    # Test connectivity: the result appears in the page without a reload.
    page.evaluate("window.__notReloaded = true")
    page.get_by_role("button", name="Test connectivity").click()
    result = page.locator("#connectivity-result")
    result.get_by_text("Connection OK").wait_for()
    assert re.search(r"in \d+ ms", result.inner_text())
    assert page.evaluate("window.__notReloaded") is True
    # The health history below was refreshed from the same response.
    expect(page.locator("#health-history-region").get_by_text("up").first).to_be_visible()
    assert page.csp_errors == []

    # Add a model to it (the provider is preselected).
    page.get_by_role("link", name="Add model").click()
    page.get_by_label("Public name").fill(model)
    page.get_by_label("Upstream model").fill("gpt-4o-mini")
    page.get_by_role("spinbutton", name="Input price", exact=True).fill("0.15")
    page.get_by_role("spinbutton", name="Output price", exact=True).fill("0.6")
    page.get_by_label("Cached input price").fill("0.075")
    page.get_by_label("Tools").check()
    page.get_by_role("button", name="Create model").click()
    page.wait_for_url(re.compile(r"/models/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name=model)).to_be_visible()
    assert "$0.15" in page.content() and "$0.075" in page.content()
    check_accessibility(page)
    screenshot(page, "model-detail")

    # Reset its circuit through the confirmation dialog (audited).
    page.get_by_role("link", name="Reset circuit").click()
    dialog = page.locator("#console-modal")
    dialog.get_by_role("button", name="Reset circuit").wait_for()
    expect(dialog.get_by_text("Close the circuit breaker")).to_be_visible()
    dialog.get_by_role("button", name="Reset circuit").click()
    page.get_by_text(f"Circuit of {model} closed.").wait_for()
    resets = console.db.query(
        "SELECT count(*) FROM audit_auditevent WHERE event_type = 'deployment.circuit_reset'"
    )
    assert resets[0][0] >= 1

    # Errors next to the field, never a 500.
    page.goto("/models/add/")
    page.get_by_label("Public name").fill(model + "-bad")
    page.get_by_label("Upstream model").fill("x")
    page.get_by_role("spinbutton", name="Input price", exact=True).fill("-1")
    page.get_by_role("spinbutton", name="Output price", exact=True).fill("1")
    page.get_by_role("button", name="Create model").click()
    page.locator("#id_input_price_error").wait_for()
    check_accessibility(page, themes=("light",))
    screenshot(page, "model-form-errors")

    page.goto("/providers/")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    check_accessibility(page)
    screenshot(page, "providers-list")

    page.get_by_role("link", name=name).click()
    page.wait_for_url(re.compile(r"/providers/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("link", name=model)).to_be_visible()
    check_accessibility(page)
    screenshot(page, "provider-detail")

    page.goto("/models/")
    expect(page.get_by_role("link", name=model)).to_be_visible()
    check_accessibility(page)
    screenshot(page, "models-list")

    rows = console.db.query(
        "SELECT status, latency_ms FROM providers_healthcheck h JOIN providers_provider p "
        "ON p.id = h.provider_id WHERE p.name = %s",
        (name,),
    )
    assert len(rows) == 1 and rows[0][0] == "up" and rows[0][1] is not None


def test_a_reader_sees_no_write_buttons(signed_in_page):
    page = signed_in_page("read-only", path="/providers/")
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    assert page.get_by_role("link", name="Add provider").count() == 0
    page.goto("/models/")
    assert page.get_by_role("link", name="Add model").count() == 0
    check_accessibility(page, themes=("light",))
