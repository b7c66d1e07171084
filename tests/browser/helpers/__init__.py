"""Helpers every console browser test uses: screenshots, accessibility, TOTP codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Screenshots are kept as test artifacts (the README names this folder; CI uploads it).
ARTIFACTS = Path(os.environ.get("ATP_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
THEMES = ("light", "dark")
# axe-core impacts that fail a test.
FAILING_IMPACTS = ("serious", "critical")
THEME_TOGGLE = "[data-theme-toggle]"

# Console URL names whose page a test has photographed / checked with axe in this session:
# tests/browser/test_every_page.py covers every other page (the browser tests run last,
# that one last of all).
PHOTOGRAPHED: set[str] = set()
CHECKED: set[str] = set()


def _view_name(page) -> str | None:
    from urllib.parse import urlsplit

    from django.urls import Resolver404, resolve

    try:
        return resolve(urlsplit(page.url).path).view_name
    except Resolver404:
        return None


def set_theme(page, theme: str) -> None:
    """Switch the console to `theme` with its own toggle (which sets data-theme on <html>).

    Pages without the toggle (the provider's, a bare error page) get the attribute set
    directly, so they are still photographed in both themes.
    """
    html = page.locator("html")
    toggle = page.locator(THEME_TOGGLE).first
    if toggle.count() and toggle.is_visible():
        for _ in range(3):
            if html.get_attribute("data-theme") == theme:
                return
            toggle.click()
    if html.get_attribute("data-theme") != theme:
        page.evaluate("t => document.documentElement.setAttribute('data-theme', t)", theme)


def screenshot(page, name: str) -> list[Path]:
    """Full-page PNGs of the current page: light and dark, desktop (1280) and phone (390).

    Written to test-artifacts/screenshots/<name>-<theme>-<desktop|phone>.png; the page is
    left as it was found (viewport and theme).
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before_size = page.viewport_size
    before_theme = page.locator("html").get_attribute("data-theme")
    written = []
    for theme in THEMES:
        set_theme(page, theme)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            # From the top: a page scrolled to a field would put the sticky bar mid-capture.
            page.evaluate("window.scrollTo(0, 0)")
            path = SCREENSHOTS / f"{name}-{theme}-{label}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            written.append(path)
    PHOTOGRAPHED.add(_view_name(page))
    if before_size:
        page.set_viewport_size(before_size)
    if before_theme:
        set_theme(page, before_theme)
    return written


def _describe(violation: dict) -> str:
    lines = [
        f"- [{violation.get('impact')}] {violation.get('id')}: {violation.get('help')}",
        f"  {violation.get('helpUrl', '')}",
    ]
    for node in violation.get("nodes", [])[:5]:
        target = " ".join(str(t) for t in node.get("target", []))
        lines.append(f"  at {target}")
        summary = (node.get("failureSummary") or "").replace("\n", "\n      ")
        if summary:
            lines.append(f"      {summary}")
    extra = len(violation.get("nodes", [])) - 5
    if extra > 0:
        lines.append(f"  ... and {extra} more elements")
    return "\n".join(lines)


def accessibility_violations(page, impacts=FAILING_IMPACTS) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def check_accessibility(page, *, themes=THEMES) -> None:
    """Fail on any axe-core violation of serious or critical impact, in each theme."""
    problems = []
    before = page.locator("html").get_attribute("data-theme")
    for theme in themes:
        set_theme(page, theme)
        for violation in accessibility_violations(page):
            problems.append(f"({theme} theme) " + _describe(violation))
    if before:
        set_theme(page, before)
    CHECKED.add(_view_name(page))
    if problems:
        raise AssertionError(f"Accessibility violations on {page.url}:\n" + "\n".join(problems))


def totp_code(secret: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 code of a base32 `secret` at time `at` (now by default)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)
