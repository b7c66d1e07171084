"""Signing in from a real browser: local accounts, lockout, TOTP and single sign-on."""

from __future__ import annotations

import re
import secrets
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OIDC_NAME
from tests.browser.helpers import check_accessibility, screenshot, totp_code

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

WRONG = "The username or password is not right."


@pytest.fixture(scope="module")
def people(console_users) -> dict[str, tuple[str, str]]:
    """A fresh user per test of this module, all created in one go."""
    users = {
        name: (f"{name}-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16))
        for name in ("locked", "plain", "next", "totp")
    }
    console_users.create_many([(u, p, None) for u, p in users.values()])
    return users


def _sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _events(console, event_type: str, username: str) -> list[tuple]:
    rows = console.db.query(
        "SELECT event_type, outcome, data FROM audit_auditevent WHERE event_type = %s "
        "ORDER BY sequence",
        (event_type,),
    )
    return [r for r in rows if username in str(r[2])]


def test_sign_in_page_is_accessible_and_photographed(page):
    page.goto("/login/")
    expect(page.get_by_role("heading", name="Sign in to ATP")).to_be_visible()
    assert page.csp_errors == []
    check_accessibility(page)
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".field-error").first).to_be_visible()
    screenshot(page, "sign-in-errors")


def test_wrong_password_shows_the_error_and_the_limit_locks_the_account(page, console, people):
    username, password = people["locked"]
    page.goto("/login/")
    for _ in range(4):
        _sign_in(page, username, "not-the-password")
        expect(page.get_by_role("alert").filter(has_text=WRONG)).to_be_visible()
    _sign_in(page, username, "not-the-password")  # the fifth failure locks
    lockout = page.locator("#lockout")
    assert "locked for 15 minutes" in lockout.inner_text()
    # The right password does not help while the lockout lasts.
    _sign_in(page, username, password)
    expect(page.locator("#lockout")).to_be_visible()
    assert page.url.endswith("/login/")
    check_accessibility(page, themes=("light",))
    screenshot(page, "sign-in-locked")
    assert len(_events(console, "auth.locked_out", username)) == 1
    assert len(_events(console, "auth.login_failed", username)) == 6
    assert _events(console, "auth.login", username) == []


def test_signing_in_goes_to_next_and_signing_out_ends_the_session(page, people):
    username, password = people["plain"]
    page.goto("/account/")
    assert "/login/?next=/account/" in page.url
    _sign_in(page, username, password)
    assert page.url.endswith("/account/")
    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/login/")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/account/")
    assert "/login/" in page.url


def test_a_foreign_next_is_ignored(page, console, people):
    username, password = people["next"]
    page.goto("/login/?next=https://evil.example/steal")
    _sign_in(page, username, password)
    assert page.url == f"{console.base_url}/"


def test_totp_enrolment_then_sign_in_asks_for_the_code(page, console, people):
    username, password = people["totp"]
    page.goto("/login/?next=/account/")
    _sign_in(page, username, password)
    assert "is off" in page.locator("#otp-status").inner_text()
    expect(page.locator("figure svg")).to_be_visible()
    secret = page.locator("#otp-secret").inner_text().strip()
    check_accessibility(page)
    screenshot(page, "two-factor-enrol")

    # Wrong codes (and django-otp's wait after each) are tested in tests/auth.
    page.get_by_label("Code", exact=True).fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    assert "is on" in page.locator("#otp-status").inner_text()
    screenshot(page, "two-factor-on")
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, username, password)
    assert page.url.endswith("/login/code/")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "sign-in-code")
    # The code of the next time step: the enrolment used this step's, and a code is
    # accepted once only.
    page.get_by_label("Code", exact=True).fill(totp_code(secret, at=time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r".*/$"))
    page.goto("/account/")
    assert "is on" in page.locator("#otp-status").inner_text()
    assert len(_events(console, "auth.otp_enrolled", username)) == 1
    assert len(_events(console, "auth.login", username)) == 2


# --- single sign-on ---------------------------------------------------------------------------


def _groups(console, username: str) -> list[str]:
    rows = console.db.query(
        "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id "
        "JOIN auth_user u ON u.id = ug.user_id WHERE u.username = %s ORDER BY g.name",
        (username,),
    )
    return [r[0] for r in rows]


def _tenant_permissions(console, username: str) -> list[tuple[str, str]]:
    """(tenant slug, permission codename) the user holds per tenant (django-guardian)."""
    slugs = {
        uuid.UUID(str(pk)): slug
        for pk, slug in console.db.query("SELECT id, slug FROM tenants_tenant")
    }
    rows = console.db.query(
        "SELECT o.object_pk, p.codename FROM guardian_userobjectpermission o "
        "JOIN auth_permission p ON p.id = o.permission_id "
        "JOIN auth_user u ON u.id = o.user_id WHERE u.username = %s",
        (username,),
    )
    return sorted((slugs[uuid.UUID(pk)], codename) for pk, codename in rows)


def _provider_sign_in(page, username: str, password: str) -> None:
    page.get_by_role("heading", name="Test Identity Provider").wait_for()
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in to the provider").click()


def test_single_sign_on_maps_roles_and_replaces_them_at_the_next_sign_in(
    pages, console, oidc_console, console_users
):
    provider = oidc_console.provider
    console_users.get("tenant-member")  # makes sure tenant acme exists
    username, password = f"olivia-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    provider.set_user(
        username,
        password,
        email=f"{username}@example.com",
        given_name="Olivia",
        groups=["atp-platform", "acme-admins", "unrelated-group"],
    )
    page = pages.open(oidc_console.base_url)
    page.goto("/login/")
    sso = page.get_by_role("link", name=f"Sign in with {OIDC_NAME}")
    expect(sso).to_be_visible()
    check_accessibility(page, themes=("light",))
    screenshot(page, "sign-in-sso")
    sso.click()
    _provider_sign_in(page, username, password)
    page.wait_for_url(f"{oidc_console.base_url}/")
    assert page.locator(".user-menu .user-name").inner_text() == username
    assert _groups(console, username) == ["platform-admin"]
    held = _tenant_permissions(console, username)
    assert {slug for slug, _ in held} == {"acme"}
    assert {"view_tenant", "change_tenant", "manage_tenant_keys"} <= {c for _, c in held}

    # The provider moves her: auditor, member of acme through the tenants claim.
    provider.set_user(
        username,
        password,
        email=f"{username}@example.com",
        groups=["atp-auditors"],
        atp_tenants=["acme:tenant-member", "no-such-tenant:tenant-admin"],
    )
    # Sign out from the console's user menu.
    page.locator(".user-menu summary").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login/$"))
    ended = [e for e in provider.events() if e["path"] == "/o/logout/"]
    assert ended and "id_token_hint" in ended[-1]["query"]
    assert ended[-1]["status"] == 302

    page.get_by_role("link", name=f"Sign in with {OIDC_NAME}").click()
    # The provider's session ended too: it asks for the password again.
    _provider_sign_in(page, username, password)
    page.wait_for_url(f"{oidc_console.base_url}/")
    assert _groups(console, username) == ["auditor"]
    assert _tenant_permissions(console, username) == [("acme", "view_tenant")]
    changes = console.db.query(
        "SELECT data FROM audit_auditevent WHERE event_type = %s ORDER BY sequence",
        ("user.roles_changed",),
    )
    assert sum(1 for (data,) in changes if username in str(data) and "oidc" in str(data)) == 2
