"""Browser tests of the console: one Chromium per session, a fresh context per page.

Fixtures for every console test:

    browser                       Playwright's Chromium (/usr/bin/chromium, headless)
    console                       the live ATP server (tests/e2e's `live`: fake upstreams,
                                  the live configuration, its own database)
    page                          a signed-out page (1280 wide) on `console`
    signed_in_page(role=...)      a page signed in as a user holding `role`
    console_user(role)            (username, password) of that user, created on first use
    oidc_provider, oidc_console   the test OpenID provider, and an ATP server using it

and in tests.browser.helpers: screenshot(page, name), check_accessibility(page),
totp_code(secret). Skipped, with the reason, when ATP_BROWSER_TESTS=0 or Chromium is
missing. Roles: "superuser", "staff", the global roles ("super-admin", "platform-admin",
"security-admin", "cost-admin", "auditor", "read-only") and "tenant-admin" /
"tenant-member" (of tenant `acme`); underscores work too ("read_only").
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import DESKTOP
from tests.e2e.conftest import free_port, live, run_manage  # noqa: F401 - `live` is a fixture
from tests.oidc_provider.launcher import TestProvider, start_provider

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TENANT = "acme"
OIDC_CLIENT_ID = "atp-console"
OIDC_NAME = "Test Identity Provider"
# Claim values the OIDC server maps (ATP_OIDC_ROLE_MAPPING, ATP_OIDC_TENANT_MAPPING).
OIDC_ROLE_MAPPING = {
    "atp-admins": "super-admin",
    "atp-platform": "platform-admin",
    "atp-security": ["security-admin", "read-only"],
    "atp-auditors": "auditor",
}
OIDC_TENANT_MAPPING = {"acme-admins": "acme:tenant-admin"}

GLOBAL_ROLES = (
    "super-admin",
    "platform-admin",
    "security-admin",
    "cost-admin",
    "auditor",
    "read-only",
)
TENANT_ROLES = ("tenant-admin", "tenant-member")


def _skip_reason() -> str | None:
    if os.environ.get("ATP_BROWSER_TESTS", "").strip() == "0":
        return "browser tests are turned off (ATP_BROWSER_TESTS=0)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def console(browser, request):
    """The live ATP server the console tests drive (started only when a browser runs)."""
    return request.getfixturevalue("live")


@dataclass
class Pages:
    """Opens pages in fresh browser contexts and closes them all at the end of a test."""

    browser: object
    contexts: list = field(default_factory=list)

    def open(self, base_url: str, *, cookies: list[dict] | None = None, **options):
        context = self.browser.new_context(base_url=base_url, viewport=DESKTOP, **options)
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(15_000)
        if cookies:
            context.add_cookies(cookies)
        self.contexts.append(context)
        page = context.new_page()
        page.csp_errors = []
        # A violated Content-Security-Policy shows up as a console error; tests may assert
        # that a page has none.
        page.on(
            "console",
            lambda msg: (
                page.csp_errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()


@pytest.fixture
def page(pages, console):
    return pages.open(console.base_url)


# --- users and signing in ---------------------------------------------------------------------

_CREATE_USERS = """
from django.contrib.auth import get_user_model
from apps.tenants.models import Tenant
from apps.tenants.roles import tenant_role_set, user_roles_set
from apps.tenants.services import tenant_create
User = get_user_model()
for spec in {specs}:
    user, _ = User.objects.get_or_create(username=spec["username"])
    user.set_password(spec["password"])
    user.is_superuser = spec["role"] == "superuser"
    user.is_staff = spec["role"] in ("superuser", "staff")
    user.save()
    if spec["role"] in {global_roles}:
        user_roles_set(user=user, roles=[spec["role"]], actor=None, source="cli")
    if spec["role"] in {tenant_roles}:
        tenant = Tenant.objects.filter(slug=spec["tenant"]).first() or tenant_create(
            slug=spec["tenant"], name=spec["tenant"].title()
        )
        tenant_role_set(user=user, tenant=tenant, role=spec["role"], actor=None, source="cli")
"""

_ROLES = ("superuser", "staff", *GLOBAL_ROLES, *TENANT_ROLES)


def normalise_role(role: str) -> str:
    name = role.replace("_", "-")
    if name not in _ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(_ROLES)}")
    return name


@dataclass
class ConsoleUsers:
    """Users on the live server, made through the role services: one per role, created
    together on first use (starting `manage.py` costs seconds), and any a test asks for."""

    env: dict[str, str]
    created: dict[str, tuple[str, str]] = field(default_factory=dict)

    def create_many(self, users: list[tuple[str, str, str | None]]) -> None:
        """Create or reset (username, password, role or None) users in one go."""
        specs = [{"username": u, "password": p, "role": r, "tenant": TENANT} for u, p, r in users]
        code = _CREATE_USERS.format(
            specs=json.dumps(specs).replace("null", "None"),
            global_roles=GLOBAL_ROLES,
            tenant_roles=TENANT_ROLES,
        )
        run_manage(self.env, "shell", "-c", code)

    def create(self, username: str, password: str, role: str | None = None) -> None:
        self.create_many([(username, password, role and normalise_role(role))])

    def get(self, role: str) -> tuple[str, str]:
        """(username, password) of the user holding `role` (tenant roles: on `acme`)."""
        role = normalise_role(role)
        if not self.created:
            users = {r: (f"ui-{r}", secrets.token_urlsafe(16)) for r in _ROLES}
            self.create_many([(u, p, r) for r, (u, p) in users.items()])
            self.created.update(users)
        return self.created[role]


@pytest.fixture(scope="session")
def console_users(console) -> ConsoleUsers:
    return ConsoleUsers(console.env)


@pytest.fixture
def console_user(console_users) -> Callable[[str], tuple[str, str]]:
    return console_users.get


def password_sign_in(base_url: str, username: str, password: str) -> list[dict]:
    """Sign in through /login/ over HTTP; the session's cookies, ready for a browser."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        form = http.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        answer = http.post(
            "/login/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={"Referer": f"{base_url}/login/"},
        )
        if answer.status_code != 302:
            raise AssertionError(f"sign-in of {username} failed: {answer.status_code}")
        host = httpx.URL(base_url).host
        return [
            {"name": c.name, "value": c.value, "domain": host, "path": "/"}
            for c in http.cookies.jar
        ]


@pytest.fixture
def signed_in_page(pages, console, console_users) -> Callable[..., object]:
    """`signed_in_page(role="superuser")`: a new page signed in as that role's user."""

    def open_page(role: str = "superuser", *, path: str = "/", **options):
        username, password = console_users.get(role)
        cookies = password_sign_in(console.base_url, username, password)
        page = pages.open(console.base_url, cookies=cookies, **options)
        if path:
            page.goto(path)
        return page

    return open_page


# --- single sign-on ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider(browser, tmp_path_factory) -> Iterator[TestProvider]:
    """The test OpenID provider (django-oauth-toolkit) on a free 127.0.0.1 port."""
    provider = start_provider(
        tmp_path_factory.mktemp("oidc-provider"),
        free_port(),
        client_id=OIDC_CLIENT_ID,
        client_secret=secrets.token_urlsafe(24),
    )
    try:
        yield provider
    finally:
        provider.stop()


@dataclass
class OidcConsole:
    base_url: str
    provider: TestProvider
    server: object


@pytest.fixture(scope="session")
def oidc_console(console, oidc_provider) -> OidcConsole:
    """A second ATP server on the console's database, signing in through `oidc_provider`."""
    server = console.start_server(
        ATP_OIDC_ISSUER=oidc_provider.issuer,
        ATP_OIDC_CLIENT_ID=oidc_provider.client_id,
        ATP_OIDC_CLIENT_SECRET=oidc_provider.client_secret,
        ATP_OIDC_NAME=OIDC_NAME,
        ATP_OIDC_ROLE_MAPPING=json.dumps(OIDC_ROLE_MAPPING),
        ATP_OIDC_TENANT_MAPPING=json.dumps(OIDC_TENANT_MAPPING),
    )
    console.extra_servers.append(server)
    oidc_provider.register_client(
        [f"{server.base_url}/login/oidc/callback/"], [f"{server.base_url}/login/"]
    )
    return OidcConsole(server.base_url, oidc_provider, server)
