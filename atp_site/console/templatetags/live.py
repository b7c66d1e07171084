"""`{% load live %}`: the overview's number formats (static/console/overview.js formats alike).

{{ value|figure:"ms" }}    123 ms      {{ value|figure:"pct" }}  1.5%
{{ value|figure:"usd" }}   $0.0123     {{ value|figure:"int" }}  12,345
{{ value|figure:"rate" }}  3.25        a missing value shows as an en dash
"""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

MISSING = "\u2013"


def format_figure(value: Any, kind: str) -> str:
    if value is None or value == "":
        return MISSING
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if kind == "ms":
        return f"{number:,.0f} ms"
    if kind == "pct":
        return f"{number * 100:.1f}%"
    if kind == "usd":
        if number >= 100:
            return f"${number:,.2f}"
        # Sub-cent amounts keep six places: a single cheap request is not "$0.0000".
        return f"${number:,.4f}" if number == 0 or number >= 0.01 else f"${number:,.6f}"
    if kind == "int":
        return f"{number:,.0f}"
    if kind == "rate":
        return f"{number:,.2f}"
    return str(value)


@register.filter
def figure(value: Any, kind: str = "") -> str:
    return format_figure(value, kind)
