"""Audit of lockouts (django-axes) and the session clock started at every sign-in.

Sign-ins, failed sign-ins and sign-outs are audited by apps.audit.signals; second-factor
enrolment and removal by atp_site.auth.services.
"""

from __future__ import annotations

import time
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest

from apps.audit.middleware import actor_for
from apps.audit.services import audit_record
from atp_site.auth.middleware import SEEN_AT, SIGNED_IN_AT


def on_locked_out(
    sender: Any, request: HttpRequest | None, username: str | None, ip_address: str, **_: Any
) -> None:
    # Axes also signals each attempt refused during a lockout; only its start is an event
    # (those attempts are audited as failed sign-ins).
    if request is None or getattr(request, "axes_failures_since_start", None) is None:
        return
    audit_record(
        event_type="auth.locked_out",
        action="lockout",
        outcome="failure",
        resource_type="user",
        data={
            "username": (username or "")[:150],
            "failures": request.axes_failures_since_start,
            "minutes": settings.ATP_LOGIN_LOCKOUT_MINUTES,
        },
        actor=actor_for(request),
    )


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SIGNED_IN_AT] = now
        request.session[SEEN_AT] = now


def connect() -> None:
    user_locked_out.connect(on_locked_out, dispatch_uid="atp_auth.locked_out")
    user_logged_in.connect(on_logged_in, dispatch_uid="atp_auth.session_clock")
