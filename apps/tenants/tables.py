"""The console's tables of tenants, API keys, admin tokens and users."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.tenants import roles, selectors
from atp_site.console.tables import Column, Page, Table


def key_status(key: Any) -> str:
    """`revoked`, `expired` or `active`, as the status badges spell it."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


def _usage(tenant: Any) -> selectors.Usage:
    # Set on the page's rows by TenantTable.page(); the frame renders cells once before that.
    return getattr(tenant, "usage", None) or selectors.Usage()


def _models(key: Any) -> str:
    return ", ".join(key.allowed_models) if key.allowed_models else "All models"


class TenantTable(Table):
    columns = (
        Column("name", order_by=None, link="tenants:tenant-detail"),
        Column("slug", order_by=None, classes="mono"),
        Column("is_active", "Active", order_by=None, template="console/cells/boolean.html"),
        Column("live_keys", "Live keys", classes="num"),
        Column("requests_24h", "Requests 24 h", lambda t: _usage(t).requests, classes="num"),
        Column(
            "spend_24h",
            "Spend 24 h",
            lambda t: _usage(t).cost_usd,
            template="console/cells/usd.html",
            classes="num",
        ),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "slug"
    empty_title = "No tenants yet"
    empty_text = (
        "A tenant is a customer organisation: its API keys, requests, spend and audit "
        "trail are kept apart from every other tenant's. Add one, then give it a key."
    )
    empty_action = ("tenants:tenant-add", "Add a tenant", ("tenants.tenant", "add"))

    def page(self) -> Page:
        page = super().page()
        since = timezone.now() - timedelta(hours=24)
        usage = selectors.tenant_usage(tenant_ids=[t.pk for t in page.rows], since=since)
        for tenant in page.rows:
            tenant.usage = usage.get(tenant.pk, selectors.Usage())
        return page


class ProjectTable(Table):
    columns = (
        Column("name", order_by=None, link="tenants:project-detail"),
        Column("slug", order_by=None, classes="mono"),
        Column("tenant", accessor="tenant.slug", order_by="tenant__slug", classes="mono"),
        Column("live_keys", "Live keys", classes="num"),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "name"
    empty_title = "No projects yet"
    empty_text = (
        "A project is a team or application inside a tenant. Give its keys a project to see, "
        "limit and budget what that team spends, apart from the rest of the tenant."
    )
    empty_action = ("tenants:project-add", "Add a project", ("tenants.project", "add"))


class ApiKeyTable(Table):
    columns = (
        Column("name", order_by=None, link="tenants:apikey-detail"),
        Column("prefix", "Key", lambda k: f"{k.prefix}…", classes="mono"),
        Column("tenant", accessor="tenant.slug"),
        Column("status", accessor=key_status, template="console/cells/status.html"),
        Column("allowed_models", "Models", _models),
        Column("expires_at", "Expires", template="console/cells/datetime.html"),
        Column("last_used_at", "Last used", template="console/cells/datetime.html"),
        # A rotated key works until then beside its replacement.
        Column("grace_until", "Grace until", template="console/cells/datetime.html"),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
    )
    default_order = "-created_at"
    empty_title = "No API keys yet"
    empty_text = (
        "Applications call ATP's /v1 endpoints with an API key. Create one for a tenant; "
        "its secret is shown once."
    )
    empty_action = ("tenants:apikey-add", "Create an API key", ("tenants.apikey", "add"))


class AdminTokenTable(Table):
    columns = (
        Column("name", order_by=None),
        Column("prefix", "Token", lambda t: f"{t.prefix}…", classes="mono"),
        Column("status", accessor=key_status, template="console/cells/status.html"),
        Column("expires_at", "Expires", template="console/cells/datetime.html"),
        Column("last_used_at", "Last used", template="console/cells/datetime.html"),
        Column("created_at", "Created", order_by=None, template="console/cells/datetime.html"),
        Column("actions", "", lambda t: t, template="tenants/cells/admintoken_actions.html"),
    )
    default_order = "-created_at"
    empty_title = "No admin tokens"
    empty_text = (
        "An admin token lets a script call the management API (/api/v1/) as you, with your "
        "permissions. Create one; its secret is shown once."
    )
    empty_action = (
        "tenants:admintoken-add",
        "Create an admin token",
        ("tenants.admintoken", "add"),
    )

    def __init__(self, *args: Any, may_revoke: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.may_revoke = may_revoke

    def page(self) -> Page:
        page = super().page()
        for token in page.rows:
            token.may_revoke = self.may_revoke
        return page


class UserTable(Table):
    columns = (
        Column("username", order_by=None, link="tenants:user-detail"),
        Column("full_name", "Name", lambda u: u.get_full_name()),
        Column("roles", "Roles", lambda u: u, template="tenants/cells/user_roles.html"),
        Column(
            "memberships", "Tenants", lambda u: u, template="tenants/cells/user_memberships.html"
        ),
        Column("is_active", "Active", order_by=None, template="console/cells/boolean.html"),
        Column("last_login", "Last sign-in", template="console/cells/datetime.html"),
    )
    default_order = "username"
    empty_title = "No users"
    empty_text = "Users appear here when they are created or first sign in."

    def __init__(self, *args: Any, visible_tenants: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.visible_tenants = visible_tenants

    def page(self) -> Page:
        page = super().page()
        memberships = roles.memberships_of(page.rows)
        for user in page.rows:
            user.role_names = sorted(
                g.name for g in user.groups.all() if g.name in roles.GLOBAL_ROLES
            )
            user.tenant_roles = [
                (tenant, role)
                for tenant, role in memberships.get(user.pk, {}).items()
                if self.visible_tenants is None or tenant.pk in self.visible_tenants
            ]
        return page
