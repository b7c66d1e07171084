"""Routes and the request log from a real browser: a request made with the official OpenAI
SDK is found in the request log by its model and its decision opened; the route's "try it"
box ranks a prompt in place; screenshots in both themes and at phone width, axe checks."""

from __future__ import annotations

import re
import uuid

import openai
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import check_accessibility, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

ROUTE = "team/sim"  # a learned route over sim-cheap and sim-fast (tests/e2e's live config)


def _request_through_the_sdk(console) -> tuple[str, str]:
    """One chat completion on the route; (request id, the model that served it)."""
    client = openai.OpenAI(base_url=f"{console.base_url}/v1", api_key=console.key, timeout=20)
    user = f"browser-{uuid.uuid4().hex[:8]}"
    raw = client.chat.completions.with_raw_response.create(
        model=ROUTE,
        messages=[{"role": "user", "content": f"Write a limerick about {user}."}],
        user=user,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    request_id = raw.headers["x-request-id"]
    rows = console.log_rows([request_id])
    assert request_id in rows, "the request log row was not written"
    return request_id, rows[request_id][8]


def test_find_a_request_by_model_and_open_its_decision(signed_in_page, console):
    request_id, model = _request_through_the_sdk(console)
    page = signed_in_page("platform-admin", path="/requests/")
    expect(page.get_by_role("heading", name="Requests")).to_be_visible()

    # Search by the model that served it: the table updates in place.
    page.evaluate("window.__notReloaded = true")
    page.get_by_placeholder("Request id, model, route or end user").fill(model)
    page.wait_for_url(re.compile(rf"[?&]q={re.escape(model)}"))
    table = page.locator("#console-table")
    table.get_by_text(request_id, exact=True).wait_for()
    assert page.evaluate("window.__notReloaded") is True
    # Every row shown is the model searched for.
    assert table.locator("tbody tr").count() >= 1
    assert table.locator("tbody tr", has_not_text=model).count() == 0
    assert page.csp_errors == []
    check_accessibility(page)
    screenshot(page, "requests-list")

    # Open it: the time cell links to the detail page.
    row = table.locator("tr", has_text=request_id)
    row.get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/requests/\d+/$"))
    expect(page.get_by_role("heading", name=f"Request {request_id}")).to_be_visible()
    decision = page.locator("section", has=page.get_by_role("heading", name="Decision", exact=True))
    expect(decision.get_by_text("learned").first).to_be_visible()
    candidates = page.locator(
        "section", has=page.get_by_role("heading", name="Candidates", exact=True)
    )
    expect(candidates.get_by_text("sim-cheap").first).to_be_visible()
    expect(candidates.get_by_text("sim-fast").first).to_be_visible()
    expect(candidates.get_by_text("chosen").first).to_be_visible()
    expect(page.get_by_text("Time to first token")).to_be_visible()
    assert page.csp_errors == []
    check_accessibility(page)
    screenshot(page, "request-detail")


def test_a_tenant_member_sees_only_their_tenant(signed_in_page, console):
    request_id, _ = _request_through_the_sdk(console)  # tenant "live", not acme
    page = signed_in_page("tenant-member", path=f"/requests/?q={request_id}")
    expect(page.get_by_role("heading", name="Requests")).to_be_visible()
    assert page.locator("#console-table").get_by_text(request_id, exact=True).count() == 0
    expect(page.get_by_role("heading", name="Nothing matches")).to_be_visible()


def test_route_pages_and_the_try_it_box(signed_in_page, console):
    page = signed_in_page("platform-admin", path="/routes/")
    expect(page.get_by_role("heading", name="Routes", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="atp/fast")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "routes-list")

    page.get_by_role("link", name=ROUTE, exact=True).click()
    page.wait_for_url(re.compile(r"/routes/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", name=ROUTE, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="What it learned")).to_be_visible()

    # Rank a prompt in place: nothing is sent upstream, the page is not reloaded.
    page.evaluate("window.__notReloaded = true")
    page.get_by_label("Prompt").fill("Translate 'good morning' into French.")
    page.get_by_label("Hints").fill('{"colour": "blue"}')
    page.get_by_role("button", name="Rank").click()
    # A hint ATP does not know: the error sits next to the field, never a 500.
    page.locator("#id_hints_error").wait_for()
    assert "not a hint ATP knows" in page.locator("#id_hints_error").inner_text()
    page.get_by_label("Hints").fill("{not json")
    page.get_by_role("button", name="Rank").click()
    page.locator("#id_hints_error", has_text="Not valid JSON").wait_for()
    assert page.csp_errors == [], page.csp_errors
    check_accessibility(page, themes=("light",))

    page.get_by_label("Hints").fill('{"quality": "high"}')
    page.get_by_role("button", name="Rank").click()
    ranking = page.locator(".routing-ranking")
    ranking.wait_for()
    expect(ranking.locator("strong", has_text="Chosen:")).to_be_visible()
    expect(ranking.get_by_text("sim-cheap").first).to_be_visible()
    expect(ranking.get_by_text("sim-fast").first).to_be_visible()
    assert page.locator("#id_hints_error").count() == 0
    assert page.evaluate("window.__notReloaded") is True
    check_accessibility(page)
    screenshot(page, "route-detail")

    # The editor, with an error next to its field.
    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(re.compile(r"/routes/[0-9a-f-]{36}/edit/$"))
    page.get_by_label("Retry").fill('{"max_attempts": 99}')
    page.get_by_role("button", name="Save route").click()
    page.locator("#id_retry_error").wait_for()
    check_accessibility(page)
    screenshot(page, "route-editor")
