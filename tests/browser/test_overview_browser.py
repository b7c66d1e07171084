"""The overview in a real browser: a request made with the official OpenAI SDK shows up in
the figures and the request stream without reloading; screenshots in both themes and at
phone width; no serious or critical axe violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import check_accessibility, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def _requests_hour(page) -> int:
    return int(page.locator("#overview-requests-hour").inner_text().replace(",", ""))


def test_overview_counts_a_request_live(signed_in_page, console):
    from openai import OpenAI

    page = signed_in_page("read-only")
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    # The socket is up and subscribed.
    page.locator("#overview-connection", has_text="Live").wait_for(timeout=10_000)
    before = _requests_hour(page)
    page.evaluate("() => { window.__notReloaded = true; }")

    client = OpenAI(base_url=f"{console.base_url}/v1", api_key=console.key, max_retries=0)
    answer = client.chat.completions.create(
        model="sim-fast", messages=[{"role": "user", "content": "Hello from the overview test"}]
    )
    assert answer.choices[0].message.content

    page.wait_for_function(
        "n => Number(document.getElementById('overview-requests-hour').textContent"
        ".replace(/,/g, '')) > n",
        arg=before,
        timeout=15_000,
    )
    assert _requests_hour(page) >= before + 1
    page.locator("#overview-stream li", has_text="sim-fast").first.wait_for(timeout=10_000)
    assert page.evaluate("() => window.__notReloaded === true")  # updated in place
    assert page.locator("#overview-chart-rps canvas").count() == 1
    assert page.csp_errors == []

    check_accessibility(page)
    screenshot(page, "overview")


def test_overview_for_a_tenant_member_shows_only_their_scope(signed_in_page):
    page = signed_in_page("tenant-member")
    expect(
        page.get_by_role("heading", name="Spend and requests by tenant, last hour")
    ).to_be_visible()
    assert page.locator("#overview-chart-rps").count() == 0  # no global traffic
    assert page.locator("#overview-providers").count() == 0
    page.locator("#overview-connection", has_text="Live").wait_for(timeout=10_000)
    check_accessibility(page)
    screenshot(page, "overview-tenant-member")
