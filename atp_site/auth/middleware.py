"""Session lifetime and the second-factor rules, applied to every request."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

SIGNED_IN_AT = "atp_signed_in_at"
SEEN_AT = "atp_seen_at"
METHOD = "atp_auth_method"
# A session's last-seen time is written at most this often: not a write per request.
SEEN_RESOLUTION_SECONDS = 60
# Paths a superuser who must enroll a second factor may still reach.
ENROLL_OPEN_PREFIXES = ("/account/", "/logout/", "/login/", "/static/")


class SignInPolicyMiddleware:
    """Ends sessions past their idle or absolute lifetime; makes superusers enroll TOTP.

    Comes after AuthenticationMiddleware and django-otp's OTPMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            expired = self._expired(request)
            if expired:
                logout(request)
                messages.info(request, expired)
            elif (
                settings.ATP_OTP_REQUIRED_FOR_SUPERUSERS
                and user.is_superuser
                and request.session.get(METHOD) != "oidc"
                and not user.is_verified()
                and not request.path.startswith(ENROLL_OPEN_PREFIXES)
            ):
                return redirect("auth:account")
        return self.get_response(request)

    @staticmethod
    def _expired(request: HttpRequest) -> str:
        session = request.session
        now = time.time()
        signed_in = session.get(SIGNED_IN_AT)
        if signed_in is None:
            # A session from before these rules, or from a test client: its lifetime
            # starts now.
            session[SIGNED_IN_AT] = session[SEEN_AT] = now
            return ""
        if now - signed_in > settings.ATP_SESSION_SECONDS:
            return "Your session reached its maximum length. Sign in again."
        seen = session.get(SEEN_AT, signed_in)
        if now - seen > settings.ATP_SESSION_IDLE_SECONDS:
            return "You were signed out after a period of inactivity. Sign in again."
        if now - seen > SEEN_RESOLUTION_SECONDS:
            session[SEEN_AT] = now
        return ""
