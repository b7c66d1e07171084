"""The shared browser fixtures do what console tests rely on."""

from __future__ import annotations

import pytest

from tests.browser.helpers import SCREENSHOTS, screenshot, totp_code

pytestmark = pytest.mark.live


@pytest.mark.parametrize("role", ["tenant-admin", "read_only"])
def test_signed_in_page_signs_in_as_a_user_holding_the_role(signed_in_page, role):
    page = signed_in_page(role, path="/account/")
    assert page.url.endswith("/account/")
    assert f"ui-{role.replace('_', '-')}" in page.get_by_text("Signed in as").inner_text()


def test_screenshot_writes_both_themes_at_both_widths(signed_in_page):
    page = signed_in_page("superuser", path="/")
    written = screenshot(page, "fixture-check")
    assert {p.name for p in written} == {
        f"fixture-check-{theme}-{width}.png"
        for theme in ("light", "dark")
        for width in ("desktop", "phone")
    }
    assert all(p.parent == SCREENSHOTS and p.stat().st_size > 1000 for p in written)
    assert page.viewport_size["width"] == 1280
    for path in written:
        path.unlink()


def test_totp_code_matches_rfc_6238():
    # RFC 6238, appendix B: SHA-1, secret "12345678901234567890", T = 59 s -> 94287082.
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp_code(secret, at=59, digits=8) == "94287082"
    assert totp_code(secret, at=1111111109, digits=8) == "07081804"
