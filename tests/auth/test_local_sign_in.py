"""Local sign-in: the form, ?next=, lockout, the second factor, session lifetimes, CSP."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from atp_site.auth import services
from tests.browser.helpers import totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(user_factory):
    user = user_factory(username="alice")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def browser():
    return Client(REMOTE_ADDR="192.0.2.7")


def _events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("sequence"))


def _sign_in(client, username="alice", password=PASSWORD, next_url=None):
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login/", data)


def test_the_sign_in_page_and_its_policy(browser):
    response = browser.get("/login/")
    assert response.status_code == 200
    assert b"Sign in to ATP" in response.content and b"csrfmiddlewaretoken" in response.content
    assert b"Sign in with" not in response.content  # no single sign-on configured
    policy = response["Content-Security-Policy"]
    for part in (
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "connect-src 'self' ws://testserver wss://testserver",
    ):
        assert part in policy + ";"
    assert "unsafe-inline" not in policy


def test_signing_in_goes_to_next_on_this_site_only(alice, browser):
    assert _sign_in(browser, next_url="/providers/?page=2")["Location"] == "/providers/?page=2"
    for foreign in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        assert _sign_in(Client(), next_url=foreign)["Location"] == "/"


def test_a_wrong_password_says_so(alice, browser):
    response = _sign_in(browser, password="nope")
    assert response.status_code == 200
    assert b"The username or password is not right." in response.content
    assert _events("auth.login_failed")[0].data == {"username": "alice"}


def test_an_empty_form_is_a_400_naming_the_fields(browser):
    response = browser.post("/login/", {})
    assert response.status_code == 400 and b"This field is required." in response.content


def test_the_limit_locks_the_user_at_that_address_for_a_while(alice, browser, settings):
    for _ in range(settings.ATP_LOGIN_FAILURE_LIMIT - 1):
        assert _sign_in(browser, password="nope").status_code == 200
    locked = _sign_in(browser, password="nope")
    assert locked.status_code == 429
    assert b"Sign-in is locked for 15 minutes" in locked.content
    assert _sign_in(browser).status_code == 429  # the right password does not help
    assert "_auth_user_id" not in browser.session
    # Another address is not locked out.
    assert _sign_in(Client(REMOTE_ADDR="192.0.2.8")).status_code == 302
    [lockout] = _events("auth.locked_out")
    assert lockout.data == {"username": "alice", "failures": 5, "minutes": 15}
    assert lockout.outcome == "failure" and lockout.ip_address == "192.0.2.7"
    with time_machine.travel(time.time() + 16 * 60):
        assert _sign_in(browser).status_code == 302


def test_sign_out_is_a_post_and_is_audited(alice, browser):
    _sign_in(browser)
    assert browser.get("/logout/").status_code == 405
    response = browser.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in browser.session
    assert len(_events("auth.logout")) == 1


def test_the_admin_sign_in_sends_the_browser_to_the_console_sign_in(browser):
    response = browser.get("/admin/login/?next=/admin/")
    assert response["Location"] == "/login/?next=/admin/"
    assert browser.get("/api-auth/login/")["Location"] == "/login/"


# --- second factor ----------------------------------------------------------------------------


def _enrol(user) -> tuple[TOTPDevice, str]:
    from base64 import b32encode

    device = services.totp_device_start(user=user)
    services.totp_device_confirm(user=user, device=device)
    return device, b32encode(device.bin_key).decode()


def test_the_account_page_enrols_an_authenticator(alice, browser):
    browser.force_login(alice)
    page = browser.get("/account/")
    assert page.status_code == 200
    assert b"<svg" in page.content and b"otp-secret" in page.content
    secret = page.content.decode().split('id="otp-secret">')[1].split("<")[0]
    wrong = browser.post("/account/", {"action": "confirm", "code": "12345x"})
    assert wrong.status_code == 400
    response = browser.post("/account/", {"action": "confirm", "code": totp_code(secret)})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=alice).confirmed
    [enrolled] = _events("auth.otp_enrolled")
    assert enrolled.data["username"] == "alice" and enrolled.resource_id == str(alice.pk)
    assert secret not in str(enrolled.data)


def test_with_a_device_the_password_alone_does_not_sign_in(alice, browser):
    _device, secret = _enrol(alice)
    response = _sign_in(browser, next_url="/account/")
    assert response["Location"] == "/login/code/"
    assert "_auth_user_id" not in browser.session
    assert browser.get("/account/").status_code == 302  # not signed in yet
    assert _events("auth.login") == []

    with time_machine.travel(time.time()) as clock:
        wrong = browser.post("/login/code/", {"code": "000000"})
        assert wrong.status_code == 400 and b"That code is not right." in wrong.content
        # django-otp makes the device wait a moment after a wrong code.
        code = totp_code(secret)
        throttled = browser.post("/login/code/", {"code": code})
        assert b"Too many wrong codes in a row" in throttled.content
        clock.shift(2)
        code = totp_code(secret)
        response = browser.post("/login/code/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert browser.session["_auth_user_id"] == str(alice.pk)
    assert len(_events("auth.login")) == 1
    assert [e.data for e in _events("auth.login_failed")] == [{"username": "alice"}] * 2


def test_wrong_codes_count_towards_the_lockout(alice, browser, settings):
    _enrol(alice)
    _sign_in(browser)
    with time_machine.travel(time.time()) as clock:
        for _ in range(settings.ATP_LOGIN_FAILURE_LIMIT):
            response = browser.post("/login/code/", {"code": "000000"})
            clock.shift(60)
    assert response.status_code == 429
    assert len(_events("auth.locked_out")) == 1
    assert _sign_in(browser).status_code == 429


def test_the_code_step_expires(alice, browser):
    _enrol(alice)
    _sign_in(browser)
    with time_machine.travel(time.time() + 301):
        response = browser.get("/login/code/")
    assert response["Location"] == "/login/"


def test_removing_the_device_needs_a_current_code_and_is_audited(alice, browser):
    device, secret = _enrol(alice)
    browser.force_login(alice)
    assert browser.post("/account/", {"action": "remove", "code": "000000"}).status_code == 400
    assert TOTPDevice.objects.filter(user=alice).exists()
    with time_machine.travel(time.time() + 60):
        code = totp_code(secret)
        assert browser.post("/account/", {"action": "remove", "code": code}).status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert len(_events("auth.otp_removed")) == 1


def test_superusers_must_enrol_when_required(user_factory, browser, settings):
    settings.ATP_OTP_REQUIRED_FOR_SUPERUSERS = True
    root = user_factory(username="root", is_superuser=True, is_staff=True)
    root.set_password(PASSWORD)
    root.save()
    assert _sign_in(browser, "root")["Location"] == "/"
    assert browser.get("/")["Location"] == "/account/"
    assert browser.get("/admin/")["Location"] == "/account/"
    page = browser.get("/account/")
    assert page.status_code == 200 and b"Superusers must set up" in page.content
    secret = page.content.decode().split('id="otp-secret">')[1].split("<")[0]
    browser.post("/account/", {"action": "confirm", "code": totp_code(secret)})
    assert browser.get("/admin/").status_code == 200


def test_other_users_are_not_asked_to_enrol(alice, browser, settings):
    settings.ATP_OTP_REQUIRED_FOR_SUPERUSERS = True
    _sign_in(browser)
    assert browser.get("/account/").status_code == 200
    assert browser.get("/login/")["Location"] == "/"


# --- session lifetimes --------------------------------------------------------------------------


def test_an_idle_session_ends(alice, browser, settings):
    settings.ATP_SESSION_IDLE_SECONDS = 600
    with time_machine.travel(time.time()) as clock:
        _sign_in(browser)
        clock.shift(500)
        assert browser.get("/account/").status_code == 200  # activity keeps it alive
        clock.shift(500)
        assert browser.get("/account/").status_code == 200
        clock.shift(601)
        response = browser.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert len(_events("auth.logout")) == 1


def test_a_busy_session_still_ends_at_its_absolute_lifetime(alice, browser, settings):
    settings.ATP_SESSION_SECONDS = 3600
    settings.ATP_SESSION_IDLE_SECONDS = 600
    with time_machine.travel(time.time()) as clock:
        _sign_in(browser)
        for _ in range(8):  # 4,000 s, never idle for more than 500
            clock.shift(500)
            last = browser.get("/account/")
    assert last.status_code == 302 and last["Location"].startswith("/login/")
