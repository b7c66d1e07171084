"""Sign-in, second factor, sign-out and the second-factor settings page."""

from __future__ import annotations

import time
from base64 import b32encode
from functools import wraps
from typing import Any

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from atp_site.auth import oidc, services
from atp_site.auth.forms import CodeForm, PasswordForm
from atp_site.auth.middleware import METHOD

PENDING = "atp_pending_sign_in"
# A password accepted for a user with a second factor waits this long for the code.
PENDING_SECONDS = 300
WRONG_CREDENTIALS = "The username or password is not right."


def safe_next(request: HttpRequest, raw: str | None) -> str:
    """`raw` when it is a path on this site, else the console's home."""
    if (
        raw
        and raw.startswith("/")
        and not raw.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(raw, allowed_hosts=set())
    ):
        return raw
    return settings.LOGIN_REDIRECT_URL


def _lockout_message() -> str:
    minutes = settings.ATP_LOGIN_LOCKOUT_MINUTES
    return (
        "Too many failed sign-ins for this account from your address. Sign-in is locked "
        f"for {minutes} minute{'s' if minutes != 1 else ''}; try again later or ask an "
        "administrator."
    )


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    oidc_config = settings.ATP_OIDC
    return {
        "next": safe_next(request, request.POST.get("next") or request.GET.get("next")),
        "oidc_name": oidc_config.name if oidc_config else "",
        **extra,
    }


def _render_login(request: HttpRequest, form: PasswordForm, *, status: int = 200, **extra):
    return render(request, "auth/login.html", _context(request, form=form, **extra), status=status)


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """django-axes' answer to a locked-out attempt: the sign-in page, saying why (429)."""
    form = PasswordForm(initial={"username": (credentials or {}).get("username", "")})
    return _render_login(request, form, status=429, locked=True, lockout=_lockout_message())


WRONG_CODE = "That code is not right. Enter the current code."
THROTTLED = "Too many wrong codes in a row. Wait a few seconds, then enter the current code."


def code_error(device: TOTPDevice | None, code: str) -> str | None:
    """None when `code` is the device's current code, else what to tell the user.

    django-otp makes a device wait after each wrong code (1 s, 2 s, 4 s...): a code tried
    during that wait is refused without being checked, and the user is told so.
    """
    if device is None:
        return WRONG_CODE
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return THROTTLED
    return None if device.verify_token(code) else WRONG_CODE


def _complete(request: HttpRequest, user: Any, next_url: str, device=None) -> HttpResponse:
    login(request, user)
    if device is not None:
        otp_login(request, device)
    request.session[METHOD] = "password"
    return redirect(next_url)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method == "GET":
        if request.user.is_authenticated:
            return redirect(next_url)
        return _render_login(request, PasswordForm())
    form = PasswordForm(request.POST)
    if not form.is_valid():
        return _render_login(request, form, status=400)
    user = authenticate(
        request, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
    )
    if getattr(request, "axes_locked_out", False):
        return lockout_response(request, credentials={"username": form.cleaned_data["username"]})
    if user is None:
        form.add_error(None, WRONG_CREDENTIALS)
        return _render_login(request, form)
    if user_has_device(user, confirmed=True):
        request.session.cycle_key()
        request.session[PENDING] = {
            "user": str(user.pk),
            "backend": user.backend,
            "at": time.time(),
            "next": next_url,
        }
        return redirect("auth:login-code")
    return _complete(request, user, next_url)


def _pending_user(request: HttpRequest):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        return None, None
    user.backend = pending["backend"]
    return user, pending


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_code_view(request: HttpRequest) -> HttpResponse:
    """The second step for a user with a second factor: the current code."""
    user, pending = _pending_user(request)
    if user is None:
        request.session.pop(PENDING, None)
        messages.info(request, "Sign in again: the code was not entered in time.")
        return redirect("auth:login")
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        request.session.pop(PENDING, None)
        return lockout_response(request, credentials=credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            error = code_error(device, form.cleaned_data["code"])
            if error is None:
                request.session.pop(PENDING, None)
                return _complete(request, user, pending["next"], device)
            form.add_error("code", error)
        # A wrong code counts as a failed sign-in: audited, and towards the lockout.
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            request.session.pop(PENDING, None)
            return lockout_response(request, credentials=credentials)
    return render(
        request,
        "auth/login_code.html",
        {"form": form, "username": user.get_username()},
        status=400 if form.errors else 200,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Signs out; a single sign-on session also ends at the provider."""
    id_token = request.session.get(oidc.ID_TOKEN_SESSION_KEY)
    provider_url = (
        oidc.end_session_url(request, id_token) if request.session.get(METHOD) == "oidc" else None
    )
    logout(request)
    if provider_url:
        return redirect(provider_url)
    messages.info(request, "You are signed out.")
    return redirect(settings.LOGOUT_REDIRECT_URL)


def signed_in_required(view):
    """The console's rule for a signed-out visitor: a GET goes to the sign-in page with
    ?next=, anything else (a POST, an htmx request) gets 401 (htmx: with HX-Redirect)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        htmx = request.headers.get("HX-Request") == "true"
        if request.method in ("GET", "HEAD") and not htmx:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        response = HttpResponse("Sign in to continue.", status=401, content_type="text/plain")
        if htmx:
            response["HX-Redirect"] = settings.LOGIN_URL
        return response

    return wrapped


# --- the account page: the second factor -----------------------------------------------------------------


def _qr_svg(url: str) -> str:
    # An inline SVG: no image request, nothing the CSP must allow. Black on white with its
    # quiet zone in either theme: cameras read that best.
    return segno.make(url, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", svgclass="auth-qr-code", title="QR code to scan"
    )


@sensitive_post_parameters("code")
@never_cache
@signed_in_required
@require_http_methods(["GET", "POST"])
def account_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    form = CodeForm(request.POST or None)
    action = request.POST.get("action", "")
    status = 200
    if request.method == "POST" and action == "remove" and confirmed is not None:
        if form.is_valid():
            error = code_error(confirmed, form.cleaned_data["code"])
            if error is None:
                services.totp_device_remove(user=user)
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("auth:account")
            form.add_error("code", error)
        status = 400
    elif request.method == "POST" and action == "confirm" and confirmed is None:
        device = services.totp_device_start(user=user)
        if form.is_valid():
            error = code_error(device, form.cleaned_data["code"])
            if error is None:
                services.totp_device_confirm(user=user, device=device)
                otp_login(request, device)
                messages.success(request, "Two-factor sign-in is on.")
                return redirect("auth:account")
            form.add_error("code", error)
        status = 400
    elif request.method == "POST":
        return redirect("auth:account")

    context: dict[str, Any] = {
        "form": form,
        "device": confirmed,
        "method": request.session.get(METHOD),
    }
    if confirmed is None:
        device = services.totp_device_start(user=user)
        context.update(
            secret=b32encode(device.bin_key).decode().rstrip("="),
            qr_svg=_qr_svg(device.config_url),
            required=settings.ATP_OTP_REQUIRED_FOR_SUPERUSERS and user.is_superuser,
        )
    return render(request, "auth/account.html", context, status=status)
