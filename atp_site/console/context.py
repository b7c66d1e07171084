"""Template context every console page gets: the menu, the theme and the product name."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from atp_site.console.navigation import menu_for

THEMES = ("light", "dark")


def console(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    current = match.view_name if match is not None else ""
    user = getattr(request, "user", None)
    theme = request.COOKIES.get("atp_theme", "")
    return {
        "console_menu": (lambda: menu_for(user, current)) if user is not None else list,
        "console_theme": theme if theme in THEMES else "",
    }
