"""Audit receivers for sign-in, sign-out and failed sign-in (django.contrib.auth signals)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from apps.audit.context import AuditActor, current_actor
from apps.audit.middleware import actor_for, adopt_actor
from apps.audit.services import audit_record


def _actor(request: HttpRequest | None, user=None) -> AuditActor:
    if request is None:
        return current_actor()
    return actor_for(request, user)


def on_login(sender: Any, request: HttpRequest | None, user, **kwargs: Any) -> None:
    actor = _actor(request, user)
    audit_record(
        event_type="auth.login",
        action="login",
        resource_type="user",
        resource_id=str(user.pk),
        data={"username": user.get_username()},
        actor=actor,
    )
    if request is not None:
        # The rest of this request acts as the user who just signed in.
        adopt_actor(actor)


def on_logout(sender: Any, request: HttpRequest | None, user, **kwargs: Any) -> None:
    # Sent before the session is flushed, so the actor still carries the session digest.
    audit_record(
        event_type="auth.logout",
        action="logout",
        resource_type="user",
        resource_id=str(user.pk) if user is not None else "",
        data={"username": user.get_username() if user is not None else ""},
        actor=_actor(request, user),
    )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the attempted name is kept: never the password, even in its cleansed form.
    field = get_user_model().USERNAME_FIELD
    attempted = str(credentials.get(field) or credentials.get("username") or "")[:150]
    audit_record(
        event_type="auth.login_failed",
        action="login",
        outcome="failure",
        resource_type="user",
        data={"username": attempted},
        actor=_actor(request),
    )


def connect() -> None:
    user_logged_in.connect(on_login, dispatch_uid="audit.login")
    user_logged_out.connect(on_logout, dispatch_uid="audit.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
