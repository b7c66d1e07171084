"""The console's menu, declared as data (NetBox's navigation/menu.py is the model).

A group shows when the viewer may open at least one of its items; an item shows when the
viewer holds its permission (`may(user, model, action)` through apps.tenants.permissions,
so a tenant-scoped grant on one tenant is enough) or passes its `visible` check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as django_apps
from django.urls import NoReverseMatch, reverse

from apps.tenants import permissions


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    icon: str
    # "app_label.model" and an action, checked with permissions.may(); None: every signed-in user.
    permission: tuple[str, str] | None = None
    visible: Callable[[Any], bool] | None = None
    # Other URL-name prefixes that mark this item as the current one.
    active_prefixes: tuple[str, ...] = ()

    def allowed(self, user: Any) -> bool:
        if self.visible is not None and not self.visible(user):
            return False
        if self.permission is None:
            return True
        label, action = self.permission
        return permissions.may(user, django_apps.get_model(label), action)


@dataclass(frozen=True)
class MenuGroup:
    label: str
    items: tuple[MenuItem, ...] = field(default_factory=tuple)


MENU: tuple[MenuGroup, ...] = (
    MenuGroup(
        "Monitor",
        (
            MenuItem("Overview", "console:overview", "layout-dashboard"),
            MenuItem(
                "Requests",
                "routing:requestlog-list",
                "activity",
                ("routing.requestlog", "view"),
                active_prefixes=("routing:requestlog",),
            ),
        ),
    ),
    MenuGroup(
        "Gateway",
        (
            MenuItem(
                "Providers",
                "providers:provider-list",
                "server",
                ("providers.provider", "view"),
                active_prefixes=("providers:provider",),
            ),
            MenuItem(
                "Models",
                "providers:deployment-list",
                "cpu",
                ("providers.modeldeployment", "view"),
                active_prefixes=("providers:deployment",),
            ),
            MenuItem(
                "Routes",
                "routing:route-list",
                "route",
                ("routing.route", "view"),
                active_prefixes=("routing:route",),
            ),
        ),
    ),
    MenuGroup(
        "Access",
        (
            MenuItem(
                "Tenants",
                "tenants:tenant-list",
                "users",
                ("tenants.tenant", "view"),
                active_prefixes=("tenants:tenant",),
            ),
            MenuItem(
                "Projects",
                "tenants:project-list",
                "layers",
                ("tenants.project", "view"),
                active_prefixes=("tenants:project",),
            ),
            MenuItem(
                "API keys",
                "tenants:apikey-list",
                "key",
                ("tenants.apikey", "view"),
                active_prefixes=("tenants:apikey",),
            ),
        ),
    ),
    MenuGroup(
        "Limits & budgets",
        (
            MenuItem(
                "Spend",
                "costs:spend",
                "bar-chart-3",
                ("costs.usagerollup", "view"),
                # "costs:spend" covers the savings page ("costs:spend-savings") too.
                active_prefixes=("costs:spend",),
            ),
            MenuItem(
                "Rate limits",
                "costs:ratelimit-list",
                "gauge",
                ("costs.ratelimit", "view"),
                active_prefixes=("costs:ratelimit",),
            ),
            MenuItem(
                "Budgets",
                "costs:budget-list",
                "wallet",
                ("costs.budget", "view"),
                # "costs:budget-" and not "costs:budget": alerts have their own entry.
                active_prefixes=("costs:budget-",),
            ),
            MenuItem(
                "Budget alerts",
                "costs:budgetalert-list",
                "bell",
                ("costs.budgetalert", "view"),
                active_prefixes=("costs:budgetalert",),
            ),
            MenuItem(
                "Notifiers",
                "costs:notifier-list",
                "plug",
                ("costs.notifier", "view"),
                active_prefixes=("costs:notifier",),
            ),
        ),
    ),
    MenuGroup(
        "Governance",
        (
            MenuItem(
                "Policies",
                "policies:policy-list",
                "shield",
                ("policies.policy", "view"),
                active_prefixes=("policies:policy",),
            ),
        ),
    ),
    MenuGroup(
        "Compliance",
        (
            MenuItem(
                "Audit log",
                "audit:event-list",
                "scroll-text",
                ("audit.auditevent", "view"),
                active_prefixes=(
                    "audit:event",
                    "audit:verify",
                    "audit:export",
                    "audit:report",
                    "audit:subject",
                    "audit:job",
                    "audit:auditor",
                ),
            ),
            MenuItem(
                "Retention",
                "audit:retentionpolicy-list",
                "history",
                ("audit.retentionpolicy", "view"),
                active_prefixes=("audit:retentionpolicy",),
            ),
        ),
    ),
    MenuGroup(
        "Operations",
        (
            MenuItem(
                "Scheduled jobs",
                "audit:scheduledrun-list",
                "clock",
                ("audit.scheduledrun", "view"),
                active_prefixes=("audit:scheduledrun",),
            ),
        ),
    ),
    MenuGroup(
        "Settings",
        (
            # Users with auth.view_user, and tenant admins (who manage their tenants' members).
            MenuItem(
                "Users and roles",
                "tenants:user-list",
                "user-cog",
                visible=lambda user: (
                    permissions.may(user, django_apps.get_model("auth.user"), "view")
                    or permissions.may(
                        user, django_apps.get_model("tenants.tenant"), "manage_members"
                    )
                ),
                active_prefixes=("tenants:user",),
            ),
            MenuItem(
                "Admin tokens",
                "tenants:admintoken-list",
                "key-round",
                active_prefixes=("tenants:admintoken",),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class ShownItem:
    label: str
    url: str
    icon: str
    active: bool


def menu_for(user: Any, current: str = "") -> list[tuple[str, list[ShownItem]]]:
    """The groups and items `user` may open; `current` is the resolved view's namespaced name.

    Items whose page is not installed (NoReverseMatch) are left out, so an app can declare its
    entry before its pages exist in every deployment."""
    shown: list[tuple[str, list[ShownItem]]] = []
    for group in MENU:
        items = []
        for item in group.items:
            if not user.is_authenticated or not item.allowed(user):
                continue
            try:
                url = reverse(item.url_name)
            except NoReverseMatch:
                continue
            active = current == item.url_name or any(
                current.startswith(p) for p in item.active_prefixes
            )
            items.append(ShownItem(item.label, url, item.icon, active))
        if items:
            shown.append((group.label, items))
    return shown
