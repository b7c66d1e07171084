"""Template tags of the console: icons, cells, badges and query strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from atp_site.console.tables import display

register = template.Library()


@register.simple_tag
def icon(name: str, label: str = "", classes: str = "") -> str:
    """An icon from the vendored sprite; decorative unless `label` is given."""
    href = static("vendor/lucide/icons.svg") + "#" + name
    if label:
        return format_html(
            '<svg class="icon {}" role="img" aria-label="{}"><use href="{}"></use></svg>',
            classes,
            label,
            href,
        )
    return format_html(
        '<svg class="icon {}" aria-hidden="true" focusable="false"><use href="{}"></use></svg>',
        classes,
        href,
    )


register.filter("display", display)


@register.filter
def usd(value: Any) -> str:
    if value is None:
        return "—"
    amount = Decimal(str(value))
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:,.6f}".rstrip("0").rstrip(".") if amount else "$0"


@register.simple_tag(takes_context=True)
def query(context: template.Context, **changes: Any) -> str:
    """The current query string with `changes` applied (None removes a key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag
def next_query(table: Any, page: Any) -> str:
    return table.page_query(page.next_cursor) or ""


@register.simple_tag
def prev_query(table: Any, page: Any) -> str:
    return table.page_query(page.prev_cursor, before=True) or ""
