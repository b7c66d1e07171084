"""Policies from a real browser: a security admin writes a policy with a mistake, sees the
validation problem in place, fixes it, simulates a request with the draft, saves it and
reads its rules; every policy page is photographed (both themes) and checked with axe-core."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import check_accessibility, screenshot

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

LIVE_TENANT = "live"  # the tenant of tests/e2e's live configuration

BROKEN = [
    {
        "id": "no-restricted",
        "when": [{"attr": "request.clasification", "op": "eq", "value": "restricted"}],
        "effect": {"type": "deny", "message": "Restricted data stays home."},
    }
]
FIXED = [{**BROKEN[0], "when": [{**BROKEN[0]["when"][0], "attr": "request.classification"}]}]


def test_write_a_policy_see_a_problem_fix_it_simulate_and_save(signed_in_page):
    name = f"browser-{uuid.uuid4().hex[:6]}"
    page = signed_in_page("security-admin", path="/policies/")
    expect(page.get_by_role("heading", name="Policies", exact=True)).to_be_visible()
    assert page.csp_errors == []
    page.get_by_role("link", name="Add policy").first.click()
    page.wait_for_url(re.compile(r"/policies/add/$"))

    page.locator("#id_name").fill(name)
    page.locator("#id_tenant").select_option(LIVE_TENANT)
    page.locator("#id_rules").fill(json.dumps(BROKEN, indent=2))

    # Validate: the problem appears next to the rules, nothing is saved.
    page.evaluate("window.__notReloaded = true")
    page.get_by_role("button", name="Validate").click()
    problems = page.locator("#policy-problems [data-problems] li")
    expect(problems).to_have_count(1)
    assert "rules[0].when[0].attr" in problems.first.inner_text()
    assert "unknown attribute 'request.clasification'" in problems.first.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    assert page.url.endswith("/policies/add/")

    # Saving anyway: refused, the error on the rules field, in place.
    page.get_by_role("button", name="Add policy").click()
    error = page.locator("#id_rules_error")
    expect(error).to_contain_text("request.clasification")
    assert page.url.endswith("/policies/add/")
    check_accessibility(page)

    # Fixed: the validation finds nothing.
    page.locator("#id_rules").fill(json.dumps(FIXED, indent=2))
    page.get_by_role("button", name="Validate").click()
    expect(page.locator('#policy-problems [data-problems="none"]')).to_be_visible()

    # Simulate a restricted request of the tenant with the draft: denied by it.
    page.locator("#id_sample_tenant").select_option(LIVE_TENANT)
    page.locator("#id_sample_classification").select_option("restricted")
    page.get_by_role("button", name="Simulate").click()
    result = page.locator("#policy-simulate [data-simulation=done]")
    expect(result.locator("[data-outcome=denied]").first).to_be_visible()
    expect(result.locator(f'tr[data-policy="{name}"]')).to_contain_text("no-restricted")
    expect(result.locator("[data-changed=yes]")).to_be_visible()
    # An internal request is not denied.
    page.locator("#id_sample_classification").select_option("internal")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#policy-simulate [data-simulation=done] h3")).not_to_contain_text("Denied")
    assert page.evaluate("window.__notReloaded") is True
    assert page.csp_errors == []

    # Save: the policy's page reads its rule.
    page.get_by_role("button", name="Add policy").click()
    page.wait_for_url(re.compile(r"/policies/\d+/$"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    rule = page.locator('tr[data-rule="no-restricted"]')
    expect(rule).to_contain_text("request.classification eq restricted")
    expect(rule).to_contain_text("Restricted data stays home.")
    check_accessibility(page)
    screenshot(page, "policy-detail")
    detail = page.url

    # The other pages of the policy: edit, delete confirmation, simulation, the list.
    for path, shot in (
        (detail + "edit/", "policy-edit"),
        (detail + "delete/", "policy-delete"),
        ("/policies/simulate/", "policy-simulate"),
        ("/policies/", "policy-list"),
    ):
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        assert page.csp_errors == []
        check_accessibility(page)
        screenshot(page, shot)

    # The editor with an error, photographed last: a screenshot leaves empty style
    # attributes behind (Playwright's animations="disabled"), which htmx's settling would
    # then copy, and the Content-Security-Policy refuse.
    page.goto("/policies/add/")
    page.locator("#id_name").fill(f"{name}-2")
    page.locator("#id_rules").fill(json.dumps(BROKEN))
    page.get_by_role("button", name="Add policy").click()
    expect(page.locator("#id_rules_error")).to_contain_text("request.clasification")
    screenshot(page, "policy-add-with-error")
